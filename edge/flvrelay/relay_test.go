package flvrelay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/hub"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// wantStart is how every viewer's stream starts after the FLV header.
var wantStart = []string{"meta", "avc-hdr", "aac-hdr", "key"}

// liveOrigins starts a source and origins of stream "cam" fed by it.
func liveOrigins(t *testing.T, names ...string) []*origin {
	t.Helper()
	src := &source{clip: testClip(t)}
	var origins []*origin
	for _, name := range names {
		origins = append(origins, startOrigin(t, name, "cam", src))
	}
	src.start(t)
	return origins
}

// TestFanOutOneUpstream has 50 viewers join at once: the origin sees one
// request, every viewer gets the headers and then a keyframe, and
// ffprobe reads what one of them captured.
func TestFanOutOneUpstream(t *testing.T) {
	leakCheck(t)
	o := liveOrigins(t, "origin-1")[0]
	var (
		mu      sync.Mutex
		started []string
		ended   []int64
	)
	e := startEdge(t, Config{
		Origins: []string{o.url()},
		OnViewer: func(stream, protocol, _ string) func(int64) {
			mu.Lock()
			started = append(started, stream+" "+protocol)
			mu.Unlock()
			return func(n int64) {
				mu.Lock()
				ended = append(ended, n)
				mu.Unlock()
			}
		},
	}, nil)

	const n = 50
	client := e.srv.Client()
	viewers := make([]*viewer, n)
	for i := range viewers {
		// The viewer's token is for the edge; it must not go upstream.
		viewers[i] = watch(t, client, e.flvURL("cam")+"?token=secret", i == 0)
	}
	waitFor(t, 20*time.Second, func() bool {
		for _, v := range viewers {
			if span(v.seenTags()) < 2*time.Second {
				return false
			}
		}
		return true
	}, "every viewer to get 2 s of video")

	if got, want := o.requestList(), []string{"/live/cam.flv"}; !slices.Equal(got, want) {
		t.Errorf("origin requests %q, want %q", got, want)
	}
	m := e.relay.Metrics()
	if m.Viewers != n || m.Upstreams != 1 || m.Streams != 1 || m.UpstreamRequests != 1 || m.BytesIn == 0 {
		t.Errorf("metrics %+v, want %d viewers on one upstream", m, n)
	}
	for i, v := range viewers {
		status, tags, err, ended := v.snapshot()
		if status != http.StatusOK || err != nil || ended {
			t.Fatalf("viewer %d: status %d, err %v, ended %v", i, status, err, ended)
		}
		if got := labels(tags, len(wantStart)); !slices.Equal(got, wantStart) {
			t.Errorf("viewer %d starts with %q, want %q", i, got, wantStart)
		}
		if !v.header.Audio || !v.header.Video {
			t.Errorf("viewer %d: FLV header %+v", i, v.header)
		}
		checkMonotonic(t, "viewer", tags)
	}

	// One viewer's capture is a stream ffprobe can read.
	viewers[0].stop()
	path := viewers[0].capture(t)
	var codecs []string
	for _, s := range testmedia.Streams(t, path) {
		codecs = append(codecs, s.CodecName)
		if s.CodecType == "video" && (s.Width != 320 || s.Height != 180) {
			t.Errorf("video %dx%d, want 320x180", s.Width, s.Height)
		}
	}
	slices.Sort(codecs)
	if !slices.Equal(codecs, []string{"aac", "h264"}) {
		t.Errorf("ffprobe finds %q, want aac and h264", codecs)
	}
	fs := testmedia.Frames(t, path, "v:0")
	if len(fs) < 50 || !fs[0].Key {
		t.Errorf("ffprobe decodes %d video frames (first key: %v), want 2 s from a keyframe", len(fs), len(fs) > 0 && fs[0].Key)
	}

	for _, v := range viewers {
		v.stop()
	}
	waitFor(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ended) == n
	}, "every viewer's done callback")
	mu.Lock()
	if len(started) != n || started[0] != "cam flv" {
		t.Errorf("OnViewer calls %d, first %q; want %d of \"cam flv\"", len(started), started[0], n)
	}
	for _, b := range ended {
		if b < 10_000 {
			t.Errorf("a viewer's done callback says %d bytes", b)
			break
		}
	}
	mu.Unlock()
	if m := e.relay.Metrics(); m.Viewers != 0 || m.BytesOut < n*10_000 {
		t.Errorf("after the viewers left: %+v", m)
	}
}

