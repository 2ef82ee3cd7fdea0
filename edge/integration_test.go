//go:build cgo

// The integration test runs a real origin (coordinator.NewStandalone, which
// links the transcode engine through cgo): only this test file needs cgo.

package edge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/coordinator"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/testmedia"
)

const fastLadder = `name: fast
gop: 2s
audio: {codec: aac, bitrate: 96k, sample_rate: 48000, channels: 2}
rungs:
  - {name: 180p, height: 180, bitrate: 200k, preset: ultrafast, encoders: [software]}
  - {name: 144p, height: 144, bitrate: 120k, preset: ultrafast, encoders: [software]}
`

// startStandalone runs a real origin; stop shuts it down (the test's
// cleanup does too).
func startStandalone(t *testing.T) (rtmpAddr, base string, stop func()) {
	t.Helper()
	dir := t.TempDir()
	ladder := filepath.Join(dir, "ladder.yaml")
	if err := os.WriteFile(ladder, []byte(fastLadder), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.RTMP.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Transcode.Profile = ladder
	cfg.Worker.ID = "edge-test"
	cfg.Worker.ShutdownTimeout = 5 * time.Second
	cfg.Packager.Grace = time.Second // ENDLIST soon after the publisher leaves
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	node, err := coordinator.NewStandalone(cfg, testLogger(t).With("node", "origin"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("standalone Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("standalone did not stop in 30 s")
		}
	})
	t.Cleanup(stop)
	select {
	case <-node.Ready():
	case err := <-done:
		t.Fatalf("standalone Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("standalone not ready in 20 s")
	}
	r, h := node.Addrs()
	return r.String(), "http://" + h.String(), stop
}

// mirrorOrigin is a plain file server holding a copy of what the first
// origin served, the way a second origin reading the same store would.
func mirrorOrigin(t *testing.T, dir string) *httptest.Server {
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		if ct := contentTypeFor(r.URL.Path); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		if immutable(r.URL.Path) {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "max-age=1")
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

var (
	uriLines = regexp.MustCompile(`(?m)^[^#\s]\S*$`)
	mapURI   = regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`)
)

// presentation lists the paths of an HLS presentation: the master, its
// media playlists, their init and media segments.
func presentation(t *testing.T, c *http.Client, base, master string) (playlists, segments []string) {
	t.Helper()
	resp, body := fetch(t, c, "GET", base+master)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", master, resp.StatusCode)
	}
	dir := path.Dir(master) + "/"
	for _, u := range uriLines.FindAllString(string(body), -1) {
		mp := dir + u
		playlists = append(playlists, mp)
		resp, media := fetch(t, c, "GET", base+mp)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", mp, resp.StatusCode)
		}
		mdir := path.Dir(mp) + "/"
		for _, m := range mapURI.FindAllStringSubmatch(string(media), -1) {
			segments = append(segments, mdir+m[1])
		}
		for _, s := range uriLines.FindAllString(string(media), -1) {
			segments = append(segments, mdir+s)
		}
	}
	return playlists, segments
}

// TestEdgeInFrontOfStandalone publishes a clip to a real standalone node,
// plays it through the edge and checks every playlist and segment is
// byte-identical to the origin's; then the origin is stopped and a second
// origin (a file server with a copy) keeps the edge answering without a
// single error.
func TestEdgeInFrontOfStandalone(t *testing.T) {
	testmedia.Require(t, "ffmpeg", "ffprobe")
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 6, Format: "flv"})
	rtmpAddr, originBase, stopOrigin := startStandalone(t)
	mirrorDir := t.TempDir()
	second := mirrorOrigin(t, mirrorDir)
	e, edgeBase, _ := startEdge(t, []string{originBase, second.URL}, nil, nil)
	c := newClient(t)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", clip,
		"-c", "copy", "-f", "flv", fmt.Sprintf("rtmp://%s/live/cam", rtmpAddr))
	var pubErr bytes.Buffer
	pub.Stderr = &pubErr
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.Wait() }()

	// Through the edge while live: the master lists both rungs and the
	// media playlists fill up.
	waitFor(t, "HLS with two rungs and two segments through the edge", 45*time.Second, func() bool {
		resp, body := fetch(t, c, "GET", edgeBase+"/live/cam/index.m3u8")
		if resp.StatusCode != 200 || !strings.Contains(string(body), "180p") || !strings.Contains(string(body), "144p") {
			return false
		}
		resp, media := fetch(t, c, "GET", edgeBase+"/live/cam/180p/index.m3u8")
		return resp.StatusCode == 200 && strings.Count(string(media), "#EXTINF") >= 2
	})
	if err := <-pubDone; err != nil {
		t.Fatalf("ffmpeg publish: %v\n%s", err, pubErr.String())
	}
	// Wait for the end of the stream, so the playlists stop changing.
	waitFor(t, "EXT-X-ENDLIST at the origin", 30*time.Second, func() bool {
		_, media := fetch(t, c, "GET", originBase+"/live/cam/180p/index.m3u8")
		return strings.Contains(string(media), "#EXT-X-ENDLIST")
	})

	playlists, segments := presentation(t, c, originBase, "/live/cam/index.m3u8")
	all := append([]string{"/live/cam/index.m3u8", "/live/cam/index.mpd"}, playlists...)
	all = append(all, segments...)
	if len(segments) < 4 {
		t.Fatalf("only %d segments: %v", len(segments), segments)
	}
	origin := map[string][]byte{}
	for _, p := range all {
		resp, body := fetch(t, c, "GET", originBase+p)
		if resp.StatusCode != 200 {
			t.Fatalf("origin %s: %d", p, resp.StatusCode)
		}
		origin[p] = body
		dst := filepath.Join(mirrorDir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Byte-identical through the edge; a playlist cached before ENDLIST
	// is replaced within its TTL.
	for _, p := range all {
		waitFor(t, p+" through the edge equal to the origin's", 5*time.Second, func() bool {
			resp, body := fetch(t, c, "GET", edgeBase+p)
			return resp.StatusCode == 200 && bytes.Equal(body, origin[p]) &&
				resp.Header.Get("Content-Type") != "" && resp.Header.Get("Cache-Control") != ""
		})
	}
	t.Logf("%d playlists and %d segments identical through the edge", len(all)-len(segments), len(segments))

	// The origin dies while viewers keep reading playlists and segments.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		requests int
	)
	viewing := make(chan struct{})
	for v := 0; v < 4; v++ {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-viewing:
					return
				default:
				}
				p := all[(i*4+v)%len(all)]
				resp, err := c.Get(edgeBase + p)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				requests++
				switch {
				case err != nil:
					failures = append(failures, fmt.Sprintf("%s: %v", p, err))
				case resp.StatusCode != 200 || !bytes.Equal(body, origin[p]):
					failures = append(failures, fmt.Sprintf("%s: %d, %d bytes", p, resp.StatusCode, len(body)))
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	stopOrigin()
	// Long enough for every playlist to expire and be fetched again.
	waitFor(t, "the second origin to be current", 15*time.Second, func() bool {
		cur := e.pool.current()
		return cur != nil && cur.url == second.URL
	})
	time.Sleep(2 * time.Second)
	close(viewing)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("%d of %d viewer requests failed after the origin stopped, first: %v", len(failures), requests, failures[0])
	}
	t.Logf("%d viewer requests across the origin's death, none failed", requests)
	mfs := scrape(t, c, edgeBase)
	if v, _ := metricValue(mfs, "livegrid_edge_origin_requests_total", "origin", second.URL); v < 1 {
		t.Errorf("the second origin served nothing (%v requests)", v)
	}

	// A player reads the whole presentation through the edge from the copy.
	frames := testmedia.Frames(t, edgeBase+"/live/cam/180p/index.m3u8", "v:0")
	if len(frames) < 120 {
		t.Errorf("ffprobe decoded %d frames through the edge, want about 180", len(frames))
	}
}
