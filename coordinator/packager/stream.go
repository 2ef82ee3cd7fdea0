package packager

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/manifest"
	"github.com/livegrid/livegrid/internal/media"
)

// presState is where a presentation is in its life.
type presState int

const (
	stateLive     presState = iota // a publisher is on
	stateGrace                     // the publisher left; it may come back
	stateDraining                  // grace over; waiting for announced segments
	stateEnded                     // playlists ended; served until lingerUntil
)

// stream is one stream name's state. mu guards everything but view and is
// held across the store writes of a publish, so one stream's calls run one
// at a time while other streams go on.
type stream struct {
	p    *Packager
	name string
	log  *slog.Logger

	mu      sync.Mutex
	nextSeq uint64 // next media sequence number; survives presentations
	pres    *presentation
	timer   Timer
	dirty   bool // the view is out of date

	// view is what Origin serves, replaced whole on every change.
	view atomic.Pointer[view]
}

// presentation is what /live/{stream}/ serves: sessions joined by
// reconnects, numbered as one.
type presentation struct {
	state presState
	parts []*part // sessions in publish order
	head  int     // the part being published; those before it are finished

	ladder    []*rendition // fixed by the first published segment
	initInfo  map[string]*cmaf.Init
	firstSeq  uint64
	published bool
	ast       time.Time // availabilityStartTime: wall clock of media time 0
	target    time.Duration
	window    int

	pendingDisc bool            // the next published segment starts a discontinuity
	floor       uint64          // the live window starts no earlier (last init change)
	discs       []discontinuity // every discontinuity published
	segs        []*outSeg       // published segments from the window or the head part on

	graceUntil, drainFrom, lingerUntil time.Time
}

// discontinuity records where a period began, for Period@start once its
// first segment has left the window.
type discontinuity struct {
	seq   uint64
	start time.Duration
}

// part is one session of a presentation.
type part struct {
	session string
	nextSrc uint64 // next source segment to publish
	ended   bool   // the publisher left after announcing source segments below end
	end     uint64
	held    map[uint64]heldResult
	lost    map[uint64]bool
	discAt  map[uint64]bool // source segments that follow a resume
	// firstSeq and count say which output segments the session published.
	firstSeq, count uint64
	// inits maps rendition → init hash → file name in the session folder.
	inits      map[string]map[string]string
	initHashes map[string]string // store key → hash, for results without InitHash
	vodWritten bool
}

type heldResult struct {
	r  Result
	at time.Time
}

func newPart(session string, firstSrc uint64) *part {
	return &part{
		session: session, nextSrc: firstSrc,
		held: map[uint64]heldResult{}, lost: map[uint64]bool{}, discAt: map[uint64]bool{},
		inits: map[string]map[string]string{}, initHashes: map[string]string{},
	}
}

func (pt *part) finished() bool { return pt.ended && pt.nextSrc >= pt.end }

// rendition is one rung of a presentation's ladder.
type rendition struct {
	info     media.Rendition // Init dropped
	kind     manifest.Kind
	initHash string            // current init segment
	initName string            // its name in live playlists
	initKeys map[string]string // live init name → store key
	// Bandwidth measured over the presentation.
	peak       int64
	bits, secs float64
	// End of the last published segment, in media time.
	lastEnd time.Duration
}

// outSeg is one published output segment, in every rendition.
type outSeg struct {
	seq  uint64
	part *part
	disc bool
	r    []segInfo // by ladder index
}

type segInfo struct {
	start, dur uint64
	timescale  uint32
	size       int
	liveInit   string // init URI in live playlists
	vodInit    string // init file name in the session folder
}

