package edge

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/config"
)

// TestCacheLRU checks the byte bound, least-recently-used eviction, that
// a get refreshes an entry's place and that an object bigger than the
// cache is not kept.
func TestCacheLRU(t *testing.T) {
	now := time.Unix(1e9, 0)
	obj := func(n int) *object {
		return &object{status: 200, body: make([]byte, n), header: http.Header{}, fetched: now, store: true}
	}
	per := obj(1000).size("/live/s/v/00000001.m4s")
	c := newCache(3 * per) // room for three
	key := func(i int) string { return fmt.Sprintf("/live/s/v/%08d.m4s", i) }
	for i := 1; i <= 3; i++ {
		if !c.put(key(i), obj(1000)) {
			t.Fatalf("put %d refused", i)
		}
	}
	if _, ok := c.get(key(1)); !ok { // 1 is now the most recent
		t.Fatal("1 missing")
	}
	c.put(key(4), obj(1000)) // evicts 2, the least recently used
	tests := []struct {
		key  string
		want bool
	}{{key(1), true}, {key(2), false}, {key(3), true}, {key(4), true}}
	for _, tt := range tests {
		if _, ok := c.get(tt.key); ok != tt.want {
			t.Errorf("get %s: %v, want %v", tt.key, ok, tt.want)
		}
	}
	st := c.stats()
	if st.objects != 3 || st.bytes > st.capacity || st.evictions != 1 {
		t.Errorf("stats %+v", st)
	}
	// Replacing a key does not count twice.
	c.put(key(4), obj(500))
	if st := c.stats(); st.objects != 3 || st.bytes != 2*per+obj(500).size(key(4)) {
		t.Errorf("after replace: %+v", st)
	}
	// Too big for the whole cache: refused, and the old value is dropped.
	if c.put(key(3), obj(int(4*per))) {
		t.Error("an object bigger than the cache was stored")
	}
	if _, ok := c.get(key(3)); ok {
		t.Error("the replaced key still holds its old object")
	}
	// Many small objects never exceed the bound.
	for i := 10; i < 200; i++ {
		c.put(key(i), obj(100+i))
		if st := c.stats(); st.bytes > st.capacity {
			t.Fatalf("over capacity: %+v", st)
		}
	}
	off := newCache(0)
	if off.put(key(1), obj(1)) {
		t.Error("a zero-byte cache stored an object")
	}
}

// TestFreshness is the freshness table: what is kept and for how long.
func TestFreshness(t *testing.T) {
	f := defaultFreshness()
	tests := []struct {
		path   string
		status int
		cc     string
		age    time.Duration
		ttl    time.Duration
		store  bool
	}{
		{"/live/s/v/00000001.m4s", 200, "public, max-age=31536000, immutable", 0, 0, true},
		{"/live/s/v/00000001.m4s", 200, "", 0, 0, true},
		{"/live/s/v/init.mp4", 200, "max-age=60", 0, 0, true},
		{"/live/s/v/init-00000002.mp4", 200, "", 0, 0, true},
		{"/live/s/index.m3u8", 200, "", 0, 500 * time.Millisecond, true},
		{"/live/s/index.m3u8", 200, "max-age=1", 0, time.Second, true},
		{"/live/s/index.m3u8", 200, "max-age=30", 0, time.Second, true},  // capped
		{"/live/s/index.mpd", 200, "s-maxage=0, max-age=5", 0, 0, false}, // s-maxage wins
		{"/live/s/index.mpd", 200, "max-age=5, s-maxage=1", 0, time.Second, true},
		{"/live/s/index.m3u8", 200, "max-age=3", 3 * time.Second, 0, false}, // already old
		{"/live/s/v/index.m3u8", 200, "no-cache", 0, 500 * time.Millisecond, true},
		{"/live/s/v/00000001.m4s", 200, "no-cache", 0, 500 * time.Millisecond, true},
		{"/live/s/v/index.m3u8", 200, "private, max-age=5", 0, 0, false},
		{"/live/s/v/00000001.m4s", 200, "no-store", 0, 0, false},
		{"/live/s/v/00000009.m4s", 404, "", 0, 500 * time.Millisecond, true},
		{"/live/s/v/00000009.m4s", 404, "no-cache", 0, 500 * time.Millisecond, true}, // what the origin sends
		{"/live/s/v/00000009.m4s", 404, "no-store", 0, 0, false},
		{"/live/s/index.m3u8", 410, "", 0, 500 * time.Millisecond, true},
		{"/live/s/index.mpd", 503, "", 0, 0, false},
		{"/live/s/index.m3u8", 403, "", 0, 0, false},
		{"/live/s/index.m3u8", 302, "", 0, 0, false},
		{"/live/s/v/00000001.m4s", 206, "", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d %q", tt.path, tt.status, tt.cc), func(t *testing.T) {
			ttl, store := f.ttl(tt.path, tt.status, tt.cc, tt.age)
			if store != tt.store || (store && ttl != tt.ttl) {
				t.Errorf("ttl %v store %v, want %v %v", ttl, store, tt.ttl, tt.store)
			}
		})
	}
}

