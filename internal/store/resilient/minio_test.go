package resilient_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/store"
	"github.com/livegrid/livegrid/internal/store/resilient"
	"github.com/livegrid/livegrid/internal/store/storetest"
)

// TestMinIOOutage kills a real MinIO in the middle of a stream of segment
// uploads and starts it again: every Put is accepted at once, and every
// object is in the bucket at the end.
func TestMinIOOutage(t *testing.T) {
	srv := storetest.StartMinIO(t)
	ctx := context.Background()
	opts := store.Options{Getenv: srv.Getenv, MaxRetries: 1}
	backend, err := store.Open(ctx, srv.URL("lookback"), opts)
	if err != nil {
		t.Fatal(err)
	}
	b := resilient.New(backend, resilient.Config{
		MaxBytes:       64 << 20,
		InitialBackoff: 20 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
		AttemptTimeout: 2 * time.Second,
		CloseTimeout:   30 * time.Second,
		Logger:         slog.New(slog.DiscardHandler),
	})
	defer closeOK(t, b)

	const segments, killAt, restartAt = 60, 20, 40
	segment := func(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("segment %08d ", i)), 4096) }
	key := func(i int) string { return fmt.Sprintf("live/cam1/s1/720p/%08d.m4s", i) }
	for i := range segments {
		switch i {
		case killAt:
			srv.Kill(t)
		case restartAt:
			// Queued while MinIO was down, served from memory.
			if got, err := b.Get(ctx, key(killAt+1)); err != nil || !bytes.Equal(got, segment(killAt+1)) {
				t.Errorf("Get during the outage = %d bytes, %v", len(got), err)
			}
			srv.Start(t)
		}
		start := time.Now()
		if err := b.Put(ctx, key(i), segment(i), "video/iso.segment"); err != nil {
			t.Fatalf("Put #%d: %v", i, err)
		}
		if err := b.Put(ctx, "live/cam1/s1/720p/index.m3u8", []byte(fmt.Sprintf("#EXTM3U\n# up to %d\n", i)), "application/vnd.apple.mpegurl"); err != nil {
			t.Fatalf("Put playlist #%d: %v", i, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Put #%d blocked the live path for %v", i, d)
		}
		time.Sleep(10 * time.Millisecond)
	}

	flushCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.Flush(flushCtx); err != nil {
		t.Fatalf("Flush after restart: %v (stats %+v)", err, b.Stats())
	}
	st := b.Stats()
	t.Logf("stats: %+v", st)
	if st.Failures == 0 || st.Dropped != 0 || st.Abandoned != 0 {
		t.Errorf("Stats = %+v; want failures during the outage and nothing lost", st)
	}

	// Read back through a store of its own.
	check, err := store.Open(ctx, srv.URL("lookback"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	objs, err := check.List(ctx, "live/cam1/s1/720p/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != segments+1 {
		t.Errorf("bucket holds %d objects, want %d segments and the playlist", len(objs), segments)
	}
	for i := range segments {
		got, err := check.Get(ctx, key(i))
		if err != nil || !bytes.Equal(got, segment(i)) {
			t.Errorf("segment %d: %d bytes, %v", i, len(got), err)
		}
	}
	if got, err := check.Get(ctx, "live/cam1/s1/720p/index.m3u8"); err != nil || string(got) != fmt.Sprintf("#EXTM3U\n# up to %d\n", segments-1) {
		t.Errorf("playlist = %q, %v; want the last one", got, err)
	}
}
