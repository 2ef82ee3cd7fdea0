package queue_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/queue"
	"github.com/livegrid/livegrid/internal/queue/redistest"
)

func TestRegistry(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	reg := queue.NewRegistry(rdb, time.Second)
	now := time.UnixMilli(1714564800123)
	if err := reg.Beat(ctx, queue.Heartbeat{ID: "a", Capacity: 4, Busy: 1, Encoders: []string{"software/libx264"}, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Beat(ctx, queue.Heartbeat{ID: "b", Capacity: 2, Busy: 2, Active: []string{"seg:c:s:1", "seg:c:s:2:r1"}, Draining: true, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	get := func() map[string]queue.Heartbeat {
		t.Helper()
		hbs, err := reg.Workers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]queue.Heartbeat{}
		for _, hb := range hbs {
			m[hb.ID] = hb
		}
		return m
	}
	m := get()
	if a := m["a"]; a.Capacity != 4 || a.Busy != 1 || a.Free() != 3 || !a.LastSeen.Equal(now) || !slices.Equal(a.Encoders, []string{"software/libx264"}) || a.Draining {
		t.Fatalf("a = %+v", a)
	}
	if b := m["b"]; !b.Draining || b.Free() != 0 || !slices.Equal(b.Active, []string{"seg:c:s:1", "seg:c:s:2:r1"}) || b.Left {
		t.Fatalf("b = %+v", b)
	}

	// Leave: still listed (its queue may need taking back), marked gone,
	// running nothing.
	if err := reg.Leave(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if b, ok := get()["b"]; !ok || !b.Left || b.Busy != 0 || len(b.Active) != 0 {
		t.Fatalf("after Leave b = %+v, listed %v", b, ok)
	}
	// A worker whose hash expired comes back with only its id.
	if err := rdb.Del(ctx, queue.HeartbeatKey("b")).Err(); err != nil {
		t.Fatal(err)
	}
	if b := get()["b"]; !b.LastSeen.IsZero() || b.Capacity != 0 || b.Left {
		t.Fatalf("expired b = %+v", b)
	}
	if err := reg.Forget(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, ok := get()["b"]; ok {
		t.Fatal("b listed after Forget")
	}
	// The hash expires on its own when the worker stops beating.
	if ttl := rdb.PTTL(ctx, queue.HeartbeatKey("a")).Val(); ttl <= 0 || ttl > time.Second {
		t.Fatalf("heartbeat TTL %v, want (0, 1s]", ttl)
	}
}

func TestResultLog(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	log := queue.NewResultLog(rdb)
	res := func(seq uint64) queue.Result {
		return queue.Result{TaskID: queue.TaskID("cam1", "s1", seq), Stream: "cam1", Session: "s1", Seq: seq, Status: queue.StatusDone, Worker: "a"}
	}
	// A result published before anyone follows the stream is not lost.
	if ok, err := log.Publish(ctx, res(0)); err != nil || !ok {
		t.Fatalf("Publish = %v, %v", ok, err)
	}
	// The same segment again (a duplicate run) announces nothing.
	if ok, err := log.Publish(ctx, res(0)); err != nil || ok {
		t.Fatalf("second Publish = %v, %v; want false", ok, err)
	}
	if done, err := log.Done(ctx, "cam1", res(0).TaskID); err != nil || !done {
		t.Fatalf("Done = %v, %v", done, err)
	}
	if _, err := log.Publish(ctx, res(1)); err != nil {
		t.Fatal(err)
	}
	ds, err := log.Read(ctx, "coord-a", []string{"cam1", "cam2"}, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Result.Seq != 0 || ds[1].Result.Seq != 1 || ds[0].Stream != "cam1" || ds[0].Err != nil {
		t.Fatalf("Read = %+v", ds)
	}
	// Nothing new: the read times out empty.
	if ds, err := log.Read(ctx, "coord-a", []string{"cam1"}, 50*time.Millisecond); err != nil || len(ds) != 0 {
		t.Fatalf("second Read = %+v, %v", ds, err)
	}
	// coord-a acknowledges seq 0 and dies holding seq 1: a restarted
	// coordinator (another consumer name) claims seq 1.
	if err := log.Ack(ctx, "cam1", ds[0].ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	claimed, err := log.Claim(ctx, "coord-b", "cam1", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].Result.Seq != 1 {
		t.Fatalf("Claim = %+v", claimed)
	}
	if err := log.Ack(ctx, "cam1", claimed[0].ID); err != nil {
		t.Fatal(err)
	}
	if claimed, err := log.Claim(ctx, "coord-b", "cam1", 0); err != nil || len(claimed) != 0 {
		t.Fatalf("Claim after ack = %+v, %v", claimed, err)
	}

	// Redis loses its data: the group is created again on the next read.
	srv.Restart()
	if _, err := log.Publish(ctx, res(2)); err != nil {
		t.Fatal(err)
	}
	ds, err = log.Read(ctx, "coord-b", []string{"cam1"}, 100*time.Millisecond)
	if err != nil || len(ds) != 1 || ds[0].Result.Seq != 2 {
		t.Fatalf("Read after restart = %+v, %v", ds, err)
	}
}
