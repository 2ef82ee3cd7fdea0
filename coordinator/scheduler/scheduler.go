// Package scheduler turns source segments into transcode tasks. It routes
// each segment to the worker that holds its stream's warm encoders, or to
// the shared queue when that worker is gone or full; follows worker
// heartbeats and takes back a dead worker's tasks; resubmits a task whose
// result never came; and tells the coordinator how every segment it
// accepted ended: transcoded, or a gap.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/queue"
)

// jobQueue is what the scheduler needs of the task queue.
type jobQueue interface {
	// Enqueue enqueues a job; an id enqueued before gives an error
	// wrapping queue.ErrDuplicate.
	Enqueue(ctx context.Context, j queue.Job) error
	// Reclaim moves a dead worker's tasks from its queue to another.
	Reclaim(ctx context.Context, from, to string) (moved int, drained bool, err error)
	// Stats returns the depth of every queue.
	Stats(ctx context.Context) ([]queue.QueueStats, error)
}

// workerRegistry is where workers' heartbeats are read.
type workerRegistry interface {
	Workers(ctx context.Context) ([]queue.Heartbeat, error)
	Forget(ctx context.Context, id string) error
}

// resultFeed is where workers announce results (see queue.ResultLog).
type resultFeed interface {
	Read(ctx context.Context, consumer string, streams []string, block time.Duration) ([]queue.Delivery, error)
	Claim(ctx context.Context, consumer, stream string, minIdle time.Duration) ([]queue.Delivery, error)
	Ack(ctx context.Context, stream string, ids ...string) error
}

var (
	_ workerRegistry = (*queue.Registry)(nil)
	_ resultFeed     = (*queue.ResultLog)(nil)
)

// ErrStopped is returned by Submit once Run has returned.
var ErrStopped = errors.New("scheduler: stopped")

