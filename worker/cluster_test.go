package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livegrid/livegrid/coordinator/scheduler"
	"github.com/livegrid/livegrid/coordinator/scheduler/asynqqueue"
	"github.com/livegrid/livegrid/internal/media"
	"github.com/livegrid/livegrid/internal/queue"
	"github.com/livegrid/livegrid/internal/queue/redistest"
	"github.com/livegrid/livegrid/worker"
	"github.com/redis/go-redis/v9"
)

// These tests run the live path's queue end to end: a real redis-server,
// the scheduler with its asynq queue, and two workers, each an
// asynq.Server, with an in-memory object store.

var errNotFound = errors.New("memstore: no such key")

type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, errNotFound)
	}
	return b, nil
}

func (s *memStore) Put(_ context.Context, key string, data []byte, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), data...)
	return nil
}

func (s *memStore) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[key]
	return ok
}

// segmentTranscoder is what Worker.Transcoder takes.
type segmentTranscoder interface {
	TranscodeSegment(ctx context.Context, in worker.SegmentInput) (*worker.SegmentOutput, error)
}

type fakeTranscoder struct {
	transcode func(ctx context.Context, in worker.SegmentInput) (*worker.SegmentOutput, error)
}

func (f *fakeTranscoder) TranscodeSegment(ctx context.Context, in worker.SegmentInput) (*worker.SegmentOutput, error) {
	return f.transcode(ctx, in)
}

// echo is a transcoder that takes d per segment and returns one 180p
// rendition whose media segment is the source bytes.
func echo(d time.Duration) *fakeTranscoder {
	return &fakeTranscoder{transcode: func(ctx context.Context, in worker.SegmentInput) (*worker.SegmentOutput, error) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &worker.SegmentOutput{Renditions: []worker.RenditionOutput{{
			Rendition: media.Rendition{Name: "180p", Kind: "video", Width: 320, Height: 180, Encoder: "fake", Timescale: 90000, Init: []byte("init")},
			Segments:  []media.Segment{{Duration: 45000, Timescale: 90000, Data: in.Data}},
		}}}, nil
	}}
}

// seqOf and streamOf read a source made by cluster.submitTo.
func seqOf(in worker.SegmentInput) string {
	return string(in.Data[strings.LastIndexByte(string(in.Data), '-')+1:])
}

func streamOf(in worker.SegmentInput) string {
	return strings.Split(string(in.Data), "-")[1]
}

type cluster struct {
	t     *testing.T
	redis *redistest.Server
	store *memStore
	sched *scheduler.Scheduler
	// shutdown is the workers' ShutdownTimeout.
	shutdown time.Duration

	mu  sync.Mutex
	got map[string][]queue.Result // by task id
}

const segDur = 500 * time.Millisecond

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, redis: redistest.Start(t), store: &memStore{m: map[string][]byte{}}, got: map[string][]queue.Result{}, shutdown: 300 * time.Millisecond}
	rdb := redis.NewClient(c.redis.Options())
	t.Cleanup(func() { rdb.Close() })
	s, err := scheduler.New(scheduler.Config{
		ID: "coord", Queue: asynqqueue.New(rdb, time.Minute), Workers: queue.NewRegistry(rdb, 0),
		Results: queue.NewResultLog(rdb),
		OnResult: func(r queue.Result) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.got[r.TaskID] = append(c.got[r.TaskID], r)
		},
		Interval: 100 * time.Millisecond, StaleAfter: time.Second, ResultWait: 100 * time.Millisecond,
		DeadlineSegments: 6, Grace: 500 * time.Millisecond, IOTimeout: time.Second,
		Log: testLog(t, "scheduler"),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.sched = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scheduler: %v", err)
		}
	})
	return c
}

// startWorker runs a worker reaching Redis at addr; stop ends it (as a
// deploy would: draining) and runs at the end of the test anyway.
func (c *cluster) startWorker(id, addr string, tr segmentTranscoder) (stop func()) {
	w := &worker.Worker{
		ID: id, Concurrency: 2, Transcoder: tr, Store: c.store, Log: testLog(c.t, id),
		Redis: redis.UniversalOptions{Addrs: []string{addr}, DialTimeout: 500 * time.Millisecond,
			ReadTimeout: time.Second, WriteTimeout: time.Second},
		HeartbeatInterval: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond,
		RetryDelay: 50 * time.Millisecond, ShutdownTimeout: c.shutdown,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			c.t.Errorf("worker %s: %v", id, err)
		}
	})
	c.t.Cleanup(stop)
	return stop
}

// submit stores source segment seq of stream cam1 and hands it to the
// scheduler.
func (c *cluster) submit(seq uint64) { c.submitTo("cam1", seq) }

func (c *cluster) submitTo(stream string, seq uint64) {
	c.t.Helper()
	ticks := int64(segDur / (time.Second / 90000))
	c.submitSource(stream, seq, []byte(fmt.Sprintf("FLV-%s-%d", stream, seq)), segDur, int64(seq)*ticks, int64(seq+1)*ticks)
}

