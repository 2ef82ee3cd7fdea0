// Package packager is the coordinator's live packager: it turns the
// transcode results of a stream's source segments into the live HLS and
// DASH presentation that viewers and edges read, and keeps every segment
// in the object store for look-back.
//
// # Order
//
// Workers finish source segments in any order. The packager publishes
// them contiguously: source segment K+1 is held until K is published, or
// declared lost with Gap (the scheduler quarantined it), in which case K
// is skipped and the next published segment carries a discontinuity. A
// segment held longer than Config.MaxHold behind a missing one makes the
// packager declare the missing one lost itself, so a result that never
// comes cannot stall a stream.
//
// # Numbering
//
// A presentation is what /live/{stream}/ serves: one or more sessions
// (publishes) of a stream joined by reconnects within the grace period.
// Every output segment of the presentation gets the next media sequence
// number, in order of start time, whichever session it came from; a source
// segment may give several output segments and a lost one gives none. The
// numbers keep counting across reconnects and, in this process, across
// presentations of the same stream name, so a segment URL never names two
// different segments (segments are served as immutable). A coordinator
// that restarts passes the stream's next number (NextSeq, kept by the
// registry) in StartOptions.FirstSeq to keep that promise.
//
// # Store layout
//
//	live/{stream}/{session}/{rendition}/init.mp4      the session's first init segment
//	live/{stream}/{session}/{rendition}/init-N.mp4    an init that replaced it from segment N on
//	live/{stream}/{session}/{rendition}/NNNNNNNN.m4s  media segment N (manifest.SegmentName)
//	live/{stream}/{session}/{rendition}/vod.m3u8      VOD media playlist of the session
//	live/{stream}/{session}/vod.m3u8                  VOD master playlist of the session
//	live/{stream}/{session}/vod.mpd                   static MPD of the session
//
// The VOD playlists are written when the session's last segment is
// published (its publisher left and every announced segment is resolved)
// and by Close for sessions still live; URIs in them are relative, so the
// session folder plays as it is. A retention sweep (store.Sweep) removes
// old sessions; the packager never deletes.
//
// # URL layout
//
// The live playlists live in memory and are served by Origin:
//
//	/live/{stream}/index.m3u8                 master; lists {rendition}/index.m3u8
//	/live/{stream}/index.mpd                  MPD; BaseURL-free templates {rendition}/$Number%08d$.m4s
//	/live/{stream}/{rendition}/index.m3u8     media playlist; lists init.mp4 and NNNNNNNN.m4s
//	/live/{stream}/{rendition}/init.mp4       (or init-N.mp4) init segment
//	/live/{stream}/{rendition}/NNNNNNNN.m4s   media segment
//	/live/{stream}/{rendition}.flv            the rendition as HTTP-FLV, from the newest segment on
//
// These are the manifest package's default relative URIs, so every URI
// in a playlist resolves against the playlist's own URL. An init segment
// first used at media sequence N is named init.mp4 when N is 0 and
// init-N.mp4 (N as in SegmentName) otherwise, so init URLs are as unique
// as segment numbers. When a rendition's init segment changes (an encoder
// fallback, or a reconnect whose encoder differs) the live window starts
// over at that segment with a discontinuity, because a playlist names one
// init segment per rendition.
//
// # Ending
//
// End starts the grace period. A publisher that comes back within it
// (Resume, or Start with a new session) continues the presentation with a
// discontinuity (a new DASH Period) and counting sequence numbers. Once
// the grace has passed and every announced segment is resolved, the
// playlists end: EXT-X-ENDLIST and a static MPD, served for
// Config.Linger.
//
// # Timeline
//
// Segments keep the timestamps the workers wrote (tfdt); the packager
// never rewrites media. availabilityStartTime is fixed when the first
// segment is published, as the clock then minus the media time of the end
// of that segment, so a live MPD needs media time to run on across
// reconnects: the segmenter's single timeline does that. A discontinuity
// whose media time goes back is published and counted
// (Metrics.TimelineRewinds); HLS plays it, a live DASH window stays
// correct only while the segments before it are in the window.
package packager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/media"
)