// TestViewerRequests covers the answers that are not a stream, and an
// origin list where only a later origin has the stream.
func TestViewerRequests(t *testing.T) {
	empty := func(t *testing.T) string { return startOrigin(t, "empty", "cam", nil).url() }
	down := func(t *testing.T) string {
		o := startOrigin(t, "down", "cam", nil)
		o.kill()
		return o.url()
	}
	failing := func(t *testing.T) string {
		return startHandlerOrigin(t, "failing", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		}).url()
	}
	junk := func(t *testing.T) string {
		return startHandlerOrigin(t, "junk", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("<html>not flv</html>"))
		}).url()
	}
	live := func(t *testing.T) string { return liveOrigins(t, "live")[0].url() }

	tests := []struct {
		name    string
		origins []func(*testing.T) string
		method  string
		path    string
		want    int
	}{
		{"no origin has the stream", []func(*testing.T) string{empty, empty}, "GET", "/live/cam.flv", http.StatusNotFound},
		{"rendition no origin has", []func(*testing.T) string{empty}, "GET", "/live/cam/720p.flv", http.StatusNotFound},
		{"first origin down, second lacks it", []func(*testing.T) string{down, empty}, "GET", "/live/cam.flv", http.StatusNotFound},
		{"every origin down", []func(*testing.T) string{down, down}, "GET", "/live/cam.flv", http.StatusBadGateway},
		{"origin errors and junk", []func(*testing.T) string{failing, junk}, "GET", "/live/cam.flv", http.StatusBadGateway},
		{"only the third origin has it", []func(*testing.T) string{down, empty, live}, "GET", "/live/cam.flv", http.StatusOK},
		{"HEAD of a live stream", []func(*testing.T) string{live}, "HEAD", "/live/cam.flv", http.StatusOK},
		{"HEAD of a missing stream", []func(*testing.T) string{empty}, "HEAD", "/live/cam.flv", http.StatusNotFound},
		{"not an FLV path", []func(*testing.T) string{empty}, "GET", "/live/cam/index.m3u8", http.StatusNotFound},
		{"bad name", []func(*testing.T) string{empty}, "GET", "/live/a/b/c.flv", http.StatusNotFound},
		{"POST", []func(*testing.T) string{empty}, "POST", "/live/cam.flv", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			var urls []string
			for _, f := range tt.origins {
				urls = append(urls, f(t))
			}
			e := startEdge(t, Config{Origins: urls, RetryDelay: 50 * time.Millisecond}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, tt.method, e.srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want != http.StatusOK || tt.method != "GET" {
				return
			}
			r := flv.NewReader(resp.Body)
			for {
				tag, err := r.ReadTag()
				if err != nil {
					t.Fatalf("read the stream: %v", err)
				}
				if describe(tag).label == "key" {
					break
				}
			}
		})
	}
}