// start handles Start; s.mu is held.
func (s *stream) start(session string, opts StartOptions) error {
	now := s.p.clock.Now()
	pr := s.pres
	if pr == nil || pr.state == stateEnded {
		s.nextSeq = max(s.nextSeq, opts.FirstSeq)
		s.pres = &presentation{
			state: stateLive, parts: []*part{newPart(session, opts.FirstSourceSeq)},
			initInfo: map[string]*cmaf.Init{}, firstSeq: s.nextSeq, target: s.p.cfg.TargetDuration,
			window: s.p.cfg.Window,
		}
		s.dirty = true
		s.p.m.live.Add(1)
		s.log.Info("presentation started", "session", session, "first_seq", s.nextSeq)
		return s.settle(now)
	}
	last := pr.parts[len(pr.parts)-1]
	if last.session == session {
		if pr.state == stateLive {
			return nil
		}
		return s.resume()
	}
	for _, pt := range pr.parts {
		if pt.session == session {
			return fmt.Errorf("packager: start %s/%s: the session already left the presentation: %w", s.name, session, ErrStale)
		}
	}
	if pr.state == stateLive {
		// A new publisher took the stream over without the old one
		// leaving: the old session ends after what it has sent.
		end := last.nextSrc
		for k := range last.held {
			end = max(end, k+1)
		}
		s.log.Warn("new session replaces a live one", "session", session, "old_session", last.session, "old_end", end)
		s.endPart(last, end)
	}
	pr.parts = append(pr.parts, newPart(session, opts.FirstSourceSeq))
	pr.state = stateLive
	s.log.Info("publisher reconnected", "session", session, "after", last.session)
	return s.settle(now)
}

// resume handles Resume; s.mu is held.
func (s *stream) resume() error {
	pr := s.pres
	if pr == nil || pr.state == stateEnded {
		return fmt.Errorf("packager: resume %s: %w (no presentation in its grace period)", s.name, ErrUnknownStream)
	}
	if pr.state == stateLive {
		return nil
	}
	last := pr.parts[len(pr.parts)-1]
	last.ended = false
	last.discAt[last.end] = true
	last.vodWritten = false
	pr.state = stateLive
	s.log.Info("publisher resumed", "session", last.session, "from_source_seq", last.end)
	return s.settle(s.p.clock.Now())
}

// end handles End; s.mu is held.
func (s *stream) end(session string, next uint64) error {
	pr := s.pres
	if pr == nil || pr.state == stateEnded {
		return fmt.Errorf("packager: end %s/%s: %w", s.name, session, ErrUnknownStream)
	}
	last := pr.parts[len(pr.parts)-1]
	if last.session != session {
		for _, pt := range pr.parts {
			if pt.session == session {
				return nil // replaced by a newer session already
			}
		}
		return fmt.Errorf("packager: end %s/%s: %w", s.name, session, ErrUnknownSession)
	}
	if last.ended {
		return nil
	}
	now := s.p.clock.Now()
	s.endPart(last, next)
	pr.state = stateGrace
	pr.graceUntil = now.Add(s.p.cfg.Grace)
	s.log.Info("publisher left; grace period started", "session", session, "announced", next, "grace", s.p.cfg.Grace)
	return s.settle(now)
}

// endPart closes a session's source numbering at end; what it holds from
// end on can never be published.
func (s *stream) endPart(pt *part, end uint64) {
	pt.ended = true
	pt.end = max(end, pt.nextSrc)
	for k := range pt.held {
		if k >= pt.end {
			delete(pt.held, k)
			s.p.m.stale.Add(1)
			s.log.Warn("dropping a result beyond the session's end", "session", pt.session, "source_seq", k, "end", pt.end)
		}
	}
	for k := range pt.lost {
		if k >= pt.end {
			delete(pt.lost, k)
		}
	}
}

// publish handles Publish; s.mu is held.
func (s *stream) publish(r Result) error {
	pt, err := s.partFor("publish", r.Session, r.Seq)
	if err != nil {
		return err
	}
	now := s.p.clock.Now()
	if err := checkResult(&r); err != nil {
		pt.lost[r.Seq] = true
		s.log.Warn("result cannot be published; skipping the segment", "session", r.Session, "source_seq", r.Seq, "err", err)
		return errors.Join(fmt.Errorf("packager: publish %s/%s/%d: %w", s.name, r.Session, r.Seq, err), s.settle(now))
	}
	pt.held[r.Seq] = heldResult{r: r, at: now}
	return s.settle(now)
}

