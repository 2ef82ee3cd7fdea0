//go:build cgo

package latencybench

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/bench"
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
  - {name: 240p, height: 240, bitrate: 400k, preset: ultrafast, encoders: [software]}
  - {name: 144p, height: 144, bitrate: 150k, preset: ultrafast, encoders: [software]}
`

// TestSmokeStandalone publishes 10 s (plus two GOPs) to a real standalone
// node in this process and checks the latencies are sane: every protocol
// sampled, all positive and under 30 s, source timestamps kept, and
// HTTP-FLV well ahead of HLS and DASH, which wait for a whole segment.
func TestSmokeStandalone(t *testing.T) {
	testmedia.Require(t, "ffmpeg")
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	rtmpAddr, base := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var updates []bench.ProgressUpdate
	rep, err := Run(ctx, Config{RTMP: "rtmp://" + rtmpAddr + "/live", HTTP: base, Duration: 10 * time.Second,
		Width: 426, Height: 240, WorkDir: t.TempDir(),
		Log:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Progress: func(u bench.ProgressUpdate) { updates = append(updates, u) }})
	if err != nil {
		t.Fatal(err)
	}
	var tab bytes.Buffer
	rep.WriteTable(&tab)
	t.Log("\n" + tab.String())

	if p := rep.Publish; p.Keyframes != 7 || p.VideoFrames < 400 || p.MaxSendLagS > 1 {
		t.Errorf("published %+v; want 7 keyframes in 14 s at 30 fps, sent on time", p)
	}
	if len(rep.Results) != 3 {
		t.Fatalf("%d results, want flv, hls and dash at the origin", len(rep.Results))
	}
	for _, r := range rep.Results {
		// FLV samples keyframes 2..8 s (0 s came from the GOP cache, or
		// not, if the reader connected first); HLS and DASH segments 0..8 s.
		if r.Samples < 4 || !r.Complete || r.Unmatched != 0 || r.TimestampOffsetMS != 0 {
			t.Errorf("%s: %d samples, complete %v, %d unmatched, offset %g ms, errors %d (%s)",
				r.Protocol, r.Samples, r.Complete, r.Unmatched, r.TimestampOffsetMS, r.Errors, r.LastError)
		}
		if r.LatencyMinS <= 0 || r.Latency.Max >= 30 {
			t.Errorf("%s: latency from %gs to %gs, want within (0, 30s)", r.Protocol, r.LatencyMinS, r.Latency.Max)
		}
	}
	flvR, _ := rep.Result(ProtocolFLV, LocationOrigin)
	hlsR, _ := rep.Result(ProtocolHLS, LocationOrigin)
	dashR, _ := rep.Result(ProtocolDASH, LocationOrigin)
	if flvR.Latency.P50 >= hlsR.Latency.P50 || flvR.Latency.P50 >= dashR.Latency.P50 {
		t.Errorf("FLV p50 %gs, HLS %gs, DASH %gs: want FLV first", flvR.Latency.P50, hlsR.Latency.P50, dashR.Latency.P50)
	}
	// A segment is playable no sooner than its own media has been sent.
	if hlsR.LatencyMinS < 1.5 {
		t.Errorf("HLS latency %gs is below the 2 s segment's duration", hlsR.LatencyMinS)
	}
	if hlsR.Rendition != "240p" || dashR.Rendition != "240p" {
		t.Errorf("renditions %q and %q, want the top rung", hlsR.Rendition, dashR.Rendition)
	}
	if len(updates) == 0 || !updates[len(updates)-1].Final {
		t.Errorf("progress updates %d", len(updates))
	}
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
	cfg.Worker.ID = "latency-smoke"
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

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