// Defaults for a zero Config.
const (
	DefaultTargetDuration = 2 * time.Second
	DefaultWindow         = 6
	DefaultGrace          = 10 * time.Second
	DefaultMaxHold        = 30 * time.Second
	DefaultLinger         = time.Minute
	DefaultStoreTimeout   = 10 * time.Second
)

// maxWindow bounds Config.Window: a longer live window is look-back, which
// the session's VOD playlist serves.
const maxWindow = 1000

var (
	// ErrUnknownStream means the stream has no live presentation: it was
	// never started, or it has ended.
	ErrUnknownStream = errors.New("packager: unknown stream")
	// ErrUnknownSession means the session is not part of the stream's
	// presentation.
	ErrUnknownSession = errors.New("packager: unknown session")
	// ErrStale means a result or gap came for a segment that is already
	// published, skipped, held or beyond the session's announced end; it
	// was ignored.
	ErrStale = errors.New("packager: stale segment")
	// ErrBadResult means a result cannot be published (malformed, or not
	// matching the presentation's renditions); the segment is skipped as
	// a gap.
	ErrBadResult = errors.New("packager: bad result")
	// ErrStore means a store call failed while publishing a segment; the
	// segment is skipped as a gap, so one failure cannot stall a stream.
	ErrStore = errors.New("packager: store failed")
	// ErrClosed means the Packager was closed.
	ErrClosed = errors.New("packager: closed")
)

// objectStore is what the packager needs of the object store.
type objectStore interface {
	Put(ctx context.Context, key string, data []byte, contentType string) error
	Get(ctx context.Context, key string) ([]byte, error)
}