// TestFailover cuts the first origin off mid-stream: viewers stay
// connected and get a keyframe from the second origin within 3 s, on a
// timeline that never goes back, and the capture still decodes.
func TestFailover(t *testing.T) {
	tests := []struct {
		name string
		fail func(*origin)
	}{
		{"origin killed", (*origin).kill},
		{"stream ended at the origin", func(o *origin) { _ = o.stream.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			origins := liveOrigins(t, "origin-1", "origin-2")
			o1, o2 := origins[0], origins[1]
			e := startEdge(t, Config{Origins: []string{o1.url(), o2.url()}}, nil)
			viewers := make([]*viewer, 3)
			for i := range viewers {
				viewers[i] = watch(t, e.srv.Client(), e.flvURL("cam"), i == 0)
			}
			waitFor(t, 15*time.Second, func() bool {
				for _, v := range viewers {
					if span(v.seenTags()) < 1500*time.Millisecond {
						return false
					}
				}
				return true
			}, "1.5 s of video from origin-1")

			failed := time.Now()
			tt.fail(o1)
			resumed := make([]int, len(viewers)) // index of origin-2's metadata
			for i, v := range viewers {
				waitFor(t, 10*time.Second, func() bool {
					tags := v.seenTags()
					for j, s := range tags {
						if s.server == "origin-2" {
							resumed[i] = j
							return slices.ContainsFunc(tags[j:], func(s seen) bool { return s.label == "key" })
						}
					}
					return false
				}, "a keyframe from origin-2")
			}
			for i, v := range viewers {
				tags := v.seenTags()
				key := tags[resumed[i]+slices.IndexFunc(tags[resumed[i]:], func(s seen) bool { return s.label == "key" })]
				if took := key.at.Sub(failed); took >= 3*time.Second {
					t.Errorf("viewer %d got origin-2's keyframe %v after the failure, want < 3 s", i, took)
				} else if i == 0 {
					t.Logf("viewer resumed %v after the failure", took.Round(time.Millisecond))
				}
				if got := labels(tags[resumed[i]:], len(wantStart)); !slices.Equal(got, wantStart) {
					t.Errorf("viewer %d resumes with %q, want %q", i, got, wantStart)
				}
			}
			// A little more after the resume, then check every viewer.
			cut := len(viewers[0].seenTags())
			waitFor(t, 10*time.Second, func() bool { return span(viewers[0].seenTags()[cut:]) >= time.Second }, "1 s more")
			for i, v := range viewers {
				status, tags, err, ended := v.snapshot()
				if status != http.StatusOK || err != nil || ended {
					t.Fatalf("viewer %d: status %d, err %v, ended %v", i, status, err, ended)
				}
				if n := strings.Count(strings.Join(labels(tags, len(tags)), " "), "meta"); n != 2 {
					t.Errorf("viewer %d got %d onMetaData tags, want 2", i, n)
				}
				checkMonotonic(t, "viewer", tags)
			}
			m := e.relay.Metrics()
			if m.Reconnects < 1 || m.OriginFailures[o1.url()] < 1 || m.OriginFailures[o2.url()] != 0 || m.Upstreams != 1 {
				t.Errorf("metrics %+v", m)
			}
			if got := o2.requestList(); len(got) != 1 {
				t.Errorf("origin-2 requests %q, want one", got)
			}

			// The capture across the failover decodes without a complaint
			// about timestamps.
			viewers[0].stop()
			path := viewers[0].capture(t)
			out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "warning", "-i", path, "-f", "null", "-").CombinedOutput()
			if err != nil {
				t.Fatalf("ffmpeg decode of the capture: %v\n%s", err, out)
			}
			if s := string(out); strings.Contains(s, "monoton") || strings.Contains(s, "Invalid") {
				t.Errorf("ffmpeg decode of the capture complains:\n%s", s)
			}
			if fs := testmedia.Frames(t, path, "v:0"); len(fs) < 60 {
				t.Errorf("ffprobe decodes %d video frames from the capture", len(fs))
			}
		})
	}
}

