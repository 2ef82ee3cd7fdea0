package resilient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/internal/store"
	"github.com/livegrid/livegrid/internal/store/resilient"
	"github.com/livegrid/livegrid/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errDown = errors.New("connection refused")

// backend is a fake store that keeps what it is given, fails uploads while
// down, and records the order of stored keys.
type backend struct {
	mu      sync.Mutex
	down    bool
	failN   int // fail this many more uploads, then succeed
	objects map[string][]byte
	order   []string // keys in the order they were stored
	deletes []string
	closed  bool
	putHook func(key string) error // runs first; an error fails the upload
}

func newBackend() *backend { return &backend{objects: make(map[string][]byte)} }

func (b *backend) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

func (b *backend) stored() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.order)
}

func (b *backend) fake() *storetest.Fake {
	return &storetest.Fake{
		PutFunc: func(ctx context.Context, key string, data []byte, _ string) error {
			if b.putHook != nil {
				if err := b.putHook(key); err != nil {
					return err
				}
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.down {
				return errDown
			}
			if b.failN > 0 {
				b.failN--
				return errDown
			}
			b.objects[key] = bytes.Clone(data)
			b.order = append(b.order, key)
			return nil
		},
		GetFunc: func(_ context.Context, key string) ([]byte, error) {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.down {
				return nil, errDown
			}
			d, ok := b.objects[key]
			if !ok {
				return nil, store.ErrNotFound
			}
			return bytes.Clone(d), nil
		},
		DeleteFunc: func(_ context.Context, key string) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.deletes = append(b.deletes, key)
			delete(b.objects, key)
			return nil
		},
		ListFunc: func(_ context.Context, prefix string) ([]store.Object, error) {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.down {
				return nil, errDown
			}
			var out []store.Object
			for k, d := range b.objects {
				if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
					out = append(out, store.Object{Key: k, Size: int64(len(d))})
				}
			}
			return out, nil
		},
		CloseFunc: func() error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.closed = true
			return nil
		},
	}
}

// sleeper records the backoffs asked for and waits a millisecond each, so
// an outage does not spin.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	select {
	case <-time.After(time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *sleeper) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

func testConfig(s *sleeper) resilient.Config {
	return resilient.Config{
		MaxBytes:       1000,
		InitialBackoff: 100 * time.Millisecond,
		MaxBackoff:     time.Second,
		CloseTimeout:   5 * time.Second,
		Sleep:          s.sleep,
		Logger:         slog.New(slog.DiscardHandler),
	}
}

func flush(t *testing.T, b *resilient.Buffered) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v (stats %+v)", err, b.Stats())
	}
}

func closeOK(t *testing.T, b *resilient.Buffered) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestRetriesUntilStoredInOrder(t *testing.T) {
	tests := []struct {
		name      string
		failures  int
		wantWaits []time.Duration
	}{
		{"no failure", 0, nil},
		{"one failure", 1, []time.Duration{100 * time.Millisecond}},
		{"backoff doubles up to the cap", 6, []time.Duration{
			100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := newBackend()
			be.failN = tc.failures
			s := &sleeper{}
			b := resilient.New(be.fake(), testConfig(s))
			defer closeOK(t, b)

			keys := []string{"live/cam1/s1/720p/00000001.m4s", "live/cam1/s1/720p/00000002.m4s", "live/cam1/s1/index.m3u8"}
			for _, k := range keys {
				if err := b.Put(context.Background(), k, []byte(k), ""); err != nil {
					t.Fatalf("Put(%s): %v", k, err)
				}
			}
			flush(t, b)
			if got := be.stored(); !slices.Equal(got, keys) {
				t.Errorf("stored %q, want %q in that order", got, keys)
			}
			if got := s.recorded(); !slices.Equal(got, tc.wantWaits) {
				t.Errorf("backoffs %v, want %v", got, tc.wantWaits)
			}
			st := b.Stats()
			want := resilient.Stats{Uploads: 3, Failures: uint64(tc.failures), Retries: uint64(tc.failures)}
			if st != want {
				t.Errorf("Stats = %+v, want %+v", st, want)
			}
		})
	}
}

