package worker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/livegrid/livegrid/profiles"
	"github.com/livegrid/livegrid/worker/transcode"
)

// EngineTranscoder runs segments on the transcode engine. A stream's
// segments go through the stream's live session, whose decoder and encoders
// stay open from one segment to the next (the scheduler routes a stream to
// the worker that ran its last segment). Sessions are bounded: a new stream
// closes the least recently used idle one, and a session whose stream sends
// nothing for IdleSegments segment durations is closed. A segment that finds
// its stream's session busy (with another of its segments), or no room for
// one, is transcoded on its own, as a segment without a stream is.
type EngineTranscoder struct {
	Engine *transcode.Engine
	// MaxSessions bounds the live sessions kept at once; 0 means the
	// worker's concurrency (Worker.Run says it), or 1.
	MaxSessions int
	// IdleSegments is how many segment durations a session waits for its
	// stream's next segment before it is closed; default 5.
	IdleSegments int
	Now          func() time.Time

	// openLive and oneShot stand in for the engine in tests.
	openLive func(*profiles.Ladder, transcode.LiveOptions) liveSession
	oneShot  func(context.Context, transcode.Source, *profiles.Ladder, transcode.SegmentOptions) (*transcode.SegmentResult, error)

	mu       sync.Mutex
	capacity int // the worker's concurrency
	sessions map[string]*liveEntry
}

// liveSession is what EngineTranscoder needs of transcode.LiveSession.
type liveSession interface {
	Transcode(ctx context.Context, seg transcode.LiveSegment) (*transcode.SegmentResult, error)
	Close() error
}

var (
	_ transcoder    = (*EngineTranscoder)(nil)
	_ encoderLister = (*EngineTranscoder)(nil)
	_ sessionKeeper = (*EngineTranscoder)(nil)
	_ liveSession   = (*transcode.LiveSession)(nil)
)

// liveEntry is one stream's session; EngineTranscoder.mu guards it.
type liveEntry struct {
	sess    liveSession
	ladder  *profiles.Ladder
	segDur  time.Duration
	busy    bool      // a segment is in it
	closing bool      // dropped from the map while busy: its segment's run closes it
	last    time.Time // when it last finished a segment
}

// TranscodeSegment transcodes one source segment held in memory. Input the
// engine cannot use at all is marked ErrBadSource.
func (e *EngineTranscoder) TranscodeSegment(ctx context.Context, in SegmentInput) (*SegmentOutput, error) {
	src := transcode.Source{Data: in.Data, Format: in.Format}
	ent, dropped := e.acquire(in)
	closeAll(dropped)
	var res *transcode.SegmentResult
	var err error
	if ent != nil {
		res, err = ent.sess.Transcode(ctx, transcode.LiveSegment{Seq: in.Seq, Source: src, End: in.End, Discontinuity: in.Discontinuity})
		e.release(ent)
	} else {
		oneShot := e.oneShot
		if oneShot == nil {
			oneShot = e.Engine.TranscodeSegment
		}
		res, err = oneShot(ctx, src, in.Ladder, transcode.SegmentOptions{SegmentDuration: in.SegmentDuration, End: in.End})
	}
	if err != nil {
		if errors.Is(err, transcode.ErrInvalidInput) || errors.Is(err, transcode.ErrUnsupportedCodec) || errors.Is(err, transcode.ErrNoVideo) {
			return nil, fmt.Errorf("%w: %w", ErrBadSource, err)
		}
		return nil, err
	}
	out := &SegmentOutput{Fallbacks: res.Fallbacks, Renditions: make([]RenditionOutput, len(res.Renditions))}
	for i, r := range res.Renditions {
		out.Renditions[i] = RenditionOutput{Rendition: r.RenditionInfo, Segments: r.Segments}
	}
	return out, nil
}

