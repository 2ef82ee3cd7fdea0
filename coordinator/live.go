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

	"github.com/livegrid/livegrid/coordinator/hub"
	"github.com/livegrid/livegrid/coordinator/packager"
	"github.com/livegrid/livegrid/coordinator/scheduler"
	"github.com/livegrid/livegrid/coordinator/segmenter"
	"github.com/livegrid/livegrid/internal/config"
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

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
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
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.run(ev.Stream)
	}()
}

// close stops new pipelines and waits for the running ones, which end
// when their streams do.
func (l *live) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wg.Wait()
}

// run is one publish session of a stream.
func (l *live) run(st *hub.Stream) {
	name := st.Name()
	session := strconv.FormatInt(time.Now().UnixMilli(), 10)
	log := l.log.With("stream", name, "session", session)
	rd, err := st.Subscribe()
	if err != nil {
		log.Warn("subscribe", "err", err)
		return
	}
	defer rd.Close()
	ladder, err := ladderFor(l.cfg, name)
	if err != nil {
		log.Error("ladder", "err", err)
		return
	}
	if err := l.pk.Start(name, session, packager.StartOptions{}); err != nil {
		log.Error("packager start", "err", err)
		return
	}
	log.Info("stream pipeline started", "ladder", ladder.Profile)
	var next uint64
	seg := segmenter.New(segmenter.Config{
		Target: l.cfg.Segments.Duration, MaxDuration: l.cfg.Segments.MaxDuration,
		Logger: log.With("component", "segmenter"),
	}, func(sg segmenter.Segment) error {
		next = sg.Seq + 1
		return l.submit(name, session, ladder, sg)
	})
	for {
		t, err := rd.Next(l.ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Warn("stream reader ended", "err", err)
			}
			break
		}
		if err := seg.WriteTag(t); err != nil {
			log.Warn("segmenter", "err", err)
		}
	}
	if err := seg.Flush(); err != nil {
		log.Warn("segmenter flush", "err", err)
	}
	if err := l.pk.End(name, session, next); err != nil {
		log.Warn("packager end", "err", err)
	}
	log.Info("stream pipeline ended", "segments", next)
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

// ladderFor turns transcode.profile (or a rule's) into a task ladder:
// a builtin reference, or a YAML file's contents.
func ladderFor(cfg *config.Config, stream string) (queue.Ladder, error) {
	p := cfg.Transcode.ProfileFor(stream)
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