func TestOutageBufferedThenFlushed(t *testing.T) {
	ctx := context.Background()
	be := newBackend()
	be.setDown(true)
	b := resilient.New(be.fake(), testConfig(&sleeper{}))
	defer closeOK(t, b)

	// Ten 100-byte segments fill the 1000-byte buffer.
	var keys []string
	for i := range 10 {
		k := fmt.Sprintf("live/cam1/s1/720p/%08d.m4s", i)
		keys = append(keys, k)
		start := time.Now()
		if err := b.Put(ctx, k, bytes.Repeat([]byte{byte(i)}, 100), "video/iso.segment"); err != nil {
			t.Fatalf("Put #%d during the outage: %v", i, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Put #%d blocked for %v", i, d)
		}
	}
	err := b.Put(ctx, "live/cam1/s1/720p/00000010.m4s", make([]byte, 100), "")
	if !errors.Is(err, resilient.ErrBufferFull) {
		t.Fatalf("Put past the bound error = %v, want ErrBufferFull", err)
	}
	if err := b.Put(ctx, "huge", make([]byte, 1001), ""); !errors.Is(err, resilient.ErrBufferFull) {
		t.Fatalf("Put larger than the bound error = %v, want ErrBufferFull", err)
	}
	st := b.Stats()
	if st.Dropped != 2 || st.BufferedObjects != 10 || st.BufferedBytes != 1000 || st.Uploads != 0 {
		t.Errorf("Stats during the outage = %+v", st)
	}

	// Queued objects are served from memory while the store is down.
	got, err := b.Get(ctx, keys[3])
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{3}, 100)) {
		t.Errorf("Get of a queued object = %d bytes, %v", len(got), err)
	}
	if _, err := b.Get(ctx, "live/cam1/s1/720p/00000010.m4s"); !errors.Is(err, errDown) {
		t.Errorf("Get of a dropped object error = %v, want the backend's", err)
	}

	be.setDown(false)
	flush(t, b)
	if got := be.stored(); !slices.Equal(got, keys) {
		t.Errorf("stored %q, want %q", got, keys)
	}
	st = b.Stats()
	if st.Uploads != 10 || st.BufferedObjects != 0 || st.BufferedBytes != 0 || st.Retries != st.Failures {
		t.Errorf("Stats after recovery = %+v", st)
	}
	// There is room again, and Get now reads the backend.
	if err := b.Put(ctx, "live/cam1/s1/720p/00000010.m4s", make([]byte, 100), ""); err != nil {
		t.Errorf("Put after recovery: %v", err)
	}
	if got, err := b.Get(ctx, keys[3]); err != nil || len(got) != 100 {
		t.Errorf("Get after upload = %d bytes, %v", len(got), err)
	}
}

