//go:build !cgo

package transcode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/livegrid/livegrid/profiles"
)

// ErrNoCgo is returned by every engine call in a build without cgo: the
// engine needs libav (FFmpeg 5.1) through cgo.
var ErrNoCgo = errors.New("transcode: this livegrid was built with CGO_ENABLED=0 and has no libav; rebuild with cgo and the FFmpeg 5.1 -dev packages (deploy/setup.sh)")

// Engine is the cgo-less stand-in; every method fails with ErrNoCgo.
type Engine struct{ chain *Chain }

// New returns an Engine that can only report ErrNoCgo.
func New(opts Options) *Engine {
	if opts.Chain == nil {
		opts.Chain = &Chain{Log: opts.Log}
	}
	return &Engine{chain: opts.Chain}
}

// Chain returns the engine's encoder chain.
func (e *Engine) Chain() *Chain { return e.chain }

// TranscodeFile fails with ErrNoCgo.
func (e *Engine) TranscodeFile(context.Context, Source, *profiles.Ladder, FileOptions, Sink) (*Summary, error) {
	return nil, ErrNoCgo
}

func probeEncoder(c Candidate) error { return fmt.Errorf("%s: %w", c.Encoder, ErrNoCgo) }

func routeLogs(*slog.Logger) {}

// TranscodeSegment fails with ErrNoCgo.
func (e *Engine) TranscodeSegment(context.Context, Source, *profiles.Ladder, SegmentOptions) (*SegmentResult, error) {
	return nil, ErrNoCgo
}

// ReleaseMemory does nothing without cgo.
func ReleaseMemory() {}

// LiveSession is the cgo-less stand-in; Transcode fails with ErrNoCgo.
type LiveSession struct{}

// OpenLive returns a session that can only report ErrNoCgo.
func (e *Engine) OpenLive(*profiles.Ladder, LiveOptions) *LiveSession { return &LiveSession{} }

// Transcode fails with ErrNoCgo.
func (s *LiveSession) Transcode(context.Context, LiveSegment) (*SegmentResult, error) {
	return nil, ErrNoCgo
}

// Close does nothing.
func (s *LiveSession) Close() error { return nil }