// submitSource stores a source segment and hands it to the scheduler.
func (c *cluster) submitSource(stream string, seq uint64, data []byte, dur time.Duration, start, end int64) {
	c.t.Helper()
	key := fmt.Sprintf("src/%s/s1/%d.flv", stream, seq)
	if err := c.store.Put(context.Background(), key, data, "video/x-flv"); err != nil {
		c.t.Fatal(err)
	}
	err := c.sched.Submit(context.Background(), queue.Task{
		Stream: stream, Session: "s1", Seq: seq,
		Source:          queue.Source{Key: key, Format: "flv"},
		Ladder:          queue.Ladder{Profile: "tiny", YAML: tinyLadder},
		SegmentDuration: dur, Start: start, End: end,
	})
	if err != nil {
		c.t.Fatalf("submit %d: %v", seq, err)
	}
}

const tinyLadder = `name: tiny
gop: 1s
audio: {codec: aac, bitrate: 64k, sample_rate: 48000, channels: 2}
rungs:
  - {name: 180p, height: 180, bitrate: 200k, preset: ultrafast, encoders: [software]}
`

// wait waits until segments [from, to) of cam1 have a result, lets late
// duplicates turn up, and checks that each got exactly one.
func (c *cluster) wait(from, to uint64, timeout time.Duration) map[uint64]queue.Result {
	c.t.Helper()
	ids := map[string]uint64{}
	for seq := from; seq < to; seq++ {
		ids[queue.TaskID("cam1", "s1", seq)] = seq
	}
	out := map[uint64]queue.Result{}
	for id, r := range c.waitIDs(ids, timeout) {
		out[ids[id]] = r
	}
	return out
}

func (c *cluster) waitIDs(ids map[string]uint64, timeout time.Duration) map[string]queue.Result {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		n := 0
		for id := range ids {
			if len(c.got[id]) > 0 {
				n++
			}
		}
		c.mu.Unlock()
		if n == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d of %d results after %v; stats %+v", n, len(ids), timeout, c.sched.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a duplicate would come in this time
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]queue.Result{}
	for id := range ids {
		if len(c.got[id]) != 1 {
			c.t.Errorf("segment %s announced %d times: %+v", id, len(c.got[id]), c.got[id])
		}
		out[id] = c.got[id][0]
	}
	return out
}

func TestClusterSegmentsDoneOnce(t *testing.T) {
	c := newCluster(t)
	var poisonRuns atomic.Int32
	fast := echo(50 * time.Millisecond)
	tr := &fakeTranscoder{transcode: func(ctx context.Context, in worker.SegmentInput) (*worker.SegmentOutput, error) {
		if seqOf(in) == "6" {
			poisonRuns.Add(1)
			return nil, errors.New("encoder failed mid-stream")
		}
		return fast.transcode(ctx, in)
	}}
	c.startWorker("a", c.redis.Addr, tr)
	c.startWorker("b", c.redis.Addr, tr)
	for seq := range uint64(7) {
		c.submit(seq)
	}
	c.submit(2) // a repeat is a no-op
	got := c.wait(0, 7, 20*time.Second)
	for seq := range uint64(6) {
		r := got[seq]
		if r.Status != queue.StatusDone || (r.Worker != "a" && r.Worker != "b") || len(r.Renditions) != 1 {
			t.Fatalf("segment %d: %+v", seq, r)
		}
		key := queue.SegmentKey("cam1", "s1", "180p", seq, 0)
		if r.Renditions[0].Segments[0].Key != key || !c.store.has(key) || !c.store.has(r.Renditions[0].InitKey) {
			t.Fatalf("segment %d not stored at %s", seq, key)
		}
	}
	// Segment 6 fails twice and is quarantined: a gap the coordinator hears of.
	if g := got[6]; g.Status != queue.StatusQuarantined || !strings.Contains(g.Error, "encoder failed") {
		t.Fatalf("segment 6: %+v", g)
	}
	if n := poisonRuns.Load(); n != 2 {
		t.Fatalf("segment 6 ran %d times, want 2", n)
	}
	st := c.sched.Stats()
	if st.Done != 6 || st.Quarantined != 1 || st.Outstanding != 0 || st.Lost != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestClusterWorkerKilled(t *testing.T) {
	c := newCluster(t)
	// Worker a reaches Redis through a proxy the test cuts: a machine
	// that drops off the network, leaving its tasks active under a lease
	// and its heartbeat to go stale.
	proxy := redistest.NewProxy(t, c.redis.Addr)
	var hung atomic.Int32
	fast := echo(20 * time.Millisecond)
	stopA := c.startWorker("a", proxy.Addr, &fakeTranscoder{transcode: func(ctx context.Context, in worker.SegmentInput) (*worker.SegmentOutput, error) {
		if seqOf(in) == "0" && streamOf(in) == "cam1" {
			return fast.transcode(ctx, in)
		}
		hung.Add(1)
		<-ctx.Done() // never finishes
		return nil, ctx.Err()
	}})
	c.submit(0)
	if r := c.wait(0, 1, 10*time.Second)[0]; r.Worker != "a" {
		t.Fatalf("segment 0 done by %q", r.Worker)
	}
	// cam1 is now a's: its next segment goes to a's queue. A new stream,
	// cam2, goes to the shared queue, and a takes it too.
	c.submit(1)
	c.submitTo("cam2", 0)
	for deadline := time.Now().Add(10 * time.Second); hung.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("worker a started %d segments", hung.Load())
		}
	}
	for seq := uint64(2); seq < 6; seq++ {
		c.submit(seq) // a is full: to the shared queue (or waiting in a's)
	}
	time.Sleep(400 * time.Millisecond) // a heartbeat tells what a runs
	// b joins; then a drops off the network with two segments in hand.
	c.startWorker("b", c.redis.Addr, echo(20*time.Millisecond))
	proxy.Cut()
	stopA()
	got := c.wait(0, 6, 20*time.Second)
	for seq := uint64(1); seq < 6; seq++ {
		if r := got[seq]; r.Status != queue.StatusDone || r.Worker != "b" || !c.store.has(queue.SegmentKey("cam1", "s1", "180p", seq, 0)) {
			t.Fatalf("segment %d: %+v", seq, r)
		}
	}
	cam2 := queue.TaskID("cam2", "s1", 0)
	if r := c.waitIDs(map[string]uint64{cam2: 0}, 10*time.Second)[cam2]; r.Status != queue.StatusDone || r.Worker != "b" {
		t.Fatalf("cam2 segment 0: %+v", r)
	}
	// cam1/1 was copied off a's queue; cam2/0, which a had taken from the
	// shared queue, was resubmitted at once rather than after its lease.
	st := c.sched.Stats()
	if st.Reclaimed == 0 || st.Resubmitted == 0 || st.Lost != 0 {
		t.Fatalf("stats %+v; want tasks both taken back and resubmitted", st)
	}
}