func TestNewerPutSupersedesQueued(t *testing.T) {
	ctx := context.Background()
	be := newBackend()
	be.setDown(true)
	b := resilient.New(be.fake(), testConfig(&sleeper{}))
	defer closeOK(t, b)

	put := func(key, data string) {
		t.Helper()
		if err := b.Put(ctx, key, []byte(data), ""); err != nil {
			t.Fatalf("Put(%s): %v", key, err)
		}
	}
	put("live/cam1/s1/720p/00000001.m4s", "segment 1")
	put("live/cam1/s1/index.m3u8", "playlist 1")
	put("live/cam1/s1/720p/00000002.m4s", "segment 2")
	put("live/cam1/s1/index.m3u8", "playlist 2")

	if got, _ := b.Get(ctx, "live/cam1/s1/index.m3u8"); string(got) != "playlist 2" {
		t.Errorf("Get of the playlist = %q, want the newest", got)
	}
	be.setDown(false) // List needs the backend; uploads may start now
	objs, err := b.List(ctx, "live/cam1/")
	if err != nil || len(objs) != 3 {
		t.Errorf("List = %v, %v; want 3 objects", objs, err)
	}
	flush(t, b)

	// The first segment may have been in flight when playlist 2 came; what
	// matters is that the playlist lands once, after the segments, newest.
	got := be.stored()
	want := []string{"live/cam1/s1/720p/00000001.m4s", "live/cam1/s1/720p/00000002.m4s", "live/cam1/s1/index.m3u8"}
	if !slices.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
	if got, _ := be.fake().Get(ctx, "live/cam1/s1/index.m3u8"); string(got) != "playlist 2" {
		t.Errorf("stored playlist %q", got)
	}
	if st := b.Stats(); st.Superseded != 1 {
		t.Errorf("Superseded = %d, want 1", st.Superseded)
	}
}

func TestListOverlaysQueued(t *testing.T) {
	ctx := context.Background()
	be := newBackend()
	be.objects["live/cam1/s1/index.m3u8"] = []byte("old")
	block := make(chan struct{})
	be.putHook = func(string) error { <-block; return nil }
	b := resilient.New(be.fake(), testConfig(&sleeper{}))
	defer closeOK(t, b)
	defer close(block)

	if err := b.Put(ctx, "live/cam1/s1/index.m3u8", []byte("newer"), ""); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "live/cam1/s1/720p/00000001.m4s", []byte("seg"), ""); err != nil {
		t.Fatal(err)
	}
	objs, err := b.List(ctx, "live/cam1/s1/")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Object{
		{Key: "live/cam1/s1/720p/00000001.m4s", Size: 3},
		{Key: "live/cam1/s1/index.m3u8", Size: 5},
	}
	if len(objs) != 2 || objs[0].Key != want[0].Key || objs[0].Size != want[0].Size || objs[1].Key != want[1].Key || objs[1].Size != want[1].Size {
		t.Errorf("List = %+v, want %+v", objs, want)
	}
	if _, err := b.List(ctx, "../"); !errors.Is(err, store.ErrBadKey) {
		t.Errorf("List of a bad prefix error = %v", err)
	}
}

func TestDeleteCancelsQueuedUpload(t *testing.T) {
	ctx := context.Background()
	be := newBackend()
	be.setDown(true)
	b := resilient.New(be.fake(), testConfig(&sleeper{}))
	defer closeOK(t, b)

	// The first object is in flight, failing; the second only queued.
	for _, k := range []string{"live/a", "live/b"} {
		if err := b.Put(ctx, k, []byte(k), ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"live/a", "live/b"} {
		if err := b.Delete(ctx, k); err != nil {
			t.Fatalf("Delete(%s): %v", k, err)
		}
		if _, err := b.Get(ctx, k); err == nil {
			t.Errorf("Get(%s) after Delete succeeded", k)
		}
	}
	be.setDown(false)
	flush(t, b)
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.objects) != 0 {
		t.Errorf("objects left after Delete: %v (stored %q, deletes %q)", be.objects, be.order, be.deletes)
	}
}