// gap handles Gap; s.mu is held.
func (s *stream) gap(session string, seq uint64) error {
	pt, err := s.partFor("gap", session, seq)
	if err != nil {
		return err
	}
	pt.lost[seq] = true
	return s.settle(s.p.clock.Now())
}

// partFor finds the part a result or gap belongs to and refuses one it
// has already seen.
func (s *stream) partFor(op, session string, seq uint64) (*part, error) {
	pr := s.pres
	if pr == nil {
		return nil, fmt.Errorf("packager: %s %s/%s/%d: %w", op, s.name, session, seq, ErrUnknownStream)
	}
	if pr.state == stateEnded {
		s.p.m.stale.Add(1)
		return nil, fmt.Errorf("packager: %s %s/%s/%d: presentation ended: %w", op, s.name, session, seq, ErrStale)
	}
	var pt *part
	for _, c := range pr.parts {
		if c.session == session {
			pt = c
		}
	}
	if pt == nil {
		return nil, fmt.Errorf("packager: %s %s/%s/%d: %w", op, s.name, session, seq, ErrUnknownSession)
	}
	_, held := pt.held[seq]
	if seq < pt.nextSrc || held || pt.lost[seq] || pt.ended && seq >= pt.end {
		s.p.m.stale.Add(1)
		return nil, fmt.Errorf("packager: %s %s/%s/%d: already resolved or beyond the session's end: %w", op, s.name, session, seq, ErrStale)
	}
	return pt, nil
}

// settle brings the stream up to date at now: it ends the grace period,
// publishes what is contiguous, declares overdue segments lost, ends the
// presentation once nothing is outstanding, re-renders the view and sets
// the timer for the next deadline. It returns the errors of publishes.
func (s *stream) settle(now time.Time) error {
	var errs []error
	if pr := s.pres; pr != nil && pr.state != stateEnded {
		if pr.state == stateGrace && !now.Before(pr.graceUntil) {
			pr.state = stateDraining
			pr.drainFrom = pr.graceUntil
			s.dirty = true
		}
		errs = append(errs, s.pump(now)...)
		for s.forceSkip(now) {
			errs = append(errs, s.pump(now)...)
		}
		if pr.state == stateDraining && pr.head == len(pr.parts)-1 && pr.parts[pr.head].finished() {
			pr.state = stateEnded
			pr.lingerUntil = now.Add(s.p.cfg.Linger)
			s.dirty = true
			s.p.m.live.Add(-1)
			s.log.Info("presentation ended", "next_seq", s.nextSeq)
		}
	}
	if pr := s.pres; pr != nil && pr.state == stateEnded && !now.Before(pr.lingerUntil) {
		s.pres = nil
		s.dirty = true
	}
	if s.dirty {
		s.render(now)
	}
	s.reschedule(now)
	return errors.Join(errs...)
}

// pump publishes the head part's contiguous segments and moves on to the
// next part when the head one is finished.
func (s *stream) pump(now time.Time) []error {
	pr := s.pres
	var errs []error
	for {
		pt := pr.parts[pr.head]
		if pt.finished() {
			if !pt.vodWritten {
				pt.vodWritten = true
				if err := s.writeVOD(pt); err != nil {
					errs = append(errs, err)
				}
			}
			if pr.head+1 == len(pr.parts) {
				return errs
			}
			pr.head++
			pr.pendingDisc = true
			continue
		}
		k := pt.nextSrc
		h, held := pt.held[k]
		if !held && !pt.lost[k] {
			return errs
		}
		pt.nextSrc++
		if pt.discAt[k] {
			delete(pt.discAt, k)
			pr.pendingDisc = true
		}
		if !held {
			delete(pt.lost, k)
			s.skipped(1)
			continue
		}
		delete(pt.held, k)
		if err := s.commit(pt, h.r, now); err != nil {
			s.log.Warn("segment not published; skipping it", "session", pt.session, "source_seq", k, "err", err)
			errs = append(errs, err)
			s.skipped(1)
		}
	}
}

