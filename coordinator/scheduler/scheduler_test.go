package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/coordinator/scheduler/asynqqueue"
	"github.com/livegrid/livegrid/internal/queue"
	"go.uber.org/goleak"
)

// The asynq adapter is the production jobQueue.
var _ jobQueue = (*asynqqueue.Queue)(nil)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeQueue struct {
	enqueue func(ctx context.Context, j queue.Job) error
	reclaim func(ctx context.Context, from, to string) (int, bool, error)
	stats   func(ctx context.Context) ([]queue.QueueStats, error)
}

func (f *fakeQueue) Enqueue(ctx context.Context, j queue.Job) error { return f.enqueue(ctx, j) }
func (f *fakeQueue) Reclaim(ctx context.Context, from, to string) (int, bool, error) {
	return f.reclaim(ctx, from, to)
}
func (f *fakeQueue) Stats(ctx context.Context) ([]queue.QueueStats, error) { return f.stats(ctx) }

type fakeRegistry struct {
	workers func(ctx context.Context) ([]queue.Heartbeat, error)
	forget  func(ctx context.Context, id string) error
}

func (f *fakeRegistry) Workers(ctx context.Context) ([]queue.Heartbeat, error) { return f.workers(ctx) }
func (f *fakeRegistry) Forget(ctx context.Context, id string) error            { return f.forget(ctx, id) }

type fakeFeed struct {
	read  func(ctx context.Context, consumer string, streams []string, block time.Duration) ([]queue.Delivery, error)
	claim func(ctx context.Context, consumer, stream string, minIdle time.Duration) ([]queue.Delivery, error)
	ack   func(ctx context.Context, stream string, ids ...string) error
}

func (f *fakeFeed) Read(ctx context.Context, consumer string, streams []string, block time.Duration) ([]queue.Delivery, error) {
	return f.read(ctx, consumer, streams, block)
}
func (f *fakeFeed) Claim(ctx context.Context, consumer, stream string, minIdle time.Duration) ([]queue.Delivery, error) {
	return f.claim(ctx, consumer, stream, minIdle)
}
func (f *fakeFeed) Ack(ctx context.Context, stream string, ids ...string) error {
	return f.ack(ctx, stream, ids...)
}

// env runs a Scheduler on fakes, with a clock and polls the test drives.
type env struct {
	t       *testing.T
	s       *Scheduler
	tick    chan time.Time
	polled  chan struct{}
	results chan []queue.Delivery
	got     chan queue.Result

	mu         sync.Mutex
	now        time.Time
	hbs        []queue.Heartbeat
	depths     []queue.QueueStats
	jobs       []queue.Job
	enqueueErr error
	reclaimed  []string
	reclaimErr error
	forgotten  []string
	acked      []string
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func newEnv(t *testing.T) *env {
	e := &env{t: t, now: t0, tick: make(chan time.Time), polled: make(chan struct{}, 1),
		results: make(chan []queue.Delivery), got: make(chan queue.Result, 16)}
	q := &fakeQueue{
		enqueue: func(_ context.Context, j queue.Job) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.jobs = append(e.jobs, j)
			return e.enqueueErr
		},
		reclaim: func(_ context.Context, from, to string) (int, bool, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if to != queue.SharedQueue {
				t.Errorf("reclaim to %q", to)
			}
			e.reclaimed = append(e.reclaimed, from)
			return 1, e.reclaimErr == nil, e.reclaimErr
		},
		stats: func(context.Context) ([]queue.QueueStats, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.depths, nil
		},
	}
	reg := &fakeRegistry{
		workers: func(context.Context) ([]queue.Heartbeat, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			return append([]queue.Heartbeat(nil), e.hbs...), nil
		},
		forget: func(_ context.Context, id string) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.forgotten = append(e.forgotten, id)
			return nil
		},
	}
	feed := &fakeFeed{
		read: func(ctx context.Context, _ string, _ []string, block time.Duration) ([]queue.Delivery, error) {
			timer := time.NewTimer(block)
			defer timer.Stop()
			select {
			case ds := <-e.results:
				return ds, nil
			case <-timer.C:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		claim: func(context.Context, string, string, time.Duration) ([]queue.Delivery, error) { return nil, nil },
		ack: func(_ context.Context, _ string, ids ...string) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.acked = append(e.acked, ids...)
			return nil
		},
	}
	s, err := New(Config{
		ID: "coord-test", Queue: q, Workers: reg, Results: feed,
		OnResult:   func(r queue.Result) { e.got <- r },
		ResultWait: 20 * time.Millisecond,
		Now: func() time.Time {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.now
		},
		Log: discardLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.ticker = func(time.Duration) (<-chan time.Time, func()) { return e.tick, func() {} }
	s.afterPoll = func() { e.polled <- struct{}{} }
	e.s = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-e.polled // the poll Run starts with
	return e
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// setWorkers sets the heartbeats and queue depths the next poll reads.
func (e *env) setWorkers(hbs []queue.Heartbeat, depths ...queue.QueueStats) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hbs, e.depths = hbs, depths
}

// poll runs one poll and waits for it to finish.
func (e *env) poll() {
	e.t.Helper()
	e.tick <- e.clock()
	<-e.polled
}

func (e *env) submit(seq uint64) {
	e.t.Helper()
	if err := e.s.Submit(context.Background(), task("cam1", seq)); err != nil {
		e.t.Fatalf("Submit %d: %v", seq, err)
	}
}

// lastJob returns the newest enqueue request.
func (e *env) lastJob() queue.Job {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.jobs) == 0 {
		e.t.Fatal("nothing enqueued")
	}
	return e.jobs[len(e.jobs)-1]
}

func (e *env) jobCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.jobs)
}

