package flvrelay

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/hub"
	"github.com/livegrid/livegrid/internal/testmedia"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// leakCheck verifies, after every other cleanup of the test, that no
// goroutine is left. Call it first.
func leakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// logBuffer collects a test's logs; they are printed if the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	logs := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("FLVRELAY_TEST_LOGS") != "" {
			t.Logf("logs:\n%s", logs)
		}
	})
	return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clip is the test source as FLV tags: 10 s of 320x180 H.264 at 25 fps
// with a keyframe every second, and AAC; made by ffmpeg once.
type clip struct {
	path string
	tags []flv.Tag // onMetaData, the sequence headers, then frames
	dur  uint32    // ms, to where a loop of it starts over
}

var (
	clipOnce sync.Once
	clipMade clip
	clipErr  error
)

func testClip(t *testing.T) clip {
	t.Helper()
	testmedia.Require(t, "ffmpeg", "ffprobe")
	path := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, FPS: 25, GOP: 25, Seconds: 10, Format: "flv"})
	clipOnce.Do(func() { clipMade, clipErr = readClip(path) })
	if clipErr != nil {
		t.Fatal(clipErr)
	}
	return clipMade
}

func readClip(path string) (clip, error) {
	f, err := os.Open(path)
	if err != nil {
		return clip{}, err
	}
	defer f.Close()
	r := flv.NewReader(bufio.NewReader(f))
	c := clip{path: path}
	for {
		tag, err := r.ReadTag()
		if err == io.EOF {
			break
		}
		if err != nil {
			return clip{}, fmt.Errorf("read %s: %w", path, err)
		}
		c.tags = append(c.tags, tag)
	}
	if len(c.tags) < 100 || !isMetadata(c.tags[0]) {
		return clip{}, fmt.Errorf("%s: %d tags, first %v: not the clip expected", path, len(c.tags), c.tags[0].Type)
	}
	c.dur = c.tags[len(c.tags)-1].Timestamp + 40
	return c, nil
}

// source plays the clip in a loop at real time, like a broadcaster, into
// the hubs of any number of origins.
type source struct {
	clip clip
	outs []sourceOut
}

type sourceOut struct {
	stream *hub.Stream
	meta   flv.Tag // the clip's onMetaData with a "server" of its origin
}

// start feeds the outs until the test ends.
func (s *source) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func (s *source) run(ctx context.Context) {
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for loop := uint32(0); ; loop++ {
		for _, tag := range s.clip.tags {
			if loop > 0 && kindOf(tag) == kindHeader {
				continue
			}
			tag.Timestamp += loop * s.clip.dur
			if wait := time.Until(start.Add(time.Duration(tag.Timestamp) * time.Millisecond)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
			} else if ctx.Err() != nil {
				return
			}
			for _, o := range s.outs {
				out := tag
				if isMetadata(tag) {
					out.Data = o.meta.Data
				}
				_ = o.stream.WriteTag(out) // an origin may be gone
			}
		}
	}
}

// origin is a test origin: a hub fed by the source, served by
// hub.FLVHandler as the coordinator serves it.
type origin struct {
	name   string
	hub    *hub.Hub
	stream *hub.Stream
	srv    *httptest.Server

	mu       sync.Mutex
	requests []string // paths with their queries
}

// startOrigin starts an origin of stream name fed by src.
func startOrigin(t *testing.T, name, stream string, src *source) *origin {
	t.Helper()
	o := &origin{name: name, hub: hub.New(hub.Config{})}
	if src != nil {
		st, err := o.hub.Publish(stream, hub.Publisher{RemoteAddr: "192.0.2.1:1935"})
		if err != nil {
			t.Fatal(err)
		}
		o.stream = st
		props, err := flv.ParseMetadata(src.clip.tags[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		props["server"] = name
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var arr flv.ECMAArray
		for _, k := range keys {
			arr = append(arr, flv.Property{Key: k, Value: props[k]})
		}
		body, err := flv.EncodeMetadata(arr)
		if err != nil {
			t.Fatal(err)
		}
		src.outs = append(src.outs, sourceOut{stream: st, meta: flv.Tag{Type: flv.TagScript, Data: body}})
	}
	flvH := &hub.FLVHandler{Hub: o.hub}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.requests = append(o.requests, r.URL.RequestURI())
		o.mu.Unlock()
		flvH.ServeHTTP(w, r)
	}))
	t.Cleanup(o.kill)
	return o
}

// startHandlerOrigin starts an origin served by h.
func startHandlerOrigin(t *testing.T, name string, h http.HandlerFunc) *origin {
	t.Helper()
	o := &origin{name: name, hub: hub.New(hub.Config{})}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.requests = append(o.requests, r.URL.RequestURI())
		o.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(o.kill)
	return o
}

// kill stops the origin as a crash would: nothing listening, connections
// cut. The listener goes first, or a relay reconnecting at once would get
// a connection that Close then waits for.
func (o *origin) kill() {
	_ = o.srv.Listener.Close()
	o.srv.CloseClientConnections()
	o.hub.Close()
	o.srv.Close()
}

func (o *origin) url() string { return o.srv.URL }

func (o *origin) requestList() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.requests)
}

// edge is a relay behind an HTTP server on loopback.
type edge struct {
	relay *Relay
	srv   *httptest.Server
}

func startEdge(t *testing.T, cfg Config, wrap func(net.Listener) net.Listener) *edge {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &edge{relay: r, srv: httptest.NewUnstartedServer(r)}
	if wrap != nil {
		e.srv.Listener = wrap(e.srv.Listener)
	}
	e.srv.Start()
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("relay close: %v", err)
		}
		e.srv.Close()
	})
	return e
}

