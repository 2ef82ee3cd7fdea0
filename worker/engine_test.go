package worker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/profiles"
	"github.com/livegrid/livegrid/worker/transcode"
)

// fakeSession records the segments it is given; block, when set, holds
// Transcode until it is closed.
type fakeSession struct {
	mu     sync.Mutex
	name   string
	seqs   []uint64
	closed bool
	block  chan struct{}
	inside chan struct{}
}

func (s *fakeSession) Transcode(ctx context.Context, seg transcode.LiveSegment) (*transcode.SegmentResult, error) {
	if s.inside != nil {
		s.inside <- struct{}{}
	}
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, transcode.ErrSessionClosed
	}
	s.seqs = append(s.seqs, seg.Seq)
	return &transcode.SegmentResult{}, nil
}

func (s *fakeSession) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *fakeSession) state() ([]uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seqs), s.closed
}

// sessionRig is an EngineTranscoder on fakes and a settable clock.
type sessionRig struct {
	tr       *EngineTranscoder
	mu       sync.Mutex
	now      time.Time
	opened   []*fakeSession
	oneShots int
	next     func(*fakeSession) // set up each new session
}

func newSessionRig(max int) *sessionRig {
	r := &sessionRig{now: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	r.tr = &EngineTranscoder{
		MaxSessions: max,
		Now: func() time.Time {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.now
		},
		openLive: func(l *profiles.Ladder, o transcode.LiveOptions) liveSession {
			r.mu.Lock()
			defer r.mu.Unlock()
			s := &fakeSession{name: fmt.Sprintf("%s@%v", l.Name, o.SegmentDuration)}
			if r.next != nil {
				r.next(s)
			}
			r.opened = append(r.opened, s)
			return s
		},
		oneShot: func(context.Context, transcode.Source, *profiles.Ladder, transcode.SegmentOptions) (*transcode.SegmentResult, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.oneShots++
			return &transcode.SegmentResult{}, nil
		},
	}
	return r
}

func (r *sessionRig) advance(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = r.now.Add(d)
}

func (r *sessionRig) counts() (opened, oneShots int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.opened), r.oneShots
}

func (r *sessionRig) session(i int) *fakeSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opened[i]
}

var (
	ladderA = &profiles.Ladder{Name: "a", Rungs: []profiles.Rung{{Name: "360p", Height: 360, Bitrate: 800_000}}}
	ladderB = &profiles.Ladder{Name: "b", Rungs: []profiles.Rung{{Name: "180p", Height: 180, Bitrate: 200_000}}}
)

func (r *sessionRig) segment(t *testing.T, stream string, seq uint64, ladder *profiles.Ladder) {
	t.Helper()
	in := SegmentInput{Data: []byte("FLV"), Format: "flv", Ladder: ladder, SegmentDuration: 2 * time.Second, End: -1,
		Stream: stream, Session: "s1", Seq: seq}
	if _, err := r.tr.TranscodeSegment(context.Background(), in); err != nil {
		t.Errorf("%s segment %d: %v", stream, seq, err)
	}
}

func TestLiveSessionsReusedPerStream(t *testing.T) {
	r := newSessionRig(2)
	for seq := range uint64(3) {
		r.segment(t, "cam1", seq, ladderA)
	}
	r.segment(t, "cam2", 7, ladderA)
	r.segment(t, "cam1", 3, ladderA)
	if opened, oneShots := r.counts(); opened != 2 || oneShots != 0 {
		t.Fatalf("%d sessions opened, %d one-shot segments; want 2 and 0", opened, oneShots)
	}
	if seqs, _ := r.session(0).state(); !slices.Equal(seqs, []uint64{0, 1, 2, 3}) {
		t.Errorf("cam1's session got %v", seqs)
	}
	if seqs, _ := r.session(1).state(); !slices.Equal(seqs, []uint64{7}) {
		t.Errorf("cam2's session got %v", seqs)
	}
	// A segment of no stream, or of another publish of the stream.
	if _, err := r.tr.TranscodeSegment(context.Background(), SegmentInput{Ladder: ladderA}); err != nil {
		t.Fatal(err)
	}
	if _, oneShots := r.counts(); oneShots != 1 {
		t.Errorf("a segment without a stream did not run on its own")
	}
}