// Config configures a Scheduler. Queue, Workers and Results are required;
// zero values elsewhere take the defaults named.
type Config struct {
	// ID names this coordinator in the result log's consumer group;
	// default the host name. Keep it stable across restarts.
	ID      string
	Queue   jobQueue
	Workers workerRegistry
	Results resultFeed
	// OnResult is told how each segment ended, once per segment: a
	// result with StatusDone, or StatusQuarantined for a gap. It runs on
	// the scheduler's goroutine and must not block.
	OnResult func(queue.Result)
	// SharedQueue is the queue every worker takes from; default
	// queue.SharedQueue.
	SharedQueue string
	// MaxRetry is how often the queue runs a task again after a failure
	// or a lost worker; default 2. The worker quarantines a segment at its
	// second failure whatever is left.
	MaxRetry int
	// TimeoutSegments is one run's time limit in segment durations;
	// default 3.
	TimeoutSegments float64
	// DeadlineSegments is, in segment durations from enqueueing, when the
	// queue gives up on a task; default 10. A live segment later than that
	// is no use to a viewer.
	DeadlineSegments float64
	// Grace is how long after a task's deadline the scheduler waits for
	// its result before calling the task lost; default 2s.
	Grace time.Duration
	// Resubmits is how often a lost task is enqueued again before its
	// segment becomes a gap; default 1, negative for none.
	Resubmits int
	// StaleAfter is the heartbeat age at which a worker counts as gone;
	// default 3s.
	StaleAfter time.Duration
	// Interval is how often heartbeats and queue depths are read; default 1s.
	Interval time.Duration
	// ResultWait is how long one read of the result log blocks; default 1s.
	ResultWait time.Duration
	// ClaimIdle is how long a result may sit delivered to another
	// consumer, unacknowledged, before this one takes it; default 15s.
	ClaimIdle time.Duration
	// Remember is how long a finished segment is remembered, so a late
	// duplicate of it is dropped and a repeated Submit is a no-op;
	// default 10m.
	Remember time.Duration
	// IOTimeout bounds each queue and registry call; default 2s.
	IOTimeout time.Duration
	Now       func() time.Time
	Log       *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Queue == nil || c.Workers == nil || c.Results == nil {
		return errors.New("scheduler: Queue, Workers and Results are required")
	}
	if c.ID == "" {
		h, err := os.Hostname()
		if err != nil || !queue.ValidName(h) {
			h = "coordinator"
		}
		c.ID = h
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	if c.SharedQueue == "" {
		c.SharedQueue = queue.SharedQueue
	}
	if c.MaxRetry <= 0 {
		c.MaxRetry = 2
	}
	if c.TimeoutSegments <= 0 {
		c.TimeoutSegments = 3
	}
	if c.DeadlineSegments <= 0 {
		c.DeadlineSegments = 10
	}
	if c.Resubmits == 0 {
		c.Resubmits = 1
	}
	c.Resubmits = max(c.Resubmits, 0)
	setDur(&c.Grace, 2*time.Second)
	setDur(&c.StaleAfter, 3*time.Second)
	setDur(&c.Interval, time.Second)
	setDur(&c.ResultWait, time.Second)
	setDur(&c.ClaimIdle, 15*time.Second)
	setDur(&c.Remember, 10*time.Minute)
	setDur(&c.IOTimeout, 2*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return nil
}

// Stats is a snapshot of the scheduler, for metrics.
type Stats struct {
	Queues       []queue.QueueStats // at the last poll
	Outstanding  int                // segments accepted and not yet ended
	Workers      int                // workers in the registry
	FreshWorkers int                // of them, with a fresh heartbeat
	Submitted    uint64
	Done         uint64 // segments transcoded
	Quarantined  uint64 // gaps reported by workers
	Lost         uint64 // gaps declared by the scheduler: no result at all
	Resubmitted  uint64
	Reclaimed    uint64 // tasks taken back from dead workers' queues
	Duplicates   uint64 // results dropped as seen before
}

// Scheduler schedules the segments of live streams. Its state belongs to
// the goroutine running Run; Submit and Stats talk to it.
type Scheduler struct {
	cfg     Config
	log     *slog.Logger
	submits chan submitReq
	done    chan struct{}
	running atomic.Bool
	follow  followSet
	snap    snapshot
	// ticker makes the poll ticker and afterPoll, if set, runs after each
	// poll; tests replace them to drive polls one by one.
	ticker    func(time.Duration) (<-chan time.Time, func())
	afterPoll func()

	// Owned by Run's goroutine.
	workers     map[string]queue.Heartbeat
	inflight    map[string][]string // worker id -> tasks running at its last fresh heartbeat
	affinity    map[string]string   // stream -> worker id
	outstanding map[string]*segment
	recent      map[string]time.Time // finished segment id -> when
	depth       map[string]int       // pending tasks per queue at the last poll
	routed      map[string]int       // tasks routed to a worker since the last poll
	queues      []queue.QueueStats
	count       Stats
}

// segment is an accepted segment without a result yet.
type segment struct {
	task     queue.Task
	queue    string
	worker   string    // the worker whose queue holds it; "" for shared
	enqueued bool      // the current attempt is in the queue
	deadline time.Time // of the current attempt
	due      time.Time // deadline + grace: no result by then means lost
}

type submitReq struct {
	task  queue.Task
	reply chan error
}

// New returns a Scheduler; start it with Run.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Scheduler{
		cfg:         cfg,
		log:         cfg.Log.With("component", "scheduler", "id", cfg.ID),
		submits:     make(chan submitReq),
		done:        make(chan struct{}),
		follow:      followSet{streams: map[string]time.Time{}},
		ticker:      realTicker,
		workers:     map[string]queue.Heartbeat{},
		inflight:    map[string][]string{},
		affinity:    map[string]string{},
		outstanding: map[string]*segment{},
		recent:      map[string]time.Time{},
		depth:       map[string]int{},
		routed:      map[string]int{},
	}, nil
}

func realTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Submit hands the scheduler a source segment. It returns once the
// segment is accepted: enqueued, or kept to be enqueued when the queue
// answers again. Every accepted segment ends in exactly one OnResult call.
// Submitting a segment (stream, session, seq) again is a no-op.
func (s *Scheduler) Submit(ctx context.Context, t queue.Task) error {
	t.V = queue.PayloadVersion
	if err := t.Validate(); err != nil {
		return fmt.Errorf("scheduler: submit: %w", err)
	}
	req := submitReq{task: t, reply: make(chan error, 1)}
	select {
	case s.submits <- req:
	case <-s.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Follow makes the scheduler read the results of stream before it submits
// any: a coordinator taking over a stream collects what was announced
// while no one was reading.
func (s *Scheduler) Follow(stream string) { s.follow.touch(stream, s.cfg.Now()) }

// Stats returns the latest snapshot.
func (s *Scheduler) Stats() Stats { return s.snap.get() }

// Run schedules until ctx ends; it can run once.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("scheduler: Run called twice")
	}
	defer close(s.done)
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan resultBatch)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.readResults(ctx, batches)
	}()
	defer wg.Wait() // after cancel, below
	defer cancel()
	tick, stop := s.ticker(s.cfg.Interval)
	defer stop()
	s.log.Info("scheduler started", "shared_queue", s.cfg.SharedQueue)
	s.refresh(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case req := <-s.submits:
			req.reply <- s.submit(ctx, req.task)
		case b := <-batches:
			s.handleResults(b.deliveries)
			close(b.handled)
		case <-tick:
			s.refresh(ctx)
		}
	}
}

func (s *Scheduler) io(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.IOTimeout)
}

func (s *Scheduler) submit(ctx context.Context, t queue.Task) error {
	now := s.cfg.Now()
	id := t.ID()
	if _, ok := s.outstanding[id]; ok {
		s.log.Debug("segment submitted again; ignored", "task", id)
		return nil
	}
	if _, ok := s.recent[id]; ok {
		s.log.Debug("segment already finished; ignored", "task", id)
		return nil
	}
	t.Attempt, t.PriorFailures, t.EnqueuedAt = 0, 0, now
	seg := &segment{task: t}
	s.outstanding[id] = seg
	s.follow.touch(t.Stream, now)
	s.count.Submitted++
	seg.queue, seg.worker = s.route(t.Stream, now)
	s.setDeadline(seg, now)
	s.enqueue(ctx, seg)
	s.publishStats()
	return nil
}

// route picks the queue for a stream's next segment: the queue of the
// worker that last handled the stream while its heartbeat is fresh and it
// has room, else the shared queue, and then the stream is no longer tied
// to that worker, so the next worker to finish one of its segments gets it.
func (s *Scheduler) route(stream string, now time.Time) (queueName, worker string) {
	if id, ok := s.affinity[stream]; ok {
		hb, known := s.workers[id]
		if known && s.fresh(hb, now) && !hb.Draining && s.room(hb) > 0 {
			return queue.WorkerQueue(id), id
		}
		delete(s.affinity, stream)
		s.log.Debug("stream leaves its worker", "stream", stream, "worker", id,
			"known", known, "fresh", known && s.fresh(hb, now), "room", s.room(hb))
	}
	return s.cfg.SharedQueue, ""
}

func (s *Scheduler) fresh(hb queue.Heartbeat, now time.Time) bool {
	return !hb.Left && !hb.LastSeen.IsZero() && now.Sub(hb.LastSeen) <= s.cfg.StaleAfter
}

// room is how many more tasks a worker can take: its free slots less what
// waits in its queue and what was routed to it since the last poll.
func (s *Scheduler) room(hb queue.Heartbeat) int {
	return hb.Free() - s.depth[queue.WorkerQueue(hb.ID)] - s.routed[hb.ID]
}

func (s *Scheduler) setDeadline(seg *segment, now time.Time) {
	d := seg.task.SegmentDuration
	seg.deadline = now.Add(time.Duration(s.cfg.DeadlineSegments * float64(d)))
	seg.due = seg.deadline.Add(s.cfg.Grace)
	seg.enqueued = false
}

