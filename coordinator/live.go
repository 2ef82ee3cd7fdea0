package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livegrid/livegrid/coordinator/packager"
	"github.com/livegrid/livegrid/coordinator/scheduler"
	"github.com/livegrid/livegrid/coordinator/segmenter"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/hub"
	"github.com/livegrid/livegrid/internal/queue"
	"github.com/livegrid/livegrid/internal/store"
)

// live runs one pipeline per published stream: hub reader → segmenter →
// store → scheduler, with the packager told when a session starts and ends.
// It owns the pipelines' goroutines; close waits for them.
type live struct {
	cfg   *config.Config
	log   *slog.Logger
	store store.Store
	sched *scheduler.Scheduler
	pk    *packager.Packager
	ctx   context.Context // ends when the scheduler stops
	// ladders are the per-stream ladders set through the API.
	ladders *ladderOverrides

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	// parked holds, per stream, the pipeline of the publisher that left
	// last, so one that comes back within the grace continues its session
	// and its segmenter's timeline (packager Resume); gen counts the
	// stream's publishes, so only the latest pipeline parks.
	parked map[string]*pipeline
	gen    map[string]uint64
}

// pipeline is what a publish session keeps across a reconnect.
type pipeline struct {
	session string
	ladder  queue.Ladder
	seg     *segmenter.Segmenter
	next    uint64 // the source segment after the last emitted
	left    time.Time
}

// event is the hub watcher; it must not block.
func (l *live) event(ev hub.Event) {
	if ev.Type != hub.Published {
		return // the pipeline's reader sees the end itself
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.gen == nil {
		l.gen = map[string]uint64{}
	}
	l.gen[ev.Stream.Name()]++
	gen := l.gen[ev.Stream.Name()]
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.run(ev.Stream, gen)
	}()
}

// unpark takes the stream's parked pipeline, if any.
func (l *live) unpark(name string) *pipeline {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.parked[name]
	delete(l.parked, name)
	return p
}

// park keeps p for a reconnect unless a newer publish of the stream has
// started; pipelines parked long past any grace are dropped.
func (l *live) park(name string, gen uint64, p *pipeline) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p.left = time.Now()
	for n, q := range l.parked {
		if p.left.Sub(q.left) > 2*l.cfg.Packager.Grace+time.Minute {
			delete(l.parked, n)
		}
	}
	if l.gen[name] != gen {
		return
	}
	if l.parked == nil {
		l.parked = map[string]*pipeline{}
	}
	l.parked[name] = p
}

// close stops new pipelines and waits for the running ones, which end
// when their streams do.
func (l *live) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wg.Wait()
}

// run is one publish of a stream: a new session, or the parked one
// continued when the publisher came back within the grace period.
func (l *live) run(st *hub.Stream, gen uint64) {
	name := st.Name()
	rd, err := st.Subscribe()
	if err != nil {
		l.log.Warn("subscribe", "stream", name, "err", err)
		return
	}
	defer rd.Close()
	p := l.unpark(name)
	if p != nil {
		if err := l.pk.Resume(name); err != nil {
			p = nil // the grace is over: a new presentation
		} else {
			p.seg.Discontinuity()
		}
	}
	var log *slog.Logger
	if p != nil {
		log = l.log.With("stream", name, "session", p.session)
		log.Info("stream pipeline resumed", "next_source_seq", p.next)
	} else {
		p = &pipeline{session: strconv.FormatInt(time.Now().UnixMilli(), 10)}
		log = l.log.With("stream", name, "session", p.session)
		ladder, err := ladderFor(l.cfg, l.ladders.profileFor(l.cfg, name))
		if err != nil {
			log.Error("ladder", "err", err)
			return
		}
		p.ladder = ladder
		if err := l.pk.Start(name, p.session, packager.StartOptions{}); err != nil {
			log.Error("packager start", "err", err)
			return
		}
		log.Info("stream pipeline started", "ladder", ladder.Profile)
		p.seg = segmenter.New(segmenter.Config{
			Target: l.cfg.Segments.Duration, MaxDuration: l.cfg.Segments.MaxDuration,
			Logger: log.With("component", "segmenter"),
		}, func(sg segmenter.Segment) error {
			p.next = sg.Seq + 1
			return l.submit(name, p.session, p.ladder, sg)
		})
	}
	for {
		t, err := rd.Next(l.ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Warn("stream reader ended", "err", err)
			}
			break
		}
		if err := p.seg.WriteTag(t); err != nil {
			log.Warn("segmenter", "err", err)
		}
	}
	if err := p.seg.Flush(); err != nil {
		log.Warn("segmenter flush", "err", err)
	}
	if err := l.pk.End(name, p.session, p.next); err != nil {
		log.Warn("packager end", "err", err)
	}
	log.Info("stream pipeline ended", "segments", p.next)
	l.park(name, gen, p)
}