func TestClusterRedisRestart(t *testing.T) {
	c := newCluster(t)
	var started atomic.Int32
	slow := echo(300 * time.Millisecond)
	tr := &fakeTranscoder{transcode: func(ctx context.Context, in worker.SegmentInput) (*worker.SegmentOutput, error) {
		started.Add(1)
		return slow.transcode(ctx, in)
	}}
	c.startWorker("a", c.redis.Addr, tr)
	c.startWorker("b", c.redis.Addr, tr)
	for seq := range uint64(3) {
		c.submit(seq)
	}
	c.wait(0, 3, 10*time.Second)
	before := started.Load()
	// Eight segments for four slots: some run, the rest wait in Redis.
	for seq := uint64(3); seq < 11; seq++ {
		c.submit(seq)
	}
	for deadline := time.Now().Add(10 * time.Second); started.Load() == before; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no segment started")
		}
	}
	// Redis goes away mid-run and comes back empty: waiting tasks, result
	// logs, heartbeats and claims are gone.
	c.redis.Stop()
	time.Sleep(300 * time.Millisecond)
	c.redis.Start()
	c.wait(0, 11, 30*time.Second)
	if st := c.sched.Stats(); st.Resubmitted == 0 || st.Lost != 0 {
		t.Fatalf("stats %+v: the lost tasks should have been resubmitted", st)
	}
	// New work flows as before.
	c.submit(11)
	c.submit(12)
	for seq, r := range c.wait(0, 13, 15*time.Second) {
		if r.Status != queue.StatusDone || (r.Worker != "a" && r.Worker != "b") {
			t.Fatalf("segment %d: %+v", seq, r)
		}
	}
}

func TestClusterGracefulDrain(t *testing.T) {
	c := newCluster(t)
	c.shutdown = 5 * time.Second
	started := make(chan struct{}, 1)
	slow := echo(400 * time.Millisecond)
	stop := c.startWorker("a", c.redis.Addr, &fakeTranscoder{transcode: func(ctx context.Context, in worker.SegmentInput) (*worker.SegmentOutput, error) {
		started <- struct{}{}
		return slow.transcode(ctx, in)
	}})
	c.submit(0)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("segment did not start")
	}
	stop() // returns once the segment in hand is done
	if r := c.wait(0, 1, 5*time.Second)[0]; r.Status != queue.StatusDone || r.Worker != "a" {
		t.Fatalf("segment 0: %+v", r)
	}
	rdb := redis.NewClient(c.redis.Options())
	defer rdb.Close()
	// The scheduler may have forgotten a by now; its hash says it left.
	hb, err := rdb.HGetAll(context.Background(), queue.HeartbeatKey("a")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if hb["left"] != "1" || hb["busy"] != "0" {
		t.Fatalf("heartbeat after shutdown %v, want left", hb)
	}
}

// testLog logs warnings and errors to the test's output.
func testLog(t *testing.T, who string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("who", who)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
