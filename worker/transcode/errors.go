package transcode

import (
	"errors"
	"fmt"

	"github.com/livegrid/livegrid/profiles"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrInvalidInput marks input that cannot be demuxed or decoded: junk,
	// truncated or empty bytes. Retrying it will not help.
	ErrInvalidInput = errors.New("invalid input")
	// ErrUnsupportedCodec marks a source or target codec the engine cannot handle.
	ErrUnsupportedCodec = errors.New("unsupported codec")
	// ErrNoVideo marks a source without a decodable video stream.
	ErrNoVideo = errors.New("no video stream")
	// ErrNoEncoder means no encoder of the chain is usable for a codec.
	ErrNoEncoder = errors.New("no usable encoder")
	// ErrEncoderFailed wraps an encoder that failed to open or mid-stream.
	ErrEncoderFailed = errors.New("encoder failed")
	// ErrSessionClosed is returned by a live session used after Close.
	ErrSessionClosed = errors.New("live session closed")
)

// encoderError records which encoder failed so the engine can fall back.
type encoderError struct {
	kind    profiles.EncoderKind
	encoder string
	stage   string // "open" or "encode"
	err     error
}

func (e *encoderError) Error() string {
	return fmt.Sprintf("%s: %s %s: %v", ErrEncoderFailed, e.stage, e.encoder, e.err)
}

func (e *encoderError) Unwrap() []error { return []error{ErrEncoderFailed, e.err} }
