//go:build cgo

package coordinator_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/coordinator"
	"github.com/livegrid/livegrid/internal/config"
)

// liveNode is an in-process standalone for the live-path tests.
type liveNode struct {
	rtmp, base string
	stop       func() // shuts the node down; the test's cleanup calls it too
}

// startNode runs a standalone with ladder (YAML text, or a builtin name
// when it has no newline) and lets tweak adjust the config; the node stops
// when the test ends.
func startNode(t *testing.T, ladder string, tweak func(*config.Config)) *liveNode {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.RTMP.Addr = "127.0.0.1:0"
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	if strings.Contains(ladder, "\n") {
		p := filepath.Join(dir, "ladder.yaml")
		if err := os.WriteFile(p, []byte(ladder), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg.Transcode.Profile = p
	} else {
		cfg.Transcode.Profile = ladder
	}
	cfg.Worker.ID = "live-test"
	cfg.Worker.ShutdownTimeout = 5 * time.Second
	if tweak != nil {
		tweak(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	node, err := coordinator.NewStandalone(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("standalone did not shut down in 30 s")
		}
	})
	t.Cleanup(stop)
	select {
	case <-node.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready in 10 s")
	}
	rtmpAddr, httpAddr := node.Addrs()
	n := &liveNode{rtmp: rtmpAddr.String(), base: "http://" + httpAddr.String(), stop: stop}
	n.checkHealth(t)
	return n
}

// checkHealth requires /healthz and /readyz to answer 200.
func (n *liveNode) checkHealth(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get(t, n.base+p); code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, code)
		}
	}
}

// publisher is one ffmpeg -re publish.
type publisher struct {
	start time.Time
	done  chan error
	err   *bytes.Buffer
}

func (n *liveNode) publish(t *testing.T, clip, stream string) *publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", clip,
		"-c", "copy", "-f", "flv", fmt.Sprintf("rtmp://%s/live/%s", n.rtmp, stream))
	p := &publisher{done: make(chan error, 1), err: &bytes.Buffer{}}
	cmd.Stderr = p.err
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	return p
}

func (p *publisher) wait(t *testing.T) {
	t.Helper()
	if err := <-p.done; err != nil {
		t.Fatalf("ffmpeg publish: %v\n%s", err, p.err.String())
	}
}

// mediaPlaylistURLs returns the media playlist URLs of a master.
func mediaPlaylistURLs(dir, master string) []string {
	var out []string
	for _, u := range uriLine.FindAllString(master, -1) {
		out = append(out, dir+strings.TrimSpace(u))
	}
	return out
}

// playlistSeg is one segment of a parsed media playlist.
type playlistSeg struct {
	seq      uint64
	uri      string
	dur      float64 // EXTINF
	disc     bool    // EXT-X-DISCONTINUITY before it
	pdt      time.Time
	startSum float64 // EXTINF sum of the segments before it in this playlist
}

type mediaPlaylist struct {
	mediaSeq, discSeq uint64
	ended             bool
	segs              []playlistSeg
}

func parseMedia(t *testing.T, body string) mediaPlaylist {
	t.Helper()
	var mp mediaPlaylist
	var cur playlistSeg
	var sum float64
	n := 0
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			v, err := strconv.ParseUint(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"), 10, 64)
			if err != nil {
				t.Fatalf("bad %q", line)
			}
			mp.mediaSeq = v
		case strings.HasPrefix(line, "#EXT-X-DISCONTINUITY-SEQUENCE:"):
			v, err := strconv.ParseUint(strings.TrimPrefix(line, "#EXT-X-DISCONTINUITY-SEQUENCE:"), 10, 64)
			if err != nil {
				t.Fatalf("bad %q", line)
			}
			mp.discSeq = v
		case line == "#EXT-X-ENDLIST":
			mp.ended = true
		case line == "#EXT-X-DISCONTINUITY":
			cur.disc = true
		case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
			ts, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"))
			if err == nil {
				cur.pdt = ts
			}
		case strings.HasPrefix(line, "#EXTINF:"):
			v := strings.TrimPrefix(line, "#EXTINF:")
			v, _, _ = strings.Cut(v, ",")
			d, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("bad %q", line)
			}
			cur.dur = d
		case line != "" && !strings.HasPrefix(line, "#"):
			cur.uri = line
			cur.seq = mp.mediaSeq + uint64(n)
			cur.startSum = sum
			sum += cur.dur
			n++
			mp.segs = append(mp.segs, cur)
			cur = playlistSeg{}
		}
	}
	return mp
}

// countFramesFromStart is countFrames for a live HLS playlist read from its
// first segment (ffmpeg's HLS demuxer starts 3 segments from the live edge).
func countFramesFromStart(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-live_start_index", "0", "-select_streams", "v:0",
		"-show_entries", "frame=pts_time", "-of", "csv=p=0", url).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v %s", url, err, stderr)
	}
	return strings.Count(string(out), "\n")
}

// testLogger writes a role's log to the test log, tagged with its name.
func testLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", name)
}

// runRole runs a role until the returned stop, which waits for it.
func runRole(t *testing.T, name string, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	return sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop in 30 s", name)
		}
	})
}

// waitFor polls cond every 200 ms until it holds, failing after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %s", what, limit)
		}
	}
}