func (s *Scheduler) job(seg *segment) queue.Job {
	d := seg.task.SegmentDuration
	t := seg.task
	t.Deadline = seg.deadline
	return queue.Job{
		ID:       queue.AttemptID(t.ID(), t.Attempt),
		Queue:    seg.queue,
		Task:     t,
		MaxRetry: s.cfg.MaxRetry,
		Timeout:  time.Duration(s.cfg.TimeoutSegments * float64(d)),
		Deadline: seg.deadline,
	}
}

// enqueue puts the segment's current attempt in its queue. A failure is
// logged and tried again on the next poll, until the segment is due.
func (s *Scheduler) enqueue(ctx context.Context, seg *segment) bool {
	ictx, cancel := s.io(ctx)
	defer cancel()
	err := s.cfg.Queue.Enqueue(ictx, s.job(seg))
	switch {
	case err == nil, errors.Is(err, queue.ErrDuplicate):
		// A duplicate is already in a queue (enqueued by this coordinator
		// before a restart, or by another): its result will come.
		seg.enqueued = true
		if seg.worker != "" {
			s.routed[seg.worker]++
		}
		return true
	default:
		s.log.Warn("enqueue failed; will retry", "task", seg.task.ID(), "queue", seg.queue, "err", err)
		return false
	}
}

// refresh reads heartbeats and queue depths, takes back dead workers'
// tasks, retries failed enqueues and deals with segments past due.
func (s *Scheduler) refresh(ctx context.Context) {
	now := s.cfg.Now()
	ictx, cancel := s.io(ctx)
	hbs, err := s.cfg.Workers.Workers(ictx)
	cancel()
	heartbeatsRead := err == nil
	if err != nil {
		s.log.Warn("read heartbeats", "err", err)
	} else {
		workers := make(map[string]queue.Heartbeat, len(hbs))
		for _, hb := range hbs {
			workers[hb.ID] = hb
			if s.fresh(hb, now) || hb.Left {
				s.inflight[hb.ID] = hb.Active
			}
		}
		s.workers = workers
	}
	ictx, cancel = s.io(ctx)
	qs, err := s.cfg.Queue.Stats(ictx)
	cancel()
	if err != nil {
		s.log.Warn("read queue depths", "err", err)
	} else {
		s.queues = qs
		clear(s.depth)
		for _, q := range qs {
			s.depth[q.Queue] = q.Pending + q.Scheduled + q.Retry
		}
		clear(s.routed)
	}
	if heartbeatsRead && err == nil {
		// Only on a fresh view: a registry that could not be read says
		// nothing about the workers.
		for id, hb := range s.workers {
			if !s.fresh(hb, now) {
				s.rescue(ctx, id, now)
				s.reclaim(ctx, id)
			}
		}
	}
	for _, seg := range s.outstanding {
		if !seg.enqueued && now.Before(seg.deadline) && ctx.Err() == nil {
			// One failure says the queue is still away: stop there rather
			// than wait out a timeout per segment.
			if !s.enqueue(ctx, seg) {
				break
			}
		}
	}
	s.expire(ctx, now)
	for id, at := range s.recent {
		if now.Sub(at) > s.cfg.Remember {
			delete(s.recent, id)
		}
	}
	s.follow.prune(now.Add(-s.cfg.Remember), s.activeStreams())
	s.publishStats()
	if s.afterPoll != nil {
		s.afterPoll()
	}
}

// rescue resubmits at once the shared-queue tasks a dead worker was
// running. asynq would hand them to another worker only once their lease
// expired, a minute or more; those from the worker's own queue are copied
// by reclaim instead.
func (s *Scheduler) rescue(ctx context.Context, id string, now time.Time) {
	running := s.inflight[id]
	delete(s.inflight, id)
	for _, qid := range running {
		seg := s.outstanding[qid]
		if seg == nil {
			seg = s.outstanding[segmentOf(qid)]
		}
		if seg == nil || seg.worker != "" || queue.AttemptID(seg.task.ID(), seg.task.Attempt) != qid {
			continue // finished, in the worker's own queue, or resubmitted already
		}
		if seg.task.Attempt >= s.cfg.Resubmits {
			continue // the deadline makes it a gap
		}
		s.resubmit(ctx, seg, now, "its worker died")
	}
}