// skipped records n lost source segments: the next published segment
// starts a discontinuity.
func (s *stream) skipped(n uint64) {
	s.pres.pendingDisc = true
	s.p.m.gaps.Add(n)
}

// holdTarget says whether something has waited MaxHold and, if so, the
// source segment the head part should skip to (its first held one, or
// its end).
func (s *stream) holdTarget() (deadline time.Time, to uint64, ok bool) {
	pr := s.pres
	if pr == nil || pr.state == stateEnded {
		return time.Time{}, 0, false
	}
	var oldest time.Time
	for _, pt := range pr.parts[pr.head:] {
		for _, h := range pt.held {
			if oldest.IsZero() || h.at.Before(oldest) {
				oldest = h.at
			}
		}
	}
	if pr.state == stateDraining && (oldest.IsZero() || pr.drainFrom.Before(oldest)) {
		oldest = pr.drainFrom
	}
	if oldest.IsZero() {
		return time.Time{}, 0, false
	}
	head := pr.parts[pr.head]
	found := false
	for k := range head.held {
		if !found || k < to {
			to, found = k, true
		}
	}
	if !found {
		if !head.ended {
			return time.Time{}, 0, false
		}
		to = head.end
	}
	if to <= head.nextSrc {
		return time.Time{}, 0, false
	}
	return oldest.Add(s.p.cfg.MaxHold), to, true
}

// forceSkip declares the head part's missing segments lost once something
// has waited MaxHold behind them.
func (s *stream) forceSkip(now time.Time) bool {
	deadline, to, ok := s.holdTarget()
	if !ok || now.Before(deadline) {
		return false
	}
	pt := s.pres.parts[s.pres.head]
	n := to - pt.nextSrc
	s.log.Warn("declaring missing source segments lost after waiting", "session", pt.session,
		"from_source_seq", pt.nextSrc, "count", n, "max_hold", s.p.cfg.MaxHold)
	for k := range pt.lost {
		if k < to {
			delete(pt.lost, k)
		}
	}
	for k := range pt.discAt {
		if k < to {
			delete(pt.discAt, k)
		}
	}
	pt.nextSrc = to
	s.skipped(n)
	s.p.m.forced.Add(n)
	return true
}

// reschedule sets the timer for the stream's next deadline.
func (s *stream) reschedule(now time.Time) {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	pr := s.pres
	if pr == nil || s.p.isClosed() {
		return
	}
	var at time.Time
	consider := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	switch pr.state {
	case stateGrace:
		consider(pr.graceUntil)
	case stateEnded:
		consider(pr.lingerUntil)
	}
	if t, _, ok := s.holdTarget(); ok {
		consider(t)
	}
	if !at.IsZero() {
		s.timer = s.p.clock.AfterFunc(max(0, at.Sub(now)), s.onTimer)
	}
}

func (s *stream) onTimer() {
	if !s.p.enterTimer() {
		return
	}
	defer s.p.timers.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.settle(s.p.clock.Now()); err != nil {
		s.log.Warn("publishing after a timer", "err", err)
	}
}

// close stops the timer and writes the VOD playlists of sessions not yet
// written; s.mu is held.
func (s *stream) close() error {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	pr := s.pres
	if pr == nil {
		return nil
	}
	var errs []error
	for _, pt := range pr.parts {
		if pt.count > 0 && !pt.vodWritten {
			pt.vodWritten = true
			errs = append(errs, s.writeVOD(pt))
		}
	}
	return errors.Join(errs...)
}