// submit stores a source segment and hands it to the scheduler.
func (l *live) submit(name, session string, ladder queue.Ladder, sg segmenter.Segment) error {
	key := fmt.Sprintf("live/%s/%s/source/%d.flv", name, session, sg.Seq)
	ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
	defer cancel()
	if err := l.store.Put(ctx, key, sg.Data, "video/x-flv"); err != nil {
		return fmt.Errorf("store source segment %s: %w", key, err)
	}
	t := queue.Task{
		Stream: name, Session: session, Seq: sg.Seq,
		Source:          queue.Source{Key: key, Format: "flv", Size: len(sg.Data)},
		Ladder:          ladder,
		SegmentDuration: l.cfg.Segments.Duration,
		Start:           ticks90k(sg.Start), End: ticks90k(sg.End),
		Discontinuity: sg.Discontinuity,
	}
	if err := l.sched.Submit(ctx, t); err != nil {
		return fmt.Errorf("submit segment %d: %w", sg.Seq, err)
	}
	return nil
}

// ticks90k converts a presentation time to the 90 kHz clock.
func ticks90k(d time.Duration) int64 { return int64(d/time.Microsecond) * 9 / 100 }

// ladderFor turns a profile (the API's, transcode.profile or a rule's)
// into a task ladder: a builtin reference, or a YAML file's contents.
func ladderFor(cfg *config.Config, p string) (queue.Ladder, error) {
	if strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") {
		b, err := os.ReadFile(p)
		if err != nil {
			return queue.Ladder{}, fmt.Errorf("read ladder: %w", err)
		}
		l := queue.Ladder{Profile: p, YAML: string(b)}
		if _, err := l.Load(); err != nil {
			return queue.Ladder{}, err
		}
		return l, nil
	}
	l := queue.Ladder{Profile: p, Ref: "builtin:" + p}
	if _, err := l.Load(); err != nil {
		return queue.Ladder{}, err
	}
	return l, nil
}

// resultQueue carries results from the scheduler's OnResult, which must not
// block, to the goroutine that hands them to the packager, which writes to
// the store.
type resultQueue struct {
	mu     sync.Mutex
	items  []queue.Result
	closed bool
	wake   chan struct{}
}

func newResultQueue() *resultQueue { return &resultQueue{wake: make(chan struct{}, 1)} }

func (q *resultQueue) push(r queue.Result) {
	q.mu.Lock()
	q.items = append(q.items, r)
	q.mu.Unlock()
	q.signal()
}

func (q *resultQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close makes deliver return once it has delivered what was pushed.
func (q *resultQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *resultQueue) deliver(pk *packager.Packager, log *slog.Logger) {
	for {
		q.mu.Lock()
		items, closed := q.items, q.closed
		q.items = nil
		q.mu.Unlock()
		for _, r := range items {
			if err := pk.Deliver(r); err != nil {
				log.Warn("deliver", "stream", r.Stream, "seq", r.Seq, "status", r.Status, "err", err)
			}
		}
		if closed && len(items) == 0 {
			return
		}
		if len(items) == 0 {
			<-q.wake
		}
	}
}