// segmentOf returns the segment id of a queue id (see queue.AttemptID).
func segmentOf(qid string) string {
	if i := strings.LastIndex(qid, ":r"); i > 0 && strings.Count(qid, ":") == 4 {
		return qid[:i]
	}
	return qid
}

func (s *Scheduler) resubmit(ctx context.Context, seg *segment, now time.Time, why string) {
	seg.task.Attempt++
	seg.task.EnqueuedAt = now
	seg.queue, seg.worker = s.cfg.SharedQueue, ""
	s.setDeadline(seg, now)
	s.count.Resubmitted++
	s.log.Warn("resubmitting segment: "+why, "task", seg.task.ID(), "attempt", seg.task.Attempt)
	s.enqueue(ctx, seg)
}

// reclaim takes back what a dead worker left in its queue; once nothing
// is left the worker is forgotten.
func (s *Scheduler) reclaim(ctx context.Context, id string) {
	from := queue.WorkerQueue(id)
	ictx, cancel := s.io(ctx)
	moved, drained, err := s.cfg.Queue.Reclaim(ictx, from, s.cfg.SharedQueue)
	cancel()
	if err != nil {
		s.log.Warn("take back a dead worker's tasks", "worker", id, "err", err)
		return
	}
	for stream, w := range s.affinity {
		if w == id {
			delete(s.affinity, stream)
		}
	}
	for _, seg := range s.outstanding {
		if seg.worker == id {
			seg.queue, seg.worker = s.cfg.SharedQueue, ""
		}
	}
	if moved > 0 {
		s.count.Reclaimed += uint64(moved)
		s.log.Info("took back a dead worker's tasks", "worker", id, "tasks", moved)
	}
	if drained {
		ictx, cancel := s.io(ctx)
		err := s.cfg.Workers.Forget(ictx, id)
		cancel()
		if err != nil {
			s.log.Warn("forget worker", "worker", id, "err", err)
			return
		}
		delete(s.workers, id)
	}
}

// expire resubmits segments whose task is past due with no result, and
// gives up on those resubmitted often enough: they become gaps.
func (s *Scheduler) expire(ctx context.Context, now time.Time) {
	for id, seg := range s.outstanding {
		if now.Before(seg.due) {
			continue
		}
		if seg.task.Attempt < s.cfg.Resubmits {
			s.resubmit(ctx, seg, now, "no result in time")
			continue
		}
		delete(s.outstanding, id)
		s.recent[id] = now
		s.count.Lost++
		t := seg.task
		s.log.Error("no result after every attempt; the segment is a gap", "task", id, "attempts", t.Attempt+1)
		s.deliver(queue.Result{
			V: queue.PayloadVersion, TaskID: id, Stream: t.Stream, Session: t.Session, Seq: t.Seq,
			Attempt: t.Attempt, Status: queue.StatusQuarantined, Start: t.Start, End: t.End,
			Discontinuity: t.Discontinuity, Finished: now,
			Error: fmt.Sprintf("no result after %d attempts", t.Attempt+1),
		})
	}
}

func (s *Scheduler) handleResults(ds []queue.Delivery) {
	now := s.cfg.Now()
	for _, d := range ds {
		if d.Err != nil {
			s.log.Warn("undecodable result dropped", "stream", d.Stream, "entry", d.ID, "err", d.Err)
			continue
		}
		r := d.Result
		if _, ok := s.recent[r.TaskID]; ok {
			s.count.Duplicates++
			continue
		}
		delete(s.outstanding, r.TaskID)
		s.recent[r.TaskID] = now
		switch r.Status {
		case queue.StatusDone:
			s.count.Done++
			if r.Worker != "" {
				s.affinity[r.Stream] = r.Worker
			}
		default:
			s.count.Quarantined++
			s.log.Warn("segment quarantined; the stream goes on with a gap", "task", r.TaskID, "err", r.Error)
		}
		s.deliver(r)
	}
	s.publishStats()
}