// TestCacheTTLs runs the edge on an injected clock: a playlist is served
// from the cache for 0.5 s (or the origin's max-age, capped at 1 s), a
// segment until evicted, a 404 for 0.5 s.
func TestCacheTTLs(t *testing.T) {
	o := newTestOrigin(t)
	o.set("/live/s/index.m3u8", testFile{body: []byte("#EXTM3U\n"), ctype: "application/vnd.apple.mpegurl"})
	o.set("/live/s/v/index.m3u8", testFile{body: []byte("#EXTM3U\n#media\n"), ctype: "application/vnd.apple.mpegurl", cache: "max-age=30"})
	o.set("/live/s/v/00000001.m4s", testFile{body: segment(1, 5000), ctype: "video/iso.segment", cache: "public, max-age=31536000, immutable"})
	clk := newFakeClock()
	_, base, _ := startEdge(t, []string{o.url()}, nil, func(e *Edge) { e.now = clk.Now })
	c := newClient(t)

	type step struct {
		advance  time.Duration
		path     string
		wantCode int
		wantHits int // origin requests for path so far
	}
	steps := []step{
		{0, "/live/s/index.m3u8", 200, 1},
		{400 * time.Millisecond, "/live/s/index.m3u8", 200, 1},
		{200 * time.Millisecond, "/live/s/index.m3u8", 200, 2}, // 0.6 s: stale
		{0, "/live/s/v/index.m3u8", 200, 1},
		{900 * time.Millisecond, "/live/s/v/index.m3u8", 200, 1},
		{200 * time.Millisecond, "/live/s/v/index.m3u8", 200, 2}, // max-age=30 capped at 1 s
		{0, "/live/s/v/00000001.m4s", 200, 1},
		{24 * time.Hour, "/live/s/v/00000001.m4s", 200, 1}, // immutable
		{0, "/live/s/v/00000002.m4s", 404, 1},
		{300 * time.Millisecond, "/live/s/v/00000002.m4s", 404, 1}, // negative cache
		{300 * time.Millisecond, "/live/s/v/00000002.m4s", 404, 2},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		resp, _ := fetch(t, c, "GET", base+st.path)
		if resp.StatusCode != st.wantCode || o.hitsOf(st.path) != st.wantHits {
			t.Fatalf("step %d %s: code %d, origin hits %d; want %d, %d", i, st.path, resp.StatusCode, o.hitsOf(st.path), st.wantCode, st.wantHits)
		}
	}
	// The 404 is cached, so the segment appearing shows after 0.5 s.
	o.set("/live/s/v/00000002.m4s", testFile{body: segment(2, 100), ctype: "video/iso.segment"})
	if resp, _ := fetch(t, c, "GET", base+"/live/s/v/00000002.m4s"); resp.StatusCode != 404 {
		t.Fatalf("within the negative TTL: %d", resp.StatusCode)
	}
	clk.Advance(600 * time.Millisecond)
	if resp, body := fetch(t, c, "GET", base+"/live/s/v/00000002.m4s"); resp.StatusCode != 200 || !bytes.Equal(body, segment(2, 100)) {
		t.Fatalf("after the negative TTL: %d", resp.StatusCode)
	}
	// Age counts the seconds an object spent in the cache.
	clk.Advance(3 * time.Second)
	if resp, _ := fetch(t, c, "GET", base+"/live/s/v/00000001.m4s"); resp.Header.Get("Age") == "" || resp.Header.Get("Age") == "0" {
		t.Errorf("Age %q after a day in the cache", resp.Header.Get("Age"))
	}
}

// TestCoalescing sends 100 concurrent viewers for one segment and one
// playlist while the origin holds its answer: the origin sees one request
// for each, with the cache on or off.
func TestCoalescing(t *testing.T) {
	for _, cacheBytes := range []config.ByteSize{64 * config.MiB, 0} {
		t.Run(fmt.Sprintf("cache %v", cacheBytes), func(t *testing.T) { testCoalescing(t, cacheBytes) })
	}
}