func TestLiveSessionsClosedWhenIdle(t *testing.T) {
	r := newSessionRig(2)
	r.segment(t, "cam1", 0, ladderA)
	r.advance(9 * time.Second) // default: 5 segment durations of 2 s
	r.tr.CloseIdle()
	if _, closed := r.session(0).state(); closed || r.tr.Sessions() != 1 {
		t.Fatal("closed before 10 s idle")
	}
	r.advance(time.Second)
	r.tr.CloseIdle()
	if _, closed := r.session(0).state(); !closed || r.tr.Sessions() != 0 {
		t.Fatal("still open after 10 s idle")
	}
	r.segment(t, "cam1", 6, ladderA)
	if opened, _ := r.counts(); opened != 2 {
		t.Fatalf("%d sessions opened, want a new one after the idle close", opened)
	}
}

func TestLiveSessionsLeastRecentlyUsedMakesRoom(t *testing.T) {
	r := newSessionRig(2)
	r.segment(t, "cam1", 0, ladderA)
	r.advance(time.Second)
	r.segment(t, "cam2", 0, ladderA)
	r.advance(time.Second)
	r.segment(t, "cam1", 1, ladderA)
	r.advance(time.Second)
	r.segment(t, "cam3", 0, ladderA) // cam2 is the least recently used
	if _, closed := r.session(1).state(); !closed {
		t.Error("cam2's session not closed for cam3")
	}
	if _, closed := r.session(0).state(); closed {
		t.Error("cam1's session closed")
	}
	if r.tr.Sessions() != 2 {
		t.Errorf("%d sessions, want 2", r.tr.Sessions())
	}
}

func TestLiveSessionsLadderChange(t *testing.T) {
	r := newSessionRig(2)
	r.segment(t, "cam1", 0, ladderA)
	same := *ladderA // parsed again: another pointer, the same ladder
	r.segment(t, "cam1", 1, &same)
	r.segment(t, "cam1", 2, ladderB)
	if opened, _ := r.counts(); opened != 2 {
		t.Fatalf("%d sessions opened, want 2", opened)
	}
	if seqs, closed := r.session(0).state(); !closed || !slices.Equal(seqs, []uint64{0, 1}) {
		t.Errorf("first session: %v, closed %v", seqs, closed)
	}
}

// TestLiveSessionsConcurrent: while a stream's session runs a segment, its
// next segment runs on its own, and so does a new stream's when every
// session is busy; Close waits for the busy session's segment.
func TestLiveSessionsConcurrent(t *testing.T) {
	r := newSessionRig(1)
	block, inside := make(chan struct{}), make(chan struct{})
	r.next = func(s *fakeSession) { s.block, s.inside = block, inside }
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.segment(t, "cam1", 0, ladderA)
	}()
	<-inside
	r.mu.Lock()
	r.next = nil
	r.mu.Unlock()
	var wg sync.WaitGroup
	for i, stream := range []string{"cam1", "cam2", "cam1"} {
		wg.Go(func() { r.segment(t, stream, uint64(10+i), ladderA) })
	}
	wg.Wait()
	if opened, oneShots := r.counts(); opened != 1 || oneShots != 3 {
		t.Fatalf("%d sessions opened, %d one-shot segments; want 1 and 3", opened, oneShots)
	}
	if err := r.tr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, closed := r.session(0).state(); closed {
		t.Fatal("Close closed a session running a segment")
	}
	close(block)
	<-done
	if seqs, closed := r.session(0).state(); !closed || !slices.Equal(seqs, []uint64{0}) {
		t.Fatalf("session: %v, closed %v; want [0] and closed after its segment", seqs, closed)
	}
	if r.tr.Sessions() != 0 {
		t.Fatalf("%d sessions after Close", r.tr.Sessions())
	}
}

func TestLiveSessionsCapacityFromWorker(t *testing.T) {
	r := newSessionRig(0)
	r.tr.setCapacity(3)
	for _, s := range []string{"a", "b", "c", "d"} {
		r.segment(t, s, 0, ladderA)
		r.advance(time.Second)
	}
	if n := r.tr.Sessions(); n != 3 {
		t.Fatalf("%d sessions with a worker concurrency of 3", n)
	}
}