func (s *Scheduler) deliver(r queue.Result) {
	if s.cfg.OnResult != nil {
		s.cfg.OnResult(r)
	}
}

func (s *Scheduler) activeStreams() map[string]bool {
	m := map[string]bool{}
	for _, seg := range s.outstanding {
		m[seg.task.Stream] = true
	}
	return m
}

func (s *Scheduler) publishStats() {
	st := s.count
	st.Queues = append([]queue.QueueStats(nil), s.queues...)
	st.Outstanding = len(s.outstanding)
	st.Workers = len(s.workers)
	now := s.cfg.Now()
	for _, hb := range s.workers {
		if s.fresh(hb, now) {
			st.FreshWorkers++
		}
	}
	s.snap.set(st)
}

// resultBatch is handed from the result reader to Run's goroutine, which
// closes handled when the results are dealt with and may be acknowledged.
type resultBatch struct {
	deliveries []queue.Delivery
	handled    chan struct{}
}

// readResults reads the followed streams' results and hands them to Run's
// goroutine; results are acknowledged only after that, so a crash between
// the two delivers them again.
func (s *Scheduler) readResults(ctx context.Context, out chan<- resultBatch) {
	var lastClaim time.Time
	var lastErr time.Time
	for ctx.Err() == nil {
		streams := s.follow.list()
		if len(streams) == 0 {
			sleep(ctx, s.cfg.ResultWait)
			continue
		}
		var ds []queue.Delivery
		var err error
		if time.Since(lastClaim) >= s.cfg.ClaimIdle/2 {
			lastClaim = time.Now()
			for _, st := range streams {
				claimed, cerr := s.cfg.Results.Claim(ctx, s.cfg.ID, st, s.cfg.ClaimIdle)
				ds = append(ds, claimed...)
				err = errors.Join(err, cerr)
			}
		}
		read, rerr := s.cfg.Results.Read(ctx, s.cfg.ID, streams, s.cfg.ResultWait)
		ds = append(ds, read...)
		if err = errors.Join(err, rerr); err != nil && ctx.Err() == nil {
			if time.Since(lastErr) > 10*time.Second {
				s.log.Warn("read results", "err", err)
				lastErr = time.Now()
			}
			if len(ds) == 0 {
				sleep(ctx, s.cfg.ResultWait)
				continue
			}
		}
		if len(ds) == 0 {
			continue
		}
		b := resultBatch{deliveries: ds, handled: make(chan struct{})}
		select {
		case out <- b:
		case <-ctx.Done():
			return
		}
		select {
		case <-b.handled:
		case <-ctx.Done():
			return
		}
		s.ack(ctx, ds)
	}
}

func (s *Scheduler) ack(ctx context.Context, ds []queue.Delivery) {
	ids := map[string][]string{}
	for _, d := range ds {
		ids[d.Stream] = append(ids[d.Stream], d.ID)
	}
	// Handled results are acknowledged even while stopping, so a restart
	// does not see them again.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.IOTimeout)
	defer cancel()
	for stream, list := range ids {
		if err := s.cfg.Results.Ack(actx, stream, list...); err != nil {
			s.log.Warn("acknowledge results", "stream", stream, "err", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// followSet is the set of streams whose results are read, with when each
// was last active.
type followSet struct {
	mu      sync.Mutex
	streams map[string]time.Time
}

func (f *followSet) touch(stream string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streams[stream] = now
}

func (f *followSet) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.streams))
	for s := range f.streams {
		out = append(out, s)
	}
	return out
}

// prune drops streams idle since before cutoff that have nothing outstanding.
func (f *followSet) prune(cutoff time.Time, active map[string]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s, at := range f.streams {
		if at.Before(cutoff) && !active[s] {
			delete(f.streams, s)
		}
	}
}

// snapshot holds the latest Stats.
type snapshot struct {
	mu sync.Mutex
	st Stats
}

func (s *snapshot) set(st Stats) {
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
}

func (s *snapshot) get() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Queues = append([]queue.QueueStats(nil), st.Queues...)
	return st
}