func testCoalescing(t *testing.T, cacheBytes config.ByteSize) {
	o := newTestOrigin(t)
	seg := segment(7, 300_000)
	o.set("/live/s/v/00000007.m4s", testFile{body: seg, ctype: "video/iso.segment"})
	o.set("/live/s/v/index.m3u8", testFile{body: []byte("#EXTM3U\n"), ctype: "application/vnd.apple.mpegurl", cache: "max-age=1"})
	gate := make(chan struct{})
	o.mu.Lock()
	o.gate = gate
	o.mu.Unlock()
	e, base, _ := startEdge(t, []string{o.url()}, func(c *config.Config) { c.Edge.CacheBytes = cacheBytes }, nil)
	c := newClient(t)

	const viewers = 100
	paths := []string{"/live/s/v/00000007.m4s", "/live/s/v/index.m3u8"}
	var wg sync.WaitGroup
	errs := make(chan error, viewers*len(paths))
	for i := 0; i < viewers; i++ {
		for _, p := range paths {
			wg.Go(func() {
				resp, err := c.Get(base + p)
				if err != nil {
					errs <- err
					return
				}
				defer resp.Body.Close()
				var buf bytes.Buffer
				if _, err := buf.ReadFrom(resp.Body); err != nil {
					errs <- err
					return
				}
				if resp.StatusCode != 200 || (p == paths[0] && !bytes.Equal(buf.Bytes(), seg)) {
					errs <- fmt.Errorf("%s: status %d, %d bytes", p, resp.StatusCode, buf.Len())
				}
			})
		}
	}
	// Every viewer but the two leaders is waiting on a fetch: let the
	// origin answer.
	waitFor(t, "all viewers to wait on the two fetches", 30*time.Second, func() bool {
		return e.relay.flight.waiting.Load() == int64(viewers*len(paths)-len(paths))
	})
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, p := range paths {
		if n := o.hitsOf(p); n != 1 {
			t.Errorf("origin saw %d requests for %s, want 1", n, p)
		}
	}
	st := e.relay.stats()
	if st.misses != 2 || st.coalesced != viewers*2-2 {
		t.Errorf("relay stats %+v", st)
	}
	// Afterwards the segment comes from the cache, if there is one.
	fetch(t, c, "GET", base+paths[0])
	want := 1
	if cacheBytes == 0 {
		want = 2
	}
	if n := o.hitsOf(paths[0]); n != want {
		t.Errorf("origin saw %d requests for the segment after the burst, want %d", n, want)
	}
}

// TestOversizeObject streams a segment bigger than the largest cached
// object through to each viewer, with and without Content-Length, and
// keeps none of it.
func TestOversizeObject(t *testing.T) {
	o := newTestOrigin(t)
	big := segment(3, 64<<10)
	o.set("/live/s/v/00000003.m4s", testFile{body: big, ctype: "video/iso.segment"})
	o.set("/live/s/v/00000004.m4s", testFile{body: big, ctype: "video/iso.segment", chunked: true})
	o.set("/live/s/v/00000005.m4s", testFile{body: segment(5, 1000), ctype: "video/iso.segment"})
	e, base, _ := startEdge(t, []string{o.url()}, nil, func(e *Edge) { e.tune.maxObject = 16 << 10 })
	c := newClient(t)
	for _, p := range []string{"/live/s/v/00000003.m4s", "/live/s/v/00000004.m4s"} {
		for i := 1; i <= 2; i++ {
			resp, body := fetch(t, c, "GET", base+p)
			if resp.StatusCode != 200 || !bytes.Equal(body, big) || resp.Header.Get("Content-Type") != "video/iso.segment" {
				t.Fatalf("%s: %d, %d bytes, %q", p, resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
			}
			if o.hitsOf(p) != i {
				t.Errorf("%s fetch %d: origin hits %d (an oversize object was cached)", p, i, o.hitsOf(p))
			}
		}
	}
	if resp, _ := fetch(t, c, "GET", base+"/live/s/v/00000003.m4s"); resp.ContentLength != int64(len(big)) {
		t.Errorf("Content-Length %d of a streamed object", resp.ContentLength)
	}
	// A small one still caches.
	fetch(t, c, "GET", base+"/live/s/v/00000005.m4s")
	fetch(t, c, "GET", base+"/live/s/v/00000005.m4s")
	if o.hitsOf("/live/s/v/00000005.m4s") != 1 {
		t.Errorf("small object fetched %d times", o.hitsOf("/live/s/v/00000005.m4s"))
	}
	if st := e.relay.stats(); st.passes != 5 || st.hits != 1 {
		t.Errorf("relay stats %+v", st)
	}
	if st := e.relay.cache.stats(); st.objects != 1 {
		t.Errorf("cache holds %d objects, want 1", st.objects)
	}
}
