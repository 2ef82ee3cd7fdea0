//go:build cgo

package fanoutbench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/coordinator"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// smokeLadder is small, so the node transcodes it in real time on a busy
// two-core machine.
const smokeLadder = `name: smoke
gop: 2s
audio: {codec: aac, bitrate: 96k, sample_rate: 48000, channels: 2}
rungs:
  - {name: 180p, height: 180, bitrate: 300k, preset: ultrafast, encoders: [software]}
  - {name: 144p, height: 144, bitrate: 150k, preset: ultrafast, encoders: [software]}
`

// TestSmokeStandalone runs the suite against a real standalone node in
// this process, with a stream published by ffmpeg: 20 HTTP-FLV viewers,
// then 10 HLS viewers, each for a few seconds, sampling this process as
// the server.
func TestSmokeStandalone(t *testing.T) {
	testmedia.Require(t, "ffmpeg")
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 40, Format: "flv"})
	rtmpAddr, base := startNode(t)
	publish(t, clip, "rtmp://"+rtmpAddr+"/live/smoke")
	waitForSegment(t, base+"/live/smoke/180p/index.m3u8", 45*time.Second)

	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Run("flv", func(t *testing.T) {
		rep, err := Run(ctx, Config{URL: base, Stream: "smoke", Viewers: 20, Protocol: ProtocolFLV,
			Ramp: time.Second, Duration: 3 * time.Second, PID: os.Getpid(), Baseline: time.Second, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		logReport(t, rep)
		checkSane(t, rep, 20)
		if e := rep.Edge; e == nil || e.Error != "" || e.CPUCores <= 0 || e.CPUCoresBefore <= 0 || e.BaselineS < 1 || e.RSSBeforeBytes <= 0 || e.RSSPeakBytes <= 0 {
			t.Errorf("server process %+v", e)
		}
	})
	t.Run("hls", func(t *testing.T) {
		rep, err := Run(ctx, Config{URL: base, Stream: "smoke", Viewers: 10, Protocol: ProtocolHLS, Audio: true,
			Ramp: time.Second, Duration: 5 * time.Second, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		logReport(t, rep)
		checkSane(t, rep, 10)
		if r := rep.Result.Renditions; r["180p"] != 5 || r["144p"] != 5 {
			t.Errorf("renditions %v, want 5 each", r)
		}
	})
}

func checkSane(t *testing.T, rep *Report, n int) {
	t.Helper()
	res := rep.Result
	if res.ViewersHeld != n || res.ViewersStarted != n {
		t.Errorf("held %d of %d started, want %d", res.ViewersHeld, res.ViewersStarted, n)
	}
	if res.TTFK.Count != n || res.TTFKMinS <= 0 || res.TTFK.P99 > 10 {
		t.Errorf("ttfk %+v min %g", res.TTFK, res.TTFKMinS)
	}
	// At least the lowest rung's 150 kbit/s per viewer, far below any link.
	if res.BandwidthBytesPerS < float64(n)*150e3/8*0.5 || res.ViewerBandwidth.Min <= 0 {
		t.Errorf("bandwidth %g B/s, per viewer %+v", res.BandwidthBytesPerS, res.ViewerBandwidth)
	}
	if res.Drops != 0 {
		t.Errorf("%d drops, errors %v", res.Drops, res.ErrorKinds)
	}
	if len(rep.Timeline) < 3 {
		t.Errorf("%d timeline points", len(rep.Timeline))
	}
}

func logReport(t *testing.T, rep *Report) {
	var b bytes.Buffer
	rep.WriteTable(&b)
	t.Log("\n" + b.String())
}

// startNode runs a standalone node on loopback ports until the test ends
// and returns its RTMP address and HTTP base URL.
func startNode(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	ladder := filepath.Join(dir, "ladder.yaml")
	if err := os.WriteFile(ladder, []byte(smokeLadder), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.RTMP.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Transcode.Profile = ladder
	cfg.Worker.ID = "fanout-smoke"
	cfg.Worker.ShutdownTimeout = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	node, err := coordinator.NewStandalone(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("node did not stop in 30 s")
		}
	})
	select {
	case <-node.Ready():
	case err := <-done:
		t.Fatalf("node: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("node not ready in 15 s")
	}
	rtmpAddr, httpAddr := node.Addrs()
	return rtmpAddr.String(), "http://" + httpAddr.String()
}

// publish pushes clip to url with ffmpeg -re until the test ends.
func publish(t *testing.T, clip, url string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", clip, "-c", "copy", "-f", "flv", url)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A publisher that dies early explains a failure further on.
		if err := cmd.Wait(); err != nil && ctx.Err() == nil {
			t.Logf("ffmpeg publish ended: %v: %s", err, stderr.String())
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitForSegment waits until a media playlist lists a segment.
func waitForSegment(t *testing.T, url string, limit time.Duration) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	for deadline := time.Now().Add(limit); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := c.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), ".m4s") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no segment listed at %s in %s", url, limit)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
