package stats

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livegrid/livegrid/internal/queue/redistest"
)

func find(t *testing.T, all []StreamStats, name string) (StreamStats, bool) {
	t.Helper()
	for _, s := range all {
		if s.Stream == name {
			return s, true
		}
	}
	return StreamStats{}, false
}

// TestReportAndAggregate has two nodes report to a real redis-server and
// checks the merged numbers, then that a node leaving, a node whose
// report expired and an unreadable report drop out.
func TestReportAndAggregate(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	c := newClock()
	start := c.now()

	a := NewTracker(Config{Now: c.now})
	fa := a.Open("cam", FLV, "10.0.0.1")
	defer fa.Close()
	fa.Add(1000)
	a.ObserveHTTP("cam", HLS, "10.0.0.2", "player", 500)
	c.advance(2 * time.Second)

	b := NewTracker(Config{Now: c.now})
	b.ObserveHTTP("cam", HLS, "10.0.0.2", "player", 300) // the same client, moved edges
	b.ObserveHTTP("cam", DASH, "10.0.0.3", "player", 200)
	b.ObserveHTTP("other", HLS, "10.0.0.4", "player", 50)
	c.advance(time.Second)

	ra := &Reporter{Redis: rdb, Tracker: a, Node: "a"}
	rb := &Reporter{Redis: rdb, Tracker: b, Node: "b"}
	for _, r := range []*Reporter{ra, rb} {
		if err := r.Report(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ttl := rdb.PTTL(ctx, NodeKey("a")).Val(); ttl <= 0 || ttl > 3*DefaultReportInterval {
		t.Errorf("report TTL %v", ttl)
	}

	check := func(t *testing.T, agg *Aggregator) {
		t.Helper()
		all, err := agg.Streams(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cam, ok := find(t, all, "cam")
		if !ok {
			t.Fatalf("no cam in %+v", all)
		}
		want := ByProtocol{FLV: 1, HLS: 2, DASH: 1}
		if cam.Viewers != 4 || cam.ByProtocol != want || cam.PlaysTotal != 4 || cam.BytesOut != 2000 {
			t.Errorf("cam = %+v", cam)
		}
		if cam.VisitorsTotal != 3 { // 10.0.0.2 counts once
			t.Errorf("visitors = %d, want 3", cam.VisitorsTotal)
		}
		if !slices.Equal(cam.ClientIPs, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
			t.Errorf("client_ips = %v", cam.ClientIPs)
		}
		if !cam.StartTime.Equal(start) || cam.DurationS != 3 {
			t.Errorf("start %v duration %v, want %v 3", cam.StartTime, cam.DurationS, start)
		}
		if cam.BandwidthBps != 2000*8/5 {
			t.Errorf("bandwidth %d", cam.BandwidthBps)
		}
		if o, ok := find(t, all, "other"); !ok || o.Viewers != 1 {
			t.Errorf("other = %+v %v", o, ok)
		}
	}
	t.Run("reports only", func(t *testing.T) { check(t, &Aggregator{Redis: rdb, Now: c.now}) })
	t.Run("local tracker and the others' reports", func(t *testing.T) {
		fa2 := a.Open("cam", FLV, "10.0.0.1") // not yet reported: seen locally
		defer fa2.Close()
		agg := &Aggregator{Redis: rdb, Local: a, Self: "a", Now: c.now}
		all, err := agg.Streams(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cam, _ := find(t, all, "cam"); cam.ByProtocol.FLV != 2 || cam.Viewers != 5 {
			t.Errorf("cam = %+v", cam)
		}
	})

	agg := &Aggregator{Redis: rdb, Now: c.now}
	t.Run("leave", func(t *testing.T) {
		if err := rb.Leave(ctx); err != nil {
			t.Fatal(err)
		}
		all, err := agg.Streams(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := find(t, all, "other"); ok {
			t.Error("other still listed after b left")
		}
		if cam, _ := find(t, all, "cam"); cam.Viewers != 2 {
			t.Errorf("cam = %+v", cam)
		}
	})
	t.Run("expired report", func(t *testing.T) {
		short := &Reporter{Redis: rdb, Tracker: b, Node: "b", Interval: 100 * time.Millisecond}
		if err := short.Report(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := agg.Stream(ctx, "other"); !ok {
			t.Fatal("other not listed")
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, ok, err := agg.Stream(ctx, "other")
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("expired report still read")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("unreadable report and stale index entries", func(t *testing.T) {
		rdb.HSet(ctx, NodeKey("junk"), "cam", "{not json", "zzz", `{"stream":"other"}`)
		rdb.ZAdd(ctx, nodesKey, redis.Z{Score: float64(c.now().UnixMilli()), Member: "junk"})
		rdb.ZAdd(ctx, nodesKey, redis.Z{Score: float64(c.now().Add(-time.Hour).UnixMilli()), Member: "gone"})
		all, err := agg.Streams(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cam, _ := find(t, all, "cam"); cam.Viewers != 2 || len(all) != 1 {
			t.Errorf("streams = %+v", all)
		}
		if err := rdb.ZScore(ctx, nodesKey, "gone").Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("stale node kept in the index: %v", err)
		}
	})
}

// TestReporterRun runs a Reporter's loop: its reports follow the tracker,
// and stopping it removes them.
func TestReporterRun(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	tr := NewTracker(Config{})
	r := &Reporter{Redis: rdb, Tracker: tr, Node: "edge-1", Interval: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	defer stop()

	agg := &Aggregator{Redis: rdb}
	wait := func(what string, ok func(StreamStats, bool) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, found, err := agg.Stream(context.Background(), "cam")
			if err == nil && ok(s, found) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: last %+v %v %v", what, s, found, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	s := tr.Open("cam", RTMP, "192.0.2.7")
	wait("viewer reported", func(s StreamStats, ok bool) bool { return ok && s.ByProtocol.RTMP == 1 })
	s.Close()
	wait("viewer gone", func(s StreamStats, ok bool) bool { return ok && s.Viewers == 0 && s.PlaysTotal == 1 })

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(context.Background(), NodeKey("edge-1")).Val(); n != 0 {
		t.Error("report kept after Run returned")
	}
	if _, found, _ := agg.Stream(context.Background(), "cam"); found {
		t.Error("stream still aggregated after the node left")
	}
}

// TestAggregatorRedisDown still answers with the local tracker.
func TestAggregatorRedisDown(t *testing.T) {
	tr := NewTracker(Config{})
	tr.ObserveHTTP("cam", HLS, "10.0.0.1", "ua", 10)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	agg := &Aggregator{Redis: rdb, Local: tr, Self: "me"}
	all, err := agg.Streams(context.Background())
	if err == nil {
		t.Error("no error with Redis down")
	}
	if len(all) != 1 || all[0].Viewers != 1 {
		t.Errorf("local streams = %+v", all)
	}
}
