package edge

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/internal/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testWriter sends a component's log to the test log, so a failure shows it.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// fakeClock is an injected clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testFile is what a testOrigin answers for one path.
type testFile struct {
	status int // default 200
	body   []byte
	ctype  string
	cache  string // Cache-Control
	// chunked leaves Content-Length out (the body is flushed in two parts).
	chunked bool
}

// testOrigin is an origin on a real loopback listener that serves files
// from a map and counts the requests for each path. It can be stopped and
// started again on the same address.
type testOrigin struct {
	t    testing.TB
	addr string

	mu     sync.Mutex
	srv    *httptest.Server
	files  map[string]testFile
	hits   map[string]int
	status int           // when set, every /live/ request gets it
	delay  time.Duration // before answering /live/
	gate   chan struct{} // when set, /live/ requests wait for it to close
	check  func(r *http.Request)
}

func newTestOrigin(t testing.TB) *testOrigin {
	t.Helper()
	o := &testOrigin{t: t, files: map[string]testFile{}, hits: map[string]int{}}
	o.start("127.0.0.1:0")
	t.Cleanup(o.stop)
	return o
}

// url is the origin's base URL.
func (o *testOrigin) url() string { return "http://" + o.addr }

func (o *testOrigin) start(addr string) {
	o.t.Helper()
	var ln net.Listener
	var err error
	// A port just closed can take a moment to be free again.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		o.t.Fatalf("origin listen %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(o.serve))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	o.mu.Lock()
	o.srv, o.addr = srv, ln.Addr().String()
	o.mu.Unlock()
}

// stop closes the origin: its port refuses connections until start.
func (o *testOrigin) stop() {
	o.mu.Lock()
	srv := o.srv
	o.srv = nil
	if o.gate != nil {
		select {
		case <-o.gate:
		default:
			close(o.gate)
		}
	}
	o.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

func (o *testOrigin) set(path string, f testFile) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.files[path] = f
}

func (o *testOrigin) hitsOf(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

func (o *testOrigin) totalHits() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, v := range o.hits {
		n += v
	}
	return n
}

func (o *testOrigin) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	o.mu.Lock()
	o.hits[r.URL.Path]++
	f, ok := o.files[r.URL.Path]
	status, delay, gate, check := o.status, o.delay, o.gate, o.check
	o.mu.Unlock()
	if check != nil {
		check(r)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	if !ok {
		w.Header().Set("Cache-Control", "no-cache")
		http.NotFound(w, r)
		return
	}
	if f.ctype != "" {
		w.Header().Set("Content-Type", f.ctype)
	}
	if f.cache != "" {
		w.Header().Set("Cache-Control", f.cache)
	}
	if !f.chunked {
		w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
	}
	w.WriteHeader(cmpStatus(f.status))
	if f.chunked {
		half := len(f.body) / 2
		_, _ = w.Write(f.body[:half])
		w.(http.Flusher).Flush()
		_, _ = w.Write(f.body[half:])
		return
	}
	_, _ = w.Write(f.body)
}

func cmpStatus(s int) int {
	if s == 0 {
		return http.StatusOK
	}
	return s
}

// startEdge runs an edge in front of origins; cfgFn adjusts the config
// before New, edgeFn the edge (hooks, clock, tuning) before Run. The edge
// stops when the test ends; stop stops it sooner.
func startEdge(t testing.TB, origins []string, cfgFn func(*config.Config), edgeFn func(*Edge)) (e *Edge, base string, stop func()) {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.RTMP.Addr = "127.0.0.1:0"
	cfg.Edge.Origins = origins
	cfg.Edge.CacheBytes = 64 * config.MiB
	cfg.Edge.OriginTimeout = 2 * time.Second
	if cfgFn != nil {
		cfgFn(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	e.tune.probeInterval = 50 * time.Millisecond
	e.tune.holdDown = 100 * time.Millisecond
	if edgeFn != nil {
		edgeFn(e)
	}
	base, stop = runEdge(t, e)
	return e, base, stop
}

// runEdge runs e until the test ends or stop; it returns once e is ready.
func runEdge(t testing.TB, e *Edge) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("edge did not stop in 30 s")
		}
	})
	t.Cleanup(stop)
	select {
	case <-e.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("edge not ready in 10 s")
	}
	scheme := "http://"
	if e.cfg.HTTP.TLSCert != "" {
		scheme = "https://"
	}
	return scheme + e.Addr().String(), stop
}

// newClient is a viewer's HTTP client; its connections close when the
// test ends.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 200, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// fetch GETs (or HEADs, ...) url with optional headers and returns the
// response with its body read.
func fetch(t testing.TB, c *http.Client, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, body
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// segment returns a deterministic fake media segment of n bytes.
func segment(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*31 + i*7)
	}
	return b
}