func TestRejectedObjectIsNotRetried(t *testing.T) {
	be := newBackend()
	be.putHook = func(key string) error {
		if key == "live/too-big" {
			return fmt.Errorf("s3store: put: %w: EntityTooLarge", store.ErrRejected)
		}
		return nil
	}
	s := &sleeper{}
	b := resilient.New(be.fake(), testConfig(s))
	defer closeOK(t, b)
	for _, k := range []string{"live/too-big", "live/ok"} {
		if err := b.Put(context.Background(), k, []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, b)
	if got := be.stored(); !slices.Equal(got, []string{"live/ok"}) {
		t.Errorf("stored %q", got)
	}
	if st := b.Stats(); st.Abandoned != 1 || st.Retries != 0 || len(s.recorded()) != 0 {
		t.Errorf("Stats = %+v, backoffs %v; want 1 abandoned, no retry", st, s.recorded())
	}
}

func TestPutNeverWaitsForTheStore(t *testing.T) {
	be := newBackend()
	release := make(chan struct{})
	be.putHook = func(string) error { <-release; return nil }
	cfg := testConfig(&sleeper{})
	cfg.MaxBytes = 1 << 20
	b := resilient.New(be.fake(), cfg)
	defer closeOK(t, b)

	start := time.Now()
	for i := range 100 {
		if err := b.Put(context.Background(), fmt.Sprintf("live/%03d", i), make([]byte, 1000), ""); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("100 Puts against a hung store took %v", d)
	}
	close(release)
	flush(t, b)
	if n := len(be.stored()); n != 100 {
		t.Errorf("stored %d objects, want 100", n)
	}
}

func TestPutRefusals(t *testing.T) {
	b := resilient.New(newBackend().fake(), testConfig(&sleeper{}))
	ctx := context.Background()
	for _, k := range storetest.BadKeys {
		if err := b.Put(ctx, k, []byte("x"), ""); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Put(%.40q) error = %v, want ErrBadKey", k, err)
		}
	}
	closeOK(t, b)
	if err := b.Put(ctx, "live/a", []byte("x"), ""); !errors.Is(err, resilient.ErrClosed) {
		t.Errorf("Put after Close error = %v, want ErrClosed", err)
	}
	if _, err := b.Get(ctx, "live/a"); !errors.Is(err, resilient.ErrClosed) {
		t.Errorf("Get after Close error = %v, want ErrClosed", err)
	}
}

func TestCloseFlushes(t *testing.T) {
	be := newBackend()
	be.failN = 2
	b := resilient.New(be.fake(), testConfig(&sleeper{}))
	for i := range 5 {
		if err := b.Put(context.Background(), fmt.Sprintf("live/%d", i), []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := len(be.stored()); n != 5 || !be.closed {
		t.Errorf("after Close: %d stored, backend closed %v; want 5, true", n, be.closed)
	}
}

func TestCloseGivesUpAtTheDeadline(t *testing.T) {
	be := newBackend()
	be.setDown(true)
	cfg := testConfig(&sleeper{})
	cfg.CloseTimeout = 50 * time.Millisecond
	cfg.Sleep = nil // real backoff timers, cut short by Close
	cfg.InitialBackoff = time.Hour
	b := resilient.New(be.fake(), cfg)
	for i := range 3 {
		if err := b.Put(context.Background(), fmt.Sprintf("live/%d", i), []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err := b.Close()
	if !errors.Is(err, resilient.ErrUnflushed) {
		t.Errorf("Close error = %v, want ErrUnflushed", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a 50ms deadline", d)
	}
	if st := b.Stats(); st.Abandoned != 3 || st.BufferedObjects != 0 {
		t.Errorf("Stats after Close = %+v; want 3 abandoned", st)
	}
	if !be.closed {
		t.Error("backend not closed")
	}
}

func TestDeleteDuringUpload(t *testing.T) {
	be := newBackend()
	started, release := make(chan struct{}), make(chan struct{})
	be.putHook = func(string) error {
		close(started)
		<-release
		return nil
	}
	b := resilient.New(be.fake(), testConfig(&sleeper{}))
	defer closeOK(t, b)
	ctx := context.Background()
	if err := b.Put(ctx, "live/a", []byte("x"), ""); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := b.Delete(ctx, "live/a"); err != nil {
		t.Fatal(err)
	}
	close(release)
	flush(t, b)
	be.mu.Lock()
	defer be.mu.Unlock()
	if _, there := be.objects["live/a"]; there {
		t.Errorf("object deleted during its upload was left in the store (deletes %q)", be.deletes)
	}
}