// finish delivers a result for seq of cam1 and waits for OnResult.
func (e *env) finish(seq uint64, worker string, status queue.Status) queue.Result {
	e.t.Helper()
	r := result("cam1", seq, worker, status)
	e.results <- []queue.Delivery{{Stream: "cam1", ID: "1-" + r.TaskID, Result: r}}
	return e.wantResult()
}

func (e *env) wantResult() queue.Result {
	e.t.Helper()
	select {
	case r := <-e.got:
		return r
	case <-time.After(5 * time.Second):
		e.t.Fatal("no result delivered")
		return queue.Result{}
	}
}

func (e *env) noResult() {
	e.t.Helper()
	select {
	case r := <-e.got:
		e.t.Fatalf("unexpected result %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
}

func task(stream string, seq uint64) queue.Task {
	return queue.Task{
		Stream: stream, Session: "s1", Seq: seq,
		Source:          queue.Source{Key: "src/" + stream, Format: "flv"},
		Ladder:          queue.Ladder{Profile: "default", Ref: "builtin:default"},
		SegmentDuration: 2 * time.Second, Start: int64(seq) * 180000, End: int64(seq+1) * 180000,
	}
}

func result(stream string, seq uint64, worker string, status queue.Status) queue.Result {
	return queue.Result{TaskID: queue.TaskID(stream, "s1", seq), Stream: stream, Session: "s1", Seq: seq, Worker: worker, Status: status}
}

func hb(id string, lastSeen time.Time, capacity, busy int) queue.Heartbeat {
	return queue.Heartbeat{ID: id, Capacity: capacity, Busy: busy, LastSeen: lastSeen}
}

func TestRouting(t *testing.T) {
	tests := []struct {
		name    string
		worker  func(now time.Time) queue.Heartbeat // worker a at the second segment
		pending int                                 // tasks waiting in worker:a
		want    string
	}{
		{"fresh with room", func(now time.Time) queue.Heartbeat { return hb("a", now, 2, 1) }, 0, "worker:a"},
		{"heartbeat as old as StaleAfter", func(now time.Time) queue.Heartbeat { return hb("a", now.Add(-3*time.Second), 2, 0) }, 0, "worker:a"},
		{"stale heartbeat", func(now time.Time) queue.Heartbeat { return hb("a", now.Add(-3*time.Second-time.Millisecond), 2, 0) }, 0, "transcode"},
		{"heartbeat gone", func(time.Time) queue.Heartbeat { return queue.Heartbeat{ID: "a"} }, 0, "transcode"},
		{"full", func(now time.Time) queue.Heartbeat { return hb("a", now, 2, 2) }, 0, "transcode"},
		{"backlog in its queue", func(now time.Time) queue.Heartbeat { return hb("a", now, 2, 1) }, 1, "transcode"},
		{"draining", func(now time.Time) queue.Heartbeat {
			h := hb("a", now, 2, 0)
			h.Draining = true
			return h
		}, 0, "transcode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.setWorkers([]queue.Heartbeat{hb("a", t0, 2, 0), hb("b", t0, 2, 0)})
			e.poll()
			// A new stream goes to the shared queue; whoever finishes its
			// segment holds it.
			e.submit(0)
			if q := e.lastJob().Queue; q != "transcode" {
				t.Fatalf("first segment to %q, want the shared queue", q)
			}
			e.finish(0, "a", queue.StatusDone)

			e.advance(500 * time.Millisecond)
			now := e.clock()
			e.setWorkers([]queue.Heartbeat{tt.worker(now), hb("b", now, 2, 0)},
				queue.QueueStats{Queue: "worker:a", Pending: tt.pending})
			e.poll()
			e.submit(1)
			if q := e.lastJob().Queue; q != tt.want {
				t.Fatalf("segment 1 to %q, want %q", q, tt.want)
			}
			if tt.want == "worker:a" {
				return
			}
			// The stream moved at once: it does not go back to a on its
			// own, and follows b once b finishes a segment.
			e.setWorkers([]queue.Heartbeat{hb("a", now, 2, 0), hb("b", now, 2, 0)})
			e.poll()
			e.submit(2)
			if q := e.lastJob().Queue; q != "transcode" {
				t.Fatalf("segment 2 to %q, want the shared queue", q)
			}
			e.finish(1, "b", queue.StatusDone)
			e.submit(3)
			if q := e.lastJob().Queue; q != "worker:b" {
				t.Fatalf("segment 3 to %q, want worker:b", q)
			}
		})
	}
}

func TestRoutingCountsWhatItRouted(t *testing.T) {
	e := newEnv(t)
	e.setWorkers([]queue.Heartbeat{hb("a", t0, 2, 0)})
	e.poll()
	e.submit(0)
	e.finish(0, "a", queue.StatusDone)
	// Heartbeats are a second old at best: the two segments routed since
	// the last poll fill a's two slots.
	want := []string{"worker:a", "worker:a", "transcode"}
	for i, w := range want {
		e.submit(uint64(i + 1))
		if q := e.lastJob().Queue; q != w {
			t.Fatalf("segment %d to %q, want %q", i+1, q, w)
		}
	}
}

func TestSubmitIdempotent(t *testing.T) {
	e := newEnv(t)
	e.submit(0)
	e.submit(0)
	if n := e.jobCount(); n != 1 {
		t.Fatalf("%d enqueues for one segment, want 1", n)
	}
	if j := e.lastJob(); j.ID != queue.TaskID("cam1", "s1", 0) {
		t.Fatalf("job id %q", j.ID)
	}
	// The queue already holds the segment (a coordinator restart): no
	// error, and its result still arrives, once.
	e.mu.Lock()
	e.enqueueErr = queue.ErrDuplicate
	e.mu.Unlock()
	e.submit(1)
	if st := e.s.Stats(); st.Outstanding != 2 {
		t.Fatalf("outstanding %d, want 2", st.Outstanding)
	}
	e.finish(1, "a", queue.StatusDone)
	e.results <- []queue.Delivery{{Stream: "cam1", ID: "2-0", Result: result("cam1", 1, "b", queue.StatusDone)}}
	e.noResult()
	// Finished segments are remembered: submitting one again does nothing.
	before := e.jobCount()
	e.submit(1)
	if n := e.jobCount(); n != before {
		t.Fatalf("finished segment enqueued again")
	}
	if st := e.s.Stats(); st.Duplicates != 1 || st.Done != 1 || st.Outstanding != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJobLimits(t *testing.T) {
	e := newEnv(t)
	e.submit(4)
	j := e.lastJob()
	if j.MaxRetry != 2 || j.Timeout != 6*time.Second || !j.Deadline.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("job limits: retry %d timeout %v deadline %v", j.MaxRetry, j.Timeout, j.Deadline)
	}
	if !j.Task.EnqueuedAt.Equal(t0) || !j.Task.Deadline.Equal(j.Deadline) || j.Task.Attempt != 0 || j.Task.V != queue.PayloadVersion {
		t.Fatalf("task %+v", j.Task)
	}
}

func TestDeadWorkerTasksTakenBack(t *testing.T) {
	e := newEnv(t)
	e.setWorkers([]queue.Heartbeat{hb("a", t0, 4, 0)})
	e.poll()
	e.submit(0)
	e.finish(0, "a", queue.StatusDone)
	e.submit(1)
	if q := e.lastJob().Queue; q != "worker:a" {
		t.Fatalf("segment 1 to %q", q)
	}
	// a stops beating; once the heartbeat is stale its queue is taken back.
	e.mu.Lock()
	e.reclaimErr = errors.New("redis: connection refused")
	e.mu.Unlock()
	e.advance(4 * time.Second)
	e.poll()
	e.mu.Lock()
	if len(e.reclaimed) != 1 || e.reclaimed[0] != "worker:a" || len(e.forgotten) != 0 {
		t.Fatalf("reclaimed %v forgotten %v", e.reclaimed, e.forgotten)
	}
	e.reclaimErr = nil
	e.mu.Unlock()
	e.poll() // tried again
	e.mu.Lock()
	if len(e.reclaimed) != 2 || len(e.forgotten) != 1 || e.forgotten[0] != "a" {
		t.Fatalf("reclaimed %v forgotten %v", e.reclaimed, e.forgotten)
	}
	e.hbs = nil // forgotten
	e.mu.Unlock()
	if st := e.s.Stats(); st.Reclaimed != 1 || st.Workers != 0 {
		t.Fatalf("stats %+v", st)
	}
	e.submit(2)
	if q := e.lastJob().Queue; q != "transcode" {
		t.Fatalf("segment 2 to %q, want the shared queue", q)
	}
	// Segment 1 now waits in the shared queue; its result ends it.
	e.finish(1, "b", queue.StatusDone)
}

func TestLostTaskResubmittedThenGap(t *testing.T) {
	e := newEnv(t)
	e.submit(7)
	e.advance(21 * time.Second) // past the deadline, inside the grace
	e.poll()
	if n := e.jobCount(); n != 1 {
		t.Fatalf("%d enqueues before the task is due", n)
	}
	e.advance(time.Second + time.Millisecond)
	e.poll()
	j := e.lastJob()
	if j.ID != queue.TaskID("cam1", "s1", 7)+":r1" || j.Queue != "transcode" || j.Task.Attempt != 1 {
		t.Fatalf("resubmission %+v", j)
	}
	if !j.Deadline.Equal(e.clock().Add(20 * time.Second)) {
		t.Fatalf("resubmission deadline %v", j.Deadline)
	}
	e.advance(23 * time.Second)
	e.poll()
	r := e.wantResult()
	if r.Status != queue.StatusQuarantined || r.Seq != 7 || r.Attempt != 1 || r.Error == "" {
		t.Fatalf("gap %+v", r)
	}
	if n := e.jobCount(); n != 2 {
		t.Fatalf("%d enqueues, want 2", n)
	}
	// A result that turns up after all is not announced twice.
	e.results <- []queue.Delivery{{Stream: "cam1", ID: "9-0", Result: result("cam1", 7, "a", queue.StatusDone)}}
	e.noResult()
	if st := e.s.Stats(); st.Lost != 1 || st.Resubmitted != 1 || st.Duplicates != 1 || st.Outstanding != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestEnqueueRetriedWhileQueueDown(t *testing.T) {
	e := newEnv(t)
	e.mu.Lock()
	e.enqueueErr = errors.New("dial tcp: connection refused")
	e.mu.Unlock()
	e.submit(0) // accepted all the same
	e.poll()
	e.mu.Lock()
	e.enqueueErr = nil
	e.mu.Unlock()
	e.poll()
	e.poll() // enqueued now: not again
	if n := e.jobCount(); n != 3 {
		t.Fatalf("%d enqueue tries, want 3", n)
	}
	e.finish(0, "a", queue.StatusDone)
}

func TestQuarantinedResultPassedOn(t *testing.T) {
	e := newEnv(t)
	e.setWorkers([]queue.Heartbeat{hb("a", t0, 2, 0)})
	e.poll()
	e.submit(0)
	r := e.finish(0, "a", queue.StatusQuarantined)
	if r.Status != queue.StatusQuarantined {
		t.Fatalf("result %+v", r)
	}
	// A worker that failed a segment does not win its stream.
	e.submit(1)
	if q := e.lastJob().Queue; q != "transcode" {
		t.Fatalf("segment 1 to %q", q)
	}
	if st := e.s.Stats(); st.Quarantined != 1 || st.Done != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestResultsAcknowledgedAfterHandling(t *testing.T) {
	e := newEnv(t)
	e.submit(0)
	e.results <- []queue.Delivery{
		{Stream: "cam1", ID: "1-0", Err: queue.ErrBadPayload},
		{Stream: "cam1", ID: "1-1", Result: result("cam1", 0, "a", queue.StatusDone)},
	}
	e.wantResult()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.mu.Lock()
		acked := append([]string(nil), e.acked...)
		e.mu.Unlock()
		if len(acked) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acked %v, want both entries", acked)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSubmitRefused(t *testing.T) {
	e := newEnv(t)
	bad := task("cam1", 0)
	bad.Stream = "../x"
	if err := e.s.Submit(context.Background(), bad); !errors.Is(err, queue.ErrBadPayload) {
		t.Fatalf("Submit = %v, want ErrBadPayload", err)
	}

	s, err := New(Config{Queue: &fakeQueue{}, Workers: &fakeRegistry{}, Results: &fakeFeed{}, Log: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.ticker = func(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }
	s.cfg.Workers = &fakeRegistry{workers: func(context.Context) ([]queue.Heartbeat, error) { return nil, ctx.Err() }}
	s.cfg.Queue = &fakeQueue{stats: func(context.Context) ([]queue.QueueStats, error) { return nil, ctx.Err() }}
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Submit(context.Background(), task("cam1", 0)); !errors.Is(err, ErrStopped) {
		t.Fatalf("Submit after Run = %v, want ErrStopped", err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a queue accepted")
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestDeadWorkersRunningTasksResubmitted(t *testing.T) {
	tests := []struct {
		name        string
		end         func(h queue.Heartbeat) queue.Heartbeat // a's last word
		advance     time.Duration
		resubmitted bool
	}{
		{"crashed", func(h queue.Heartbeat) queue.Heartbeat { return h }, 4 * time.Second, true},
		{"left cleanly", func(h queue.Heartbeat) queue.Heartbeat {
			h.Left, h.Active, h.Busy = true, nil, 0
			return h
		}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.submit(0) // to the shared queue; a takes it
			running := hb("a", t0, 2, 1)
			running.Active = []string{queue.TaskID("cam1", "s1", 0)}
			e.setWorkers([]queue.Heartbeat{running})
			e.poll()
			e.setWorkers([]queue.Heartbeat{tt.end(running)})
			e.advance(tt.advance)
			e.poll()
			e.poll() // once only
			want := 1
			if tt.resubmitted {
				want = 2
				j := e.lastJob()
				if j.ID != queue.TaskID("cam1", "s1", 0)+":r1" || j.Queue != "transcode" {
					t.Fatalf("resubmission %+v", j)
				}
			}
			if n := e.jobCount(); n != want {
				t.Fatalf("%d enqueues, want %d", n, want)
			}
			e.finish(0, "b", queue.StatusDone)
		})
	}
}