// acquire returns the stream's session, marked busy, or nil when the
// segment runs on its own; dropped are sessions to close.
func (e *EngineTranscoder) acquire(in SegmentInput) (ent *liveEntry, dropped []liveSession) {
	if in.Stream == "" || in.Ladder == nil {
		return nil, nil
	}
	key := in.Stream + "/" + in.Session
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sessions == nil {
		e.sessions = map[string]*liveEntry{}
	}
	if ent = e.sessions[key]; ent != nil {
		if ent.busy {
			return nil, nil // one segment of a stream at a time per session
		}
		if ent.segDur == in.SegmentDuration && (ent.ladder == in.Ladder || reflect.DeepEqual(*ent.ladder, *in.Ladder)) {
			ent.busy = true
			return ent, nil
		}
		delete(e.sessions, key) // the stream's ladder changed
		dropped = append(dropped, ent.sess)
	}
	if len(e.sessions) >= e.maxSessions() {
		var lru string
		for k, s := range e.sessions {
			if !s.busy && (lru == "" || s.last.Before(e.sessions[lru].last)) {
				lru = k
			}
		}
		if lru == "" {
			return nil, dropped // every session is running a segment
		}
		dropped = append(dropped, e.sessions[lru].sess)
		delete(e.sessions, lru)
	}
	open := e.openLive
	if open == nil {
		open = func(l *profiles.Ladder, o transcode.LiveOptions) liveSession { return e.Engine.OpenLive(l, o) }
	}
	ent = &liveEntry{sess: open(in.Ladder, transcode.LiveOptions{SegmentDuration: in.SegmentDuration}),
		ladder: in.Ladder, segDur: in.SegmentDuration, busy: true}
	e.sessions[key] = ent
	return ent, dropped
}

func (e *EngineTranscoder) release(ent *liveEntry) {
	e.mu.Lock()
	ent.busy = false
	ent.last = e.now()
	closing := ent.closing
	e.mu.Unlock()
	if closing {
		_ = ent.sess.Close()
	}
}

func (e *EngineTranscoder) maxSessions() int {
	switch {
	case e.MaxSessions > 0:
		return e.MaxSessions
	case e.capacity > 0:
		return e.capacity
	}
	return 1
}

func (e *EngineTranscoder) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// setCapacity tells the transcoder the worker's concurrency.
func (e *EngineTranscoder) setCapacity(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.capacity = n
}

// CloseIdle closes the sessions whose stream has sent nothing for
// IdleSegments segment durations.
func (e *EngineTranscoder) CloseIdle() {
	idle := e.IdleSegments
	if idle <= 0 {
		idle = 5
	}
	now := e.now()
	var dropped []liveSession
	e.mu.Lock()
	for k, s := range e.sessions {
		d := s.segDur
		if d <= 0 {
			d = 2 * time.Second
		}
		if !s.busy && now.Sub(s.last) >= time.Duration(idle)*d {
			dropped = append(dropped, s.sess)
			delete(e.sessions, k)
		}
	}
	e.mu.Unlock()
	closeAll(dropped)
}

// Close closes every live session; one running a segment closes when the
// segment is done. The transcoder stays usable and opens sessions anew.
func (e *EngineTranscoder) Close() error {
	var dropped []liveSession
	e.mu.Lock()
	for k, s := range e.sessions {
		if s.busy {
			s.closing = true
		} else {
			dropped = append(dropped, s.sess)
		}
		delete(e.sessions, k)
	}
	e.mu.Unlock()
	closeAll(dropped)
	return nil
}

// Sessions returns the number of live sessions held.
func (e *EngineTranscoder) Sessions() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sessions)
}

func closeAll(ss []liveSession) {
	for _, s := range ss {
		_ = s.Close() // a session's Close frees memory; it has nothing to report
	}
}

// UsableEncoders lists the encoders the engine's chain can open, as
// "kind/encoder".
func (e *EngineTranscoder) UsableEncoders() []string {
	var out []string
	for _, p := range e.Engine.Chain().ProbeAll() {
		if p.Usable {
			out = append(out, string(p.Kind)+"/"+p.Encoder)
		}
	}
	return out
}