// Config configures a Packager. Store is required.
type Config struct {
	Store objectStore
	// Clock defaults to the wall clock.
	Clock Clock
	// Logger defaults to discarding.
	Logger *slog.Logger
	// TargetDuration is the nominal segment duration (the segmenter's
	// target). EXT-X-TARGETDURATION is the larger of it and the longest
	// segment published so far in the presentation, so it never shrinks
	// as the window slides. Default 2 s.
	TargetDuration time.Duration
	// Window is the number of segments in a live playlist. Default 6.
	Window int
	// Grace is how long a presentation waits for its publisher to come
	// back. Default 10 s.
	Grace time.Duration
	// MaxHold is how long a segment may wait behind a missing one, and
	// how long after the grace the packager waits for announced segments,
	// before the missing ones are declared lost. Default 30 s.
	MaxHold time.Duration
	// Linger is how long an ended presentation's playlists stay served.
	// Default 1 min.
	Linger time.Duration
	// StoreTimeout bounds one store call. Default 10 s.
	StoreTimeout time.Duration
	// UTCTimingURL, when set, is served in the MPD as an
	// urn:mpeg:dash:utc:http-iso:2014 time source; otherwise the MPD
	// carries its publish time (urn:mpeg:dash:utc:direct:2014).
	UTCTimingURL string
}

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("packager: 'store' is required")
	}
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"target_duration", &c.TargetDuration, DefaultTargetDuration},
		{"grace", &c.Grace, DefaultGrace},
		{"max_hold", &c.MaxHold, DefaultMaxHold},
		{"linger", &c.Linger, DefaultLinger},
		{"store_timeout", &c.StoreTimeout, DefaultStoreTimeout},
	}
	for _, d := range durations {
		switch {
		case *d.v < 0:
			return fmt.Errorf("packager: '%s' must not be negative, got %v", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if c.TargetDuration > time.Minute {
		return fmt.Errorf("packager: 'target_duration' must be at most 1m, got %v", c.TargetDuration)
	}
	switch {
	case c.Window < 0 || c.Window > maxWindow:
		return fmt.Errorf("packager: 'window' must be between 1 and %d segments, got %d", maxWindow, c.Window)
	case c.Window == 0:
		c.Window = DefaultWindow
	}
	return nil
}

// Result is the transcode output of one source segment of a session.
type Result struct {
	Stream, Session string
	// Seq is the source segment's number within the session (the
	// segmenter's, not the output media sequence number).
	Seq uint64
	// Discontinuity says the source segment does not continue the one
	// before it (the segmenter found a timestamp jump or a reconnect).
	Discontinuity bool
	// Renditions holds every rendition of the ladder.
	Renditions []Output
}

// Output is one rendition's output for a source segment.
type Output struct {
	// Rendition describes the rendition; its Init holds the init segment,
	// or is empty when InitKey names it in the store.
	media.Rendition
	InitKey string
	// InitHash is the init segment's SHA-256 in hex; when empty it is
	// computed from the bytes.
	InitHash string
	// Segments are the output media segments, 1..n per source segment;
	// every rendition must give the same number.
	Segments []Segment
}

// Segment is one output media segment: its timing, and its bytes in Data
// or, when Data is empty, in the store under Key. Segment.Seq is ignored:
// the packager numbers segments.
type Segment struct {
	media.Segment
	Key string
}

// StartOptions tune Start.
type StartOptions struct {
	// FirstSourceSeq is the session's first source segment number (the
	// segmenter's FirstSeq).
	FirstSourceSeq uint64
	// FirstSeq is the lowest media sequence number a new presentation may
	// start at; the packager starts it at the larger of this and the
	// number after the last one it published for the stream. Ignored when
	// the session joins a presentation.
	FirstSeq uint64
}

// Metrics are the packager's counters since New, for export.
type Metrics struct {
	// SegmentsPublished counts output segments (each in every rendition).
	SegmentsPublished uint64
	// SourceSegments counts source segments published.
	SourceSegments uint64
	// Gaps counts source segments skipped: declared lost by Gap, forced
	// by MaxHold, or unpublishable (ErrBadResult).
	Gaps uint64
	// ForcedGaps counts the gaps the packager declared itself (MaxHold).
	ForcedGaps uint64
	// Discontinuities counts published segments that carry one.
	Discontinuities uint64
	// InitChanges counts init segments that replaced a rendition's
	// previous one within a presentation.
	InitChanges uint64
	// TimelineRewinds counts discontinuities whose media time went back.
	TimelineRewinds uint64
	// StaleResults counts results and gaps ignored as stale.
	StaleResults uint64
	// StoreErrors counts failed store calls.
	StoreErrors uint64
	// LiveStreams is the number of presentations not yet ended (live, in
	// their grace period, or waiting for their last segments).
	LiveStreams int64
}

type counters struct {
	segments, sources, gaps, forced, discs, inits, rewinds, stale, storeErrs atomic.Uint64
	live                                                                     atomic.Int64
}

// Packager holds the live presentations of a coordinator's streams. Its
// methods are safe for concurrent use. Calls for one stream are
// serialized: Publish, Gap and End do the stream's store writes before
// they return, so call them from a goroutine that may wait on the store
// (not the one reading results, if that must not stall).
type Packager struct {
	cfg   Config
	log   *slog.Logger
	clock Clock
	store objectStore
	m     counters

	// ctx bounds store calls; Close cancels it after the final writes.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	streams map[string]*stream // never shrinks: a stream keeps its next sequence number
	closed  bool
	timers  sync.WaitGroup // timer callbacks running
}

// New returns a Packager; its timers start with the first stream.
func New(cfg Config) (*Packager, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Packager{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "packager"),
		clock:   cfg.Clock,
		store:   cfg.Store,
		ctx:     ctx,
		cancel:  cancel,
		streams: map[string]*stream{},
	}, nil
}

// Metrics returns the counters.
func (p *Packager) Metrics() Metrics {
	return Metrics{
		SegmentsPublished: p.m.segments.Load(),
		SourceSegments:    p.m.sources.Load(),
		Gaps:              p.m.gaps.Load(),
		ForcedGaps:        p.m.forced.Load(),
		Discontinuities:   p.m.discs.Load(),
		InitChanges:       p.m.inits.Load(),
		TimelineRewinds:   p.m.rewinds.Load(),
		StaleResults:      p.m.stale.Load(),
		StoreErrors:       p.m.storeErrs.Load(),
		LiveStreams:       p.m.live.Load(),
	}
}

// stream returns the stream's state, creating it when create is set.
func (p *Packager) stream(name string, create bool) (*stream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	s := p.streams[name]
	if s == nil {
		if !create {
			return nil, fmt.Errorf("%w %q", ErrUnknownStream, name)
		}
		s = &stream{p: p, name: name, log: p.log.With("stream", name)}
		p.streams[name] = s
	}
	return s, nil
}

// Start says a publisher began session of stream. Within the grace
// period of the stream's presentation (or while it is still live: a new
// publisher replacing the old) the session joins that presentation with a
// discontinuity; otherwise it starts a new presentation. Starting the
// session that is already live does nothing; starting the session that
// just left is Resume.
func (p *Packager) Start(streamName, session string, opts StartOptions) error {
	if !validName(streamName) || !validName(session) {
		return fmt.Errorf("packager: start %q/%q: names must be 1..128 characters of [A-Za-z0-9._-] not starting with '.'", streamName, session)
	}
	s, err := p.stream(streamName, true)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start(session, opts)
}

// Resume says the publisher of the stream's last session came back
// within the grace period and goes on with the same session and source
// numbering: the next segment after those announced by End carries a
// discontinuity.
func (p *Packager) Resume(streamName string) error {
	s, err := p.stream(streamName, false)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resume()
}

// End says the publisher of session left after the segmenter announced
// source segments up to next-1: each of those will still get a Publish or
// a Gap. The grace period starts.
func (p *Packager) End(streamName, session string, next uint64) error {
	s, err := p.stream(streamName, false)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end(session, next)
}

// Publish hands over a source segment's transcode result. It returns once
// every segment it made publishable is in the store and the playlists
// list it. Errors wrap ErrUnknownStream, ErrUnknownSession, ErrStale
// (ignored), or ErrBadResult or ErrStore (this or another segment it
// would have published was skipped as a gap).
func (p *Packager) Publish(r Result) error {
	s, err := p.stream(r.Stream, false)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.publish(r)
}

// Gap declares source segment seq of session lost (quarantined): it is
// skipped and the next published segment carries a discontinuity.
func (p *Packager) Gap(streamName, session string, seq uint64) error {
	s, err := p.stream(streamName, false)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gap(session, seq)
}

// NextSeq returns the media sequence number the stream's next segment
// would get, for the registry to keep across coordinator restarts.
func (p *Packager) NextSeq(streamName string) (uint64, bool) {
	s, err := p.stream(streamName, false)
	if err != nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextSeq, true
}

// Close stops the timers, writes the VOD playlists of the sessions that
// are still live (what they have so far) and waits for running timer
// callbacks. Live playlists are not ended: another coordinator may take
// the streams over.
func (p *Packager) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	streams := make([]*stream, 0, len(p.streams))
	for _, s := range p.streams {
		streams = append(streams, s)
	}
	p.mu.Unlock()
	slices.SortFunc(streams, func(a, b *stream) int { return strings.Compare(a.name, b.name) })
	var errs []error
	for _, s := range streams {
		s.mu.Lock()
		errs = append(errs, s.close())
		s.mu.Unlock()
	}
	p.timers.Wait()
	p.cancel()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("packager: close: %w", err)
	}
	return nil
}

// enterTimer registers a timer callback; it reports false once closed.
func (p *Packager) enterTimer() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.timers.Add(1)
	return true
}

func (p *Packager) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// validName mirrors the queue's names: 1..128 of [A-Za-z0-9._-], not
// starting with '.', so a name is always one safe key and URL segment.
func validName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