func (e *edge) flvURL(path string) string { return e.srv.URL + "/live/" + path + ".flv" }

// seen is one tag a viewer received.
type seen struct {
	label  string // meta, avc-hdr, aac-hdr, key, video, audio, script
	ts     uint32
	at     time.Time
	server string // the "server" of an onMetaData
}

func kindOf(tag flv.Tag) tagKind {
	k, _ := classify(tag)
	return k
}

func describe(tag flv.Tag) seen {
	s := seen{ts: tag.Timestamp, at: time.Now()}
	switch k := kindOf(tag); {
	case tag.Type == flv.TagScript:
		s.label = "script"
		if props, err := flv.ParseMetadata(tag.Data); err == nil {
			s.label = "meta"
			s.server, _ = props["server"].(string)
		}
	case k == kindHeader && tag.Type == flv.TagVideo:
		s.label = "avc-hdr"
	case k == kindHeader:
		s.label = "aac-hdr"
	case k == kindKeyframe:
		s.label = "key"
	case tag.Type == flv.TagVideo:
		s.label = "video"
	default:
		s.label = "audio"
	}
	return s
}

// viewer reads an HTTP-FLV stream in its own goroutine and records what
// it gets.
type viewer struct {
	cancel context.CancelFunc
	done   chan struct{}
	start  time.Time

	mu     sync.Mutex
	status int
	header flv.Header
	tags   []seen
	raw    bytes.Buffer // the bytes received, if captured
	whole  int64        // raw's length up to the end of the last whole tag
	err    error        // why it stopped: nil for a clean end
}

// watch starts a viewer of url; the test's cleanup stops it.
func watch(t *testing.T, client *http.Client, url string, capture bool) *viewer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	v := &viewer{cancel: cancel, done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(v.done)
		err := v.read(ctx, client, url, capture)
		v.mu.Lock()
		v.err = err
		v.mu.Unlock()
	}()
	t.Cleanup(v.stop)
	return v
}

func (v *viewer) stop() {
	v.cancel()
	<-v.done
}

func (v *viewer) read(ctx context.Context, client *http.Client, url string, capture bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	v.mu.Lock()
	v.status = resp.StatusCode
	v.mu.Unlock()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	var body io.Reader = resp.Body
	if capture {
		body = io.TeeReader(body, lockedWriter{v})
	}
	r := flv.NewReader(bufio.NewReader(body))
	h, err := r.Header()
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.header = h
	v.mu.Unlock()
	for {
		tag, err := r.ReadTag()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		s := describe(tag)
		v.mu.Lock()
		v.tags = append(v.tags, s)
		v.whole = r.Offset()
		v.mu.Unlock()
	}
}

type lockedWriter struct{ v *viewer }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.v.mu.Lock()
	defer w.v.mu.Unlock()
	return w.v.raw.Write(p)
}

func (v *viewer) snapshot() (status int, tags []seen, err error, ended bool) {
	select {
	case <-v.done:
		ended = true
	default:
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.status, slices.Clone(v.tags), v.err, ended
}

// capture returns the bytes received up to the end of the last whole
// tag, as a file.
func (v *viewer) capture(t *testing.T) string {
	t.Helper()
	v.mu.Lock()
	b := bytes.Clone(v.raw.Bytes()[:v.whole])
	v.mu.Unlock()
	path := filepath.Join(captureDir(t), "viewer.flv")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// captureDir is where a test writes a viewer's capture: a temporary
// folder, or FLVRELAY_CAPTURES to keep them.
func captureDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FLVRELAY_CAPTURES")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (v *viewer) seenTags() []seen {
	_, tags, _, _ := v.snapshot()
	return tags
}

// frames counts the audio and video frames received.
func frames(tags []seen) int {
	n := 0
	for _, s := range tags {
		switch s.label {
		case "key", "video", "audio":
			n++
		}
	}
	return n
}

// span is how much stream time the viewer's frames cover.
func span(tags []seen) time.Duration {
	var first, last uint32
	have := false
	for _, s := range tags {
		if s.label == "key" || s.label == "video" {
			if !have {
				first, have = s.ts, true
			}
			last = s.ts
		}
	}
	return time.Duration(last-first) * time.Millisecond
}

// checkMonotonic fails if the timestamps ever go back.
func checkMonotonic(t *testing.T, what string, tags []seen) {
	t.Helper()
	for i := 1; i < len(tags); i++ {
		if tags[i].ts < tags[i-1].ts {
			t.Errorf("%s: timestamp goes back from %d (%s) to %d (%s) at tag %d", what, tags[i-1].ts, tags[i-1].label, tags[i].ts, tags[i].label, i)
			return
		}
	}
}

func labels(tags []seen, n int) []string {
	var out []string
	for _, s := range tags[:min(n, len(tags))] {
		out = append(out, s.label)
	}
	return out
}

// fakeClock runs timers only when the test advances it, in the test's
// goroutine.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c            *fakeClock
	at           time.Time
	f            func()
	stopped, ran bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.stopped || t.ran {
		return false
	}
	t.stopped = true
	return true
}

// advance moves the clock and runs the timers that are due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due, keep []*fakeTimer
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.ran = true
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

// refs returns how many viewers hold the stream of an upstream path, or
// -1 when the relay has no pull for it.
func (r *Relay) refsOf(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pulls[path]
	if p == nil {
		return -1
	}
	return p.refs
}
