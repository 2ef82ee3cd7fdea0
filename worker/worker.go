package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/livegrid/livegrid/internal/queue"
	"github.com/redis/go-redis/v9"
)

// objectStore is where source segments are read and renditions written.
type objectStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, data []byte, contentType string) error
}

// resultLog announces results; see queue.ResultLog.
type resultLog interface {
	Publish(ctx context.Context, r queue.Result) (bool, error)
	Done(ctx context.Context, stream, taskID string) (bool, error)
}

// registry takes heartbeats; see queue.Registry.
type registry interface {
	Beat(ctx context.Context, hb queue.Heartbeat) error
	Leave(ctx context.Context, id string) error
}

var (
	_ resultLog = (*queue.ResultLog)(nil)
	_ registry  = (*queue.Registry)(nil)
)

// Worker runs "transcode:segment" tasks from its own queue (the streams it
// holds warm) and the shared queue, and heartbeats to Redis so the
// scheduler knows it is alive and how busy it is.
type Worker struct {
	// ID names the worker and its queue (queue.WorkerQueue); see
	// queue.ValidName. Keep it stable across restarts of one machine, so a
	// restarted worker picks up what its predecessor left in its queue.
	ID          string
	Redis       redis.UniversalOptions
	Concurrency int // tasks at once; default 1
	Transcoder  transcoder
	Store       objectStore
	Log         *slog.Logger

	// SharedQueue is the queue every worker takes from; default
	// queue.SharedQueue.
	SharedQueue string
	// HeartbeatInterval defaults to 1s.
	HeartbeatInterval time.Duration
	// ShutdownTimeout is how long a stopping worker lets its tasks finish
	// before handing them back to the queue; default 10s.
	ShutdownTimeout time.Duration
	// PollInterval is how often an idle worker looks for tasks, and how
	// often retries come due; default 200ms.
	PollInterval time.Duration
	// RetryDelay is the wait before a failed task runs again; default 200ms.
	RetryDelay time.Duration
	// HTTP fetches sources given by URL; default http.DefaultClient.
	HTTP *http.Client
	Now  func() time.Time
	// OnResult, when set, sees every result the worker announces (for its
	// metrics); it must not block.
	OnResult func(queue.Result)
}

func (w *Worker) setDefaults() error {
	switch {
	case !queue.ValidName(w.ID):
		return fmt.Errorf("worker: 'id' %q must be 1..128 characters of [A-Za-z0-9._-]", w.ID)
	case w.Transcoder == nil || w.Store == nil:
		return errors.New("worker: Transcoder and Store are required")
	}
	if w.Concurrency <= 0 {
		w.Concurrency = 1
	}
	if w.SharedQueue == "" {
		w.SharedQueue = queue.SharedQueue
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&w.HeartbeatInterval, time.Second}, {&w.ShutdownTimeout, 10 * time.Second},
		{&w.PollInterval, 200 * time.Millisecond}, {&w.RetryDelay, 200 * time.Millisecond}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if w.HTTP == nil {
		w.HTTP = http.DefaultClient
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Log == nil {
		w.Log = slog.Default()
	}
	return nil
}

// Run works until ctx ends, then drains: it takes no new task, tells the
// scheduler it is draining, lets running tasks finish for ShutdownTimeout,
// hands the rest back to its queue and marks its heartbeat as left, so the
// scheduler moves what is left to the shared queue at once.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.setDefaults(); err != nil {
		return err
	}
	log := w.Log.With("component", "worker", "worker", w.ID)
	rdb := redis.NewUniversalClient(&w.Redis)
	defer rdb.Close()
	reg := queue.NewRegistry(rdb, 0)
	h := &handler{
		worker: w.ID, tr: w.Transcoder, store: w.Store, results: observedLog{queue.NewResultLog(rdb), w.OnResult},
		http: w.HTTP, now: w.Now, log: log,
	}
	keeper, _ := w.Transcoder.(sessionKeeper)
	if keeper != nil {
		// As many warm streams as segments at once: the scheduler routes
		// a stream here only while there is room for it.
		keeper.setCapacity(w.Concurrency)
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: w.Concurrency,
		// Strict: the worker's own queue first, since its segments find
		// their encoders warm here.
		Queues:                   map[string]int{queue.WorkerQueue(w.ID): 2, w.SharedQueue: 1},
		StrictPriority:           true,
		ShutdownTimeout:          w.ShutdownTimeout,
		TaskCheckInterval:        w.PollInterval,
		DelayedTaskCheckInterval: w.PollInterval,
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return w.RetryDelay },
		ErrorHandler:             asynq.ErrorHandlerFunc(h.handleError),
		Logger:                   asynqLogger{log.With("component", "asynq")},
		LogLevel:                 asynq.WarnLevel,
	})
	if err := srv.Start(asynq.HandlerFunc(h.ProcessTask)); err != nil {
		return fmt.Errorf("worker %s: %w", w.ID, err)
	}
	log.Info("worker started", "concurrency", w.Concurrency, "queues", []string{queue.WorkerQueue(w.ID), w.SharedQueue})

	beats := &beater{w: w, reg: reg, h: h, log: log}
	beatCtx, stopBeats := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		beats.run(beatCtx)
	}()
	if keeper != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			closeIdleSessions(beatCtx, keeper, w.HeartbeatInterval)
		}()
	}

	<-ctx.Done()
	log.Info("worker draining", "in_flight", h.busy.Load())
	beats.draining.Store(true)
	beats.beat(beatCtx) // at once, so no more segments are routed here
	srv.Shutdown()
	stopBeats()
	wg.Wait()
	if keeper != nil {
		_ = keeper.Close() // frees the warm encoders; nothing to report
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := reg.Leave(lctx, w.ID); err != nil {
		log.Warn("mark heartbeat as left", "err", err)
	}
	log.Info("worker stopped")
	return nil
}

