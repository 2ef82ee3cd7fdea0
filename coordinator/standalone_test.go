//go:build cgo

package coordinator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

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
	// Registered first, so it runs after the node's own cleanup.
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 6, Format: "flv"})
	n := startNode(t, fastLadder, func(c *config.Config) { c.Worker.ID = "standalone-test" })
	base := n.base
	pub := n.publish(t, clip, "test")

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
	pub.wait(t)
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

	n.stop()
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
