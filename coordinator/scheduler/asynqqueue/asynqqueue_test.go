package asynqqueue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/livegrid/livegrid/internal/queue"
	"github.com/livegrid/livegrid/internal/queue/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func job(seq uint64, q string) queue.Job {
	t := queue.Task{
		Stream: "cam1", Session: "s1", Seq: seq,
		Source:          queue.Source{Key: "src/cam1", Format: "flv"},
		Ladder:          queue.Ladder{Profile: "default", Ref: "builtin:default"},
		SegmentDuration: 300 * time.Millisecond, End: -1,
	}
	return queue.Job{ID: t.ID(), Queue: q, Task: t, MaxRetry: 2, Timeout: 900 * time.Millisecond,
		Deadline: time.Now().Add(time.Hour)}
}

func depth(t *testing.T, q *Queue, name string) queue.QueueStats {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Queue == name {
			return s
		}
	}
	return queue.QueueStats{Queue: name}
}

func TestEnqueueIdempotent(t *testing.T) {
	srv := redistest.Start(t)
	q := New(srv.Client(t), time.Minute)
	ctx := context.Background()
	tests := []struct {
		name    string
		job     queue.Job
		wantDup bool
	}{
		{"first", job(1, "transcode"), false},
		{"again", job(1, "transcode"), true},
		{"same segment, another queue", job(1, "worker:a"), true},
		{"another segment", job(2, "worker:a"), false},
		{"resubmission", func() queue.Job { j := job(1, "transcode"); j.ID = queue.AttemptID(j.ID, 1); return j }(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := q.Enqueue(ctx, tt.job)
			if tt.wantDup != errors.Is(err, queue.ErrDuplicate) || !tt.wantDup && err != nil {
				t.Fatalf("Enqueue = %v, want duplicate %v", err, tt.wantDup)
			}
		})
	}
	if d := depth(t, q, "transcode"); d.Pending != 2 {
		t.Fatalf("shared queue %+v, want 2 pending", d)
	}
	if d := depth(t, q, "worker:a"); d.Pending != 1 {
		t.Fatalf("worker:a %+v, want 1 pending", d)
	}
	// asynq keeps whole seconds: limits round up, never down.
	info, err := q.insp.GetTaskInfo("transcode", job(1, "").ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Timeout != time.Second || info.MaxRetry != 2 || info.Deadline.Before(time.Now().Add(time.Hour-time.Second)) {
		t.Fatalf("task limits: timeout %v retry %d deadline %v", info.Timeout, info.MaxRetry, info.Deadline)
	}
	got, err := queue.DecodeTask(info.Payload)
	if err != nil || got.ID() != job(1, "").ID {
		t.Fatalf("payload %+v: %v", got, err)
	}
}

func TestEnqueueFailureReleasesClaim(t *testing.T) {
	srv := redistest.Start(t)
	q := New(srv.Client(t), time.Minute)
	j := job(1, "transcode")
	j.Queue = "   " // asynq refuses a blank queue name
	if err := q.Enqueue(context.Background(), j); err == nil || errors.Is(err, queue.ErrDuplicate) {
		t.Fatalf("Enqueue to a blank queue = %v", err)
	}
	j.Queue = "transcode"
	if err := q.Enqueue(context.Background(), j); err != nil {
		t.Fatalf("Enqueue after a failed one = %v", err)
	}
}

func TestReclaim(t *testing.T) {
	srv := redistest.Start(t)
	q := New(srv.Client(t), time.Minute)
	ctx := context.Background()

	if moved, drained, err := q.Reclaim(ctx, "worker:never", "transcode"); err != nil || moved != 0 || !drained {
		t.Fatalf("Reclaim of an unknown queue = %d, %v, %v", moved, drained, err)
	}

	// A worker for worker:a that fails seq 0 once (it waits in retry),
	// holds seq 1 (active) and never gets to seq 2 and 3 (pending).
	for seq := range uint64(2) {
		if err := q.Enqueue(ctx, job(seq, "worker:a")); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	var once sync.Once
	active := make(chan struct{})
	srvA := asynq.NewServerFromRedisClient(srv.Client(t), asynq.Config{
		Concurrency: 1, Queues: map[string]int{"worker:a": 1}, TaskCheckInterval: 20 * time.Millisecond,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		Logger:         nopLogger{}, ShutdownTimeout: time.Second,
	})
	err := srvA.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		tk, _ := queue.DecodeTask(task.Payload())
		if tk.Seq == 0 {
			return errors.New("encoder lost")
		}
		once.Do(func() { close(active) })
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer srvA.Shutdown()
	defer close(release)
	<-active
	for seq := uint64(2); seq < 4; seq++ {
		if err := q.Enqueue(ctx, job(seq, "worker:a")); err != nil {
			t.Fatal(err)
		}
	}
	srvA.Stop() // takes nothing more; seq 1 stays active
	waitFor(t, func() bool { d := depth(t, q, "worker:a"); return d.Retry == 1 && d.Active == 1 })

	moved, drained, err := q.Reclaim(ctx, "worker:a", "transcode")
	if err != nil || moved != 4 || !drained {
		t.Fatalf("Reclaim = %d, %v, %v; want 4 moved, drained", moved, drained, err)
	}
	if d := depth(t, q, "transcode"); d.Pending != 4 {
		t.Fatalf("shared queue %+v, want 4 pending", d)
	}
	if d := depth(t, q, "worker:a"); d.Pending+d.Retry != 0 || d.Active != 1 {
		t.Fatalf("worker:a after Reclaim %+v, want only the active original", d)
	}
	// The failure of seq 0 travels with it.
	info, err := q.insp.GetTaskInfo("transcode", job(0, "").ID)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := queue.DecodeTask(info.Payload)
	if err != nil || tk.PriorFailures != 1 || info.MaxRetry != 1 {
		t.Fatalf("moved seq 0: prior failures %d, max retry %d, err %v", tk.PriorFailures, info.MaxRetry, err)
	}
	// Again (another coordinator, the next poll): nothing more moves.
	if moved, drained, err := q.Reclaim(ctx, "worker:a", "transcode"); err != nil || moved != 0 || !drained {
		t.Fatalf("second Reclaim = %d, %v, %v", moved, drained, err)
	}
	if d := depth(t, q, "transcode"); d.Pending != 4 {
		t.Fatalf("shared queue %+v after a second Reclaim", d)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
	}
}

type nopLogger struct{}

func (nopLogger) Debug(...any) {}
func (nopLogger) Info(...any)  {}
func (nopLogger) Warn(...any)  {}
func (nopLogger) Error(...any) {}
func (nopLogger) Fatal(...any) {}