// encoderLister is implemented by transcoders that know their usable
// encoders (EngineTranscoder); heartbeats carry the list.
type encoderLister interface {
	UsableEncoders() []string
}

// sessionKeeper is implemented by transcoders that keep per-stream state
// (EngineTranscoder's live sessions): the worker sizes it to its
// concurrency, closes the sessions of streams gone idle and, when it stops,
// all of them.
type sessionKeeper interface {
	setCapacity(n int)
	CloseIdle()
	Close() error
}

// closeIdleSessions closes idle sessions every interval until ctx ends.
func closeIdleSessions(ctx context.Context, k sessionKeeper, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.CloseIdle()
		}
	}
}

// beater writes the worker's heartbeats from its goroutine; the state that
// Run and the encoder lister change is atomic.
type beater struct {
	w        *Worker
	reg      registry
	h        *handler
	log      *slog.Logger
	draining atomic.Bool
	encoders atomic.Pointer[[]string]
	failing  atomic.Bool
}

// encodersEvery is how often the usable encoders are listed again: an
// encoder that failed recovers after the chain's cool-down.
const encodersEvery = 30 * time.Second

func (b *beater) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if l, ok := b.w.Transcoder.(encoderLister); ok {
		// Apart from the beats: listing may probe encoders, which takes a
		// while the first time, longer than a heartbeat may be late.
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.listEncoders(ctx, l)
		}()
	}
	t := time.NewTicker(b.w.HeartbeatInterval)
	defer t.Stop()
	b.beat(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.beat(ctx)
		}
	}
}

func (b *beater) listEncoders(ctx context.Context, l encoderLister) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		enc := l.UsableEncoders()
		b.encoders.Store(&enc)
		t.Reset(encodersEvery)
	}
}

func (b *beater) beat(ctx context.Context) {
	hb := queue.Heartbeat{
		ID: b.w.ID, Capacity: b.w.Concurrency, Busy: int(b.h.busy.Load()), Active: b.h.active.list(),
		Draining: b.draining.Load(), LastSeen: b.w.Now(),
	}
	if enc := b.encoders.Load(); enc != nil {
		hb.Encoders = *enc
	}
	ctx, cancel := context.WithTimeout(ctx, b.w.HeartbeatInterval)
	defer cancel()
	err := b.reg.Beat(ctx, hb)
	// Log changes only: a Redis outage would otherwise log every second.
	switch {
	case err != nil && !b.failing.Swap(true):
		b.log.Warn("heartbeat failed", "err", err)
	case err == nil && b.failing.Swap(false):
		b.log.Info("heartbeat back")
	}
}

// asynqLogger routes asynq's logs to slog. Fatal is logged as an error:
// only main may end the process.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...)) }
