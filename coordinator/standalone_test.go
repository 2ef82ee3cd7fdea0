//go:build cgo

package coordinator_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

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

// testLog writes the node's log to the test log, so a failure shows it.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestStandaloneEndToEnd publishes a 6 s clip with ffmpeg over RTMP and
// plays the transcoded ladder back over HLS, DASH and HTTP-FLV.
func TestStandaloneEndToEnd(t *testing.T) {
	testmedia.Require(t, "ffmpeg", "ffprobe")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 6, Format: "flv"})

	dir := t.TempDir()
	ladderPath := filepath.Join(dir, "fast.yaml")
	if err := os.WriteFile(ladderPath, []byte(fastLadder), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.RTMP.Addr = "127.0.0.1:0"
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Transcode.Profile = ladderPath
	cfg.Worker.ID = "standalone-test"
	cfg.Worker.ShutdownTimeout = 5 * time.Second
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
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("standalone did not shut down in 30 s")
		}
	}
	defer stop()
	select {
	case <-node.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready in 10 s")
	}
	rtmpAddr, httpAddr := node.Addrs()
	base := "http://" + httpAddr.String()
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get(t, base+p); code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, code)
		}
	}

	pubCtx, pubCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pubCancel()
	pub := exec.CommandContext(pubCtx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", clip,
		"-c", "copy", "-f", "flv", fmt.Sprintf("rtmp://%s/live/test", rtmpAddr))
	var pubErr bytes.Buffer
	pub.Stderr = &pubErr
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.Wait() }()

	// HTTP-FLV while the stream is live.
	flvDeadline := time.Now().Add(5 * time.Second)
	for {
		head, err := getPrefix(base+"/live/test.flv", 3)
		if err == nil && string(head) == "FLV" {
			break
		}
		if time.Now().After(flvDeadline) {
			t.Fatalf("GET /live/test.flv: %q %v", head, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// HLS: the master lists both rungs and a media playlist has 2+ segments.
	var master string
	deadline := time.Now().Add(40 * time.Second)
	for {
		code, body := get(t, base+"/live/test/index.m3u8")
		if code == http.StatusOK && strings.Contains(body, "180p") && strings.Contains(body, "144p") {
			master = body
			if n := mediaSegments(t, base+"/live/test/", body); n >= 2 {
				t.Logf("master playlist:\n%s\nmedia playlist has %d segments", body, n)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HLS with 2 rungs and 2 segments in time; last %d:\n%s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := <-pubDone; err != nil {
		t.Fatalf("ffmpeg publish: %v\n%s", err, pubErr.String())
	}
	_ = master

	// Decode through the origin as a player would.
	hlsFrames := countFrames(t, base+"/live/test/index.m3u8")
	if hlsFrames == 0 {
		t.Fatal("ffprobe decoded no frames from the HLS master")
	}
	code, mpd := get(t, base+"/live/test/index.mpd")
	if code != http.StatusOK {
		t.Fatalf("GET index.mpd: %d %s", code, mpd)
	}
	dashFrames := countFrames(t, base+"/live/test/index.mpd")
	if dashFrames == 0 {
		t.Fatal("ffprobe decoded no frames from the MPD")
	}
	t.Logf("decoded video frames: HLS %d, DASH %d", hlsFrames, dashFrames)

	stop()
	if code, _ := get(t, base+"/healthz"); code != 0 {
		t.Errorf("HTTP still served after shutdown: %d", code)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getPrefix(url string, n int) ([]byte, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(resp.Body, b)
	return b, err
}

var uriLine = regexp.MustCompile(`(?m)^[^#\s].*\.m3u8.*$`)

// mediaSegments returns the most segments any media playlist of the master lists.
func mediaSegments(t *testing.T, dir, master string) int {
	most := 0
	for _, u := range uriLine.FindAllString(master, -1) {
		code, body := get(t, dir+strings.TrimSpace(u))
		if code != http.StatusOK {
			continue
		}
		most = max(most, strings.Count(body, "#EXTINF"))
	}
	return most
}

// countFrames runs ffprobe on a URL and counts the video frames it decodes.
func countFrames(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0",
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
