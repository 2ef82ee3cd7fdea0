//go:build cgo

package worker_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/queue"
	"github.com/livegrid/livegrid/internal/testmedia"
	"github.com/livegrid/livegrid/profiles"
	"github.com/livegrid/livegrid/worker"
	"github.com/livegrid/livegrid/worker/transcode"
	"github.com/redis/go-redis/v9"
)

// TestClusterRealEngine runs the transcode engine behind the queue: a tiny
// 320x180 FLV segment into a one-rung 180p ultrafast ladder, on two workers.
func TestClusterRealEngine(t *testing.T) {
	path := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, FPS: 15, Seconds: 1, GOP: 15, Format: "flv"})
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	for _, id := range []string{"a", "b"} {
		eng := transcode.New(transcode.Options{
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Threads: 1, Encoder: profiles.EncoderSoftware,
		})
		c.startWorker(id, c.redis.Addr, &worker.EngineTranscoder{Engine: eng})
	}
	const n = 6
	for seq := range uint64(n) {
		// The same second of media each time: every source segment is a
		// self-contained FLV from 0 to 1 s.
		c.submitSource("cam1", seq, src, time.Second, 0, 90000)
	}
	got := c.wait(0, n, 90*time.Second)
	for seq := range uint64(n) {
		r := got[seq]
		if r.Status != queue.StatusDone {
			t.Fatalf("segment %d: %+v", seq, r)
		}
		names := []string{}
		for _, rr := range r.Renditions {
			names = append(names, rr.Name)
			init, err := c.store.Get(context.Background(), rr.InitKey)
			if err != nil {
				t.Fatalf("segment %d %s: %v", seq, rr.Name, err)
			}
			if _, err := cmaf.ParseInit(init); err != nil {
				t.Fatalf("segment %d %s init: %v", seq, rr.Name, err)
			}
			if len(rr.Segments) == 0 {
				t.Fatalf("segment %d %s: no media", seq, rr.Name)
			}
			var total uint64
			for _, s := range rr.Segments {
				b, err := c.store.Get(context.Background(), s.Key)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := cmaf.ParseMediaSegment(b); err != nil {
					t.Fatalf("%s: %v", s.Key, err)
				}
				total += s.Duration
			}
			if d := time.Duration(total) * time.Second / time.Duration(rr.Timescale); d < 900*time.Millisecond || d > 1100*time.Millisecond {
				t.Errorf("segment %d %s: %v of media, want 1s", seq, rr.Name, d)
			}
			if rr.Kind == "video" && (rr.Width != 320 || rr.Height != 180 || rr.Encoder != "libx264") {
				t.Errorf("segment %d video %+v", seq, rr)
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"180p", "audio"}) {
			t.Fatalf("segment %d renditions %v", seq, names)
		}
		if r.TranscodeTime <= 0 {
			t.Errorf("segment %d: no transcode time", seq)
		}
	}
	// Heartbeats carry the encoders the engine can use.
	rdb := redis.NewClient(c.redis.Options())
	defer rdb.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		hbs, err := queue.NewRegistry(rdb, 0).Workers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ok := len(hbs) == 2
		for _, hb := range hbs {
			ok = ok && slices.Contains(hb.Encoders, "software/libx264")
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeats %+v do not list software/libx264", hbs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