// TestIdleOriginFailover has the first origin send the headers and then
// nothing: the relay gives up on it after IdleTimeout and the viewer gets
// the second origin's stream.
func TestIdleOriginFailover(t *testing.T) {
	leakCheck(t)
	c := testClip(t)
	stuck := startHandlerOrigin(t, "stuck", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/x-flv")
		fw, err := flv.NewWriter(w, flv.Header{Audio: true, Video: true})
		if err != nil {
			return
		}
		for _, tag := range c.tags[:3] { // onMetaData, the sequence headers
			_ = fw.WriteTag(tag)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	o2 := liveOrigins(t, "origin-2")[0]
	const idle = time.Second
	e := startEdge(t, Config{Origins: []string{stuck.url(), o2.url()}, IdleTimeout: idle}, nil)

	v := watch(t, e.srv.Client(), e.flvURL("cam"), false)
	var key seen
	waitFor(t, 10*time.Second, func() bool {
		tags := v.seenTags()
		i := slices.IndexFunc(tags, func(s seen) bool { return s.server == "origin-2" })
		if i < 0 {
			return false
		}
		j := slices.IndexFunc(tags[i:], func(s seen) bool { return s.label == "key" })
		if j < 0 {
			return false
		}
		key = tags[i+j]
		return true
	}, "a keyframe from origin-2")
	took := key.at.Sub(v.start)
	t.Logf("keyframe after %v with IdleTimeout %v", took.Round(time.Millisecond), idle)
	if took < idle || took >= idle+3*time.Second {
		t.Errorf("keyframe after %v, want between IdleTimeout %v and 3 s after it", took, idle)
	}
	want := []string{"meta", "avc-hdr", "aac-hdr", "meta", "avc-hdr", "aac-hdr", "key"}
	if got := labels(v.seenTags(), len(want)); !slices.Equal(got, want) {
		t.Errorf("viewer got %q, want %q", got, want)
	}
	checkMonotonic(t, "viewer", v.seenTags())
	if m := e.relay.Metrics(); m.OriginFailures[stuck.url()] != 1 || m.OriginFailures[o2.url()] != 0 {
		t.Errorf("origin failures %v", m.OriginFailures)
	}
	if got := stuck.requestList(); len(got) != 1 {
		t.Errorf("stuck origin requests %q, want one", got)
	}
}

// smallBuffers shrinks accepted sockets' send buffers, so a viewer that
// stops reading blocks the relay's writes soon.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestSlowViewerDropped has one viewer never read: the hub's bounded
// queue skips it ahead and drops it, the relay closes its connection (at
// the latest once its blocked write times out), and the other viewers
// keep getting the stream at the live rate throughout.
func TestSlowViewerDropped(t *testing.T) {
	leakCheck(t)
	o := liveOrigins(t, "origin-1")[0]
	h := hub.New(hub.Config{ReaderMaxTags: 32})
	t.Cleanup(h.Close)
	const writeTimeout = 4 * time.Second
	e := startEdge(t, Config{Origins: []string{o.url()}, Hub: h, WriteTimeout: writeTimeout},
		func(l net.Listener) net.Listener { return smallBuffers{l} })
	fast := []*viewer{watch(t, e.srv.Client(), e.flvURL("cam"), false), watch(t, e.srv.Client(), e.flvURL("cam"), false)}
	waitFor(t, 15*time.Second, func() bool { return span(fast[0].seenTags()) > 500*time.Millisecond }, "the stream live")
	s, ok := h.Lookup("cam")
	if !ok {
		t.Fatal("the relay's hub has no stream cam")
	}

	slow, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_ = slow.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := slow.Write([]byte("GET /live/cam.flv HTTP/1.1\r\nHost: edge\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	joined := time.Now()
	waitFor(t, 5*time.Second, func() bool { return s.Stats().Readers == 3 }, "the slow viewer")
	waitFor(t, 15*time.Second, func() bool { return s.Stats().Readers == 2 }, "the hub to drop the slow viewer")
	if st := s.Stats(); st.DroppedReaders != 1 || st.ReaderSkips == 0 {
		t.Errorf("hub dropped %d readers after %d skips, want the slow one dropped after skipping", st.DroppedReaders, st.ReaderSkips)
	}
	t.Logf("hub dropped the slow viewer %v after it joined", time.Since(joined).Round(time.Millisecond))
	// The relay closes the slow viewer's connection once its blocked
	// write times out.
	_ = slow.SetReadDeadline(time.Now().Add(writeTimeout + 10*time.Second))
	if _, err := io.Copy(io.Discard, slow); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the slow viewer's connection is still open")
	}
	waitFor(t, 5*time.Second, func() bool { return e.relay.Metrics().DroppedViewers == 1 }, "the relay to count the dropped viewer")
	time.Sleep(500 * time.Millisecond)

	for i, v := range fast {
		status, tags, err, ended := v.snapshot()
		if status != http.StatusOK || err != nil || ended {
			t.Fatalf("fast viewer %d: status %d, err %v, ended %v", i, status, err, ended)
		}
		// Every tag since the slow viewer joined came at the live rate.
		var during []seen
		for _, s := range tags {
			if !s.at.Before(joined) {
				during = append(during, s)
			}
		}
		// A viewer held up by the slow one would wait up to the write
		// timeout; the slack is for a loaded machine.
		elapsed := time.Since(joined)
		if got := span(during); got < elapsed-2*time.Second {
			t.Errorf("fast viewer %d got %v of video in the %v since the slow viewer joined", i, got, elapsed.Round(time.Millisecond))
		}
		for j := 1; j < len(during); j++ {
			if gap := during[j].at.Sub(during[j-1].at); gap > writeTimeout/2 {
				t.Errorf("fast viewer %d waited %v for a tag", i, gap)
				break
			}
		}
	}
	if m := e.relay.Metrics(); m.Viewers != 2 {
		t.Errorf("metrics %+v, want two viewers left", m)
	}
}

// TestLinger: the upstream stays open for Linger after the last viewer
// leaves, serves a viewer who comes back meanwhile, and then closes.
func TestLinger(t *testing.T) {
	leakCheck(t)
	o := liveOrigins(t, "origin-1")[0]
	clk := newFakeClock()
	const linger = 5 * time.Second
	e := startEdge(t, Config{Origins: []string{o.url()}, Clock: clk, Linger: linger, IdleTimeout: time.Hour}, nil)
	const path = "/live/cam.flv"

	visit := func() {
		t.Helper()
		v := watch(t, e.srv.Client(), e.flvURL("cam"), false)
		waitFor(t, 15*time.Second, func() bool { return frames(v.seenTags()) > 0 }, "frames")
		v.stop()
		waitFor(t, 5*time.Second, func() bool { return e.relay.refsOf(path) == 0 }, "the viewer to leave")
	}
	open := func() bool {
		m := e.relay.Metrics()
		return m.Upstreams == 1 && m.Streams == 1
	}

	visit()
	clk.advance(linger - time.Second)
	time.Sleep(100 * time.Millisecond)
	if !open() {
		t.Fatalf("upstream closed before the linger ran out: %+v", e.relay.Metrics())
	}
	visit() // comes back during the linger: same upstream
	if got := o.requestList(); len(got) != 1 {
		t.Fatalf("origin requests %q, want one", got)
	}
	clk.advance(linger - time.Second) // the linger restarted when the second viewer left
	time.Sleep(100 * time.Millisecond)
	if !open() {
		t.Fatalf("upstream closed before the second linger ran out: %+v", e.relay.Metrics())
	}
	clk.advance(time.Second)
	waitFor(t, 5*time.Second, func() bool {
		m := e.relay.Metrics()
		return m.Upstreams == 0 && m.Streams == 0 && o.stream.Stats().Readers == 0
	}, "the upstream to close")
	if _, ok := e.relay.Hub().Lookup("cam"); ok {
		t.Error("the relay's hub still has the stream")
	}

	visit() // a new viewer opens it again
	if got := o.requestList(); len(got) != 2 {
		t.Errorf("origin requests %q, want two", got)
	}
}

// TestGiveUpAndClose: a stream whose only origin is gone ends for its
// viewers after GiveUp; Close ends the rest and refuses later viewers.
func TestGiveUpAndClose(t *testing.T) {
	leakCheck(t)
	origins := liveOrigins(t, "origin-1", "origin-2")
	e := startEdge(t, Config{Origins: []string{origins[0].url()}, GiveUp: time.Second, RetryDelay: 100 * time.Millisecond}, nil)
	e2 := startEdge(t, Config{Origins: []string{origins[1].url()}}, nil)
	v := watch(t, e.srv.Client(), e.flvURL("cam"), false)
	v2 := watch(t, e2.srv.Client(), e2.flvURL("cam"), false)
	waitFor(t, 15*time.Second, func() bool { return frames(v.seenTags()) > 0 && frames(v2.seenTags()) > 0 }, "both live")

	origins[0].kill()
	killed := time.Now()
	waitFor(t, 10*time.Second, func() bool { _, _, _, ended := v.snapshot(); return ended }, "the stream to end")
	if _, _, err, _ := v.snapshot(); err != nil {
		t.Errorf("viewer's stream ended with %v, want a clean end", err)
	}
	if took := time.Since(killed); took < time.Second {
		t.Errorf("stream ended %v after the origin died, before GiveUp", took)
	}
	if m := e.relay.Metrics(); m.Streams != 0 || m.Viewers != 0 {
		t.Errorf("metrics after the end %+v", m)
	}

	if err := e2.relay.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { _, _, _, ended := v2.snapshot(); return ended }, "Close to end the viewer")
	resp, err := e2.srv.Client().Get(e2.flvURL("cam"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: status %d, want 503", resp.StatusCode)
	}
}
