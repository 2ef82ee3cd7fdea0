//go:build cgo

package coordinator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/testmedia"
)

// playerLadder has a High-profile rung with B-frames (negative composition
// offsets, as the default ladder) and a Baseline one.
const playerLadder = `name: player
gop: 2s
audio: {codec: aac, bitrate: 96k, sample_rate: 48000, channels: 2}
rungs:
  - {name: 180p, height: 180, bitrate: 300k, preset: veryfast, profile: high, encoders: [software]}
  - {name: 144p, height: 144, bitrate: 150k, preset: ultrafast, encoders: [software]}
`

// playerDir holds the page and the driver (e2e/player, set up by npm ci).
const playerDir = "../e2e/player"

// playerSnapshot is the <video> element's state at one moment.
type playerSnapshot struct {
	CurrentTime float64      `json:"currentTime"`
	Frames      int          `json:"frames"`
	Dropped     int          `json:"dropped"`
	Buffered    [][2]float64 `json:"buffered"`
	Width       int          `json:"width"`
	Height      int          `json:"height"`
}

// playerResult is what run.mjs reports for one player (see player.js).
type playerResult struct {
	Mode    string          `json:"mode"`
	URL     string          `json:"url"`
	MSE     map[string]bool `json:"mse"`
	Player  string          `json:"player"`
	Version string          `json:"version"`
	Error   string          `json:"error"`
	Steady  *struct {
		From, To          playerSnapshot
		MediaSeconds      float64 `json:"mediaSeconds"`
		FramesDecoded     int     `json:"framesDecoded"`
		FramesDropped     int     `json:"framesDropped"`
		FrameRatio        float64 `json:"frameRatio"`
		SegmentBoundaries *int    `json:"segmentBoundaries"`
		Presented         struct {
			Supported  bool `json:"supported"`
			Repeats    int  `json:"repeats"`
			Backsteps  int  `json:"backsteps"`
			ShortSteps int  `json:"shortSteps"`
		} `json:"presented"`
	} `json:"steady"`
	Info struct {
		Renditions []struct {
			Name   string `json:"name"`
			Height int    `json:"height"`
		} `json:"renditions"`
		Joins []struct {
			SN     int     `json:"sn"`
			Levels []int   `json:"levels"`
			PTSGap float64 `json:"ptsGap"`
			DTSGap float64 `json:"dtsGap"`
		} `json:"joins"`
	} `json:"info"`
	Switches []struct {
		Index  int    `json:"index"`
		Height int    `json:"height"`
		OK     bool   `json:"ok"`
		Error  string `json:"error"`
	} `json:"switches"`
	Final      playerSnapshot `json:"final"`
	Fatal      string         `json:"fatal"`
	MediaError *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"mediaError"`
	FailedRequests []string `json:"failedRequests"`
}

// TestBrowserPlayers plays a live stream from a standalone origin in
// Debian's Chromium with the players viewers use: mpegts.js on the source
// and a rendition as HTTP-FLV, hls.js on the HLS master (forcing each
// rendition in turn) and dash.js on the MPD (the same). The page comes from
// another origin than the stream, so CORS is exercised too. Each player
// must play 4+ s of media without an error, decode about one frame per
// 1/30 s of media and present no frame twice (no duplicated frames at
// segment boundaries); HLS and DASH must keep one buffered range across
// boundaries and switches, and hls.js must see each segment's video end
// where the next one's (of any rendition) begins.
func TestBrowserPlayers(t *testing.T) {
	testmedia.Require(t, "ffmpeg", "node", "chromium")
	requirePlayerModules(t)
	chromium, _ := exec.LookPath("chromium")
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 90, Format: "flv"})
	n := startNode(t, playerLadder, nil)
	n.publish(t, clip, "play")

	page := httptest.NewServer(http.FileServer(http.Dir(playerDir)))
	t.Cleanup(page.Close)

	// Start the players once the master lists both rungs and a media
	// playlist has 2 segments.
	live := n.base + "/live/play"
	waitFor(t, 40*time.Second, "HLS with 2 rungs and 2 segments", func() bool {
		code, body := get(t, live+"/index.m3u8")
		return code == http.StatusOK && strings.Contains(body, "180p/") && strings.Contains(body, "144p/") &&
			mediaSegments(t, live+"/", body) >= 2
	})

	runs := []struct{ mode, url string }{
		{"flv", live + ".flv"},
		{"flv", live + "/180p.flv"},
		{"hls", live + "/index.m3u8"},
		{"dash", live + "/index.mpd"},
	}
	args := []string{filepath.Join(playerDir, "run.mjs"), "--page", page.URL + "/index.html",
		"--chromium", chromium, "--fps", "30", "--play", "5", "--timeout", "25"}
	for _, r := range runs {
		args = append(args, "--mode", r.mode, "--url", r.url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// SIGTERM lets run.mjs SIGKILL the browser's process group on its way
	// out; a bare SIGKILL would leave Chromium to close by itself.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("node run.mjs: %v\n%s%s", err, stderr.String(), stdout.String())
	}
	t.Logf("run.mjs (%s):\n%s", time.Since(start).Round(time.Second), stdout.String())
	var results []playerResult
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("run.mjs output: %v", err)
	}
	if len(results) != len(runs) {
		t.Fatalf("run.mjs gave %d results for %d players", len(results), len(runs))
	}
	for _, r := range results {
		checkPlayer(t, r)
	}
}

// checkPlayer judges one player's result.
func checkPlayer(t *testing.T, r playerResult) {
	t.Helper()
	name := fmt.Sprintf("%s %s (%s %s)", r.Mode, strings.TrimPrefix(r.URL, "http://"), r.Player, r.Version)
	if avc := `video/mp4; codecs="avc1.64001f"`; !r.MSE[avc] {
		t.Errorf("%s: MediaSource does not take %s: this Chromium has no H.264", name, avc)
	}
	if len(r.FailedRequests) > 0 {
		t.Logf("%s: failed requests: %v", name, r.FailedRequests)
	}
	if r.Error != "" || r.Steady == nil {
		t.Errorf("%s: %s", name, r.Error)
		return
	}
	s := r.Steady
	boundaries := "uncounted"
	if s.SegmentBoundaries != nil {
		boundaries = fmt.Sprint(*s.SegmentBoundaries)
	}
	t.Logf("%s: %.2f s of media, %d frames decoded (%.3f of 30 fps), %d dropped, buffered %v, %s segment boundaries; final %.2f s, %dx%d, buffered %v",
		name, s.MediaSeconds, s.FramesDecoded, s.FrameRatio, s.FramesDropped, s.To.Buffered, boundaries,
		r.Final.CurrentTime, r.Final.Width, r.Final.Height, r.Final.Buffered)
	if r.Fatal != "" || r.MediaError != nil {
		t.Errorf("%s: fatal %q, media error %+v", name, r.Fatal, r.MediaError)
	}
	if s.MediaSeconds < 4 {
		t.Errorf("%s: played %.2f s of media, want 4+", name, s.MediaSeconds)
	}
	// A frame decoded twice at each 2 s boundary would be +1.7%; the
	// counters are read a few frames apart, so the bound is loose and the
	// presented-frame steps below are the sharp test.
	if s.FrameRatio < 0.95 || s.FrameRatio > 1.05 {
		t.Errorf("%s: decoded %d frames in %.2f s of media: %.3f of 30 fps", name, s.FramesDecoded, s.MediaSeconds, s.FrameRatio)
	}
	if p := s.Presented; p.Supported && (p.Repeats > 0 || p.Backsteps > 0 || p.ShortSteps > 0) {
		t.Errorf("%s: presented frames: %d repeated, %d stepped back, %d under half a frame apart", name, p.Repeats, p.Backsteps, p.ShortSteps)
	}
	if r.Mode == "flv" {
		return
	}
	if len(s.To.Buffered) != 1 || len(r.Final.Buffered) != 1 {
		t.Errorf("%s: buffered %v after steady play, %v at the end: want one range", name, s.To.Buffered, r.Final.Buffered)
	}
	if len(r.Info.Renditions) != 2 {
		t.Errorf("%s: %d renditions, want 2: %+v", name, len(r.Info.Renditions), r.Info.Renditions)
	}
	if len(r.Switches) != len(r.Info.Renditions) {
		t.Errorf("%s: %d of %d renditions forced", name, len(r.Switches), len(r.Info.Renditions))
	}
	for _, sw := range r.Switches {
		if !sw.OK {
			t.Errorf("%s: rendition %d (%dp): %s", name, sw.Index, sw.Height, sw.Error)
		}
	}
	if r.Mode != "hls" {
		return
	}
	if s.SegmentBoundaries == nil || *s.SegmentBoundaries < 2 {
		t.Errorf("%s: crossed %s segment boundaries while measuring, want 2+", name, boundaries)
	}
	if len(r.Info.Joins) == 0 {
		t.Errorf("%s: no consecutive fragments to compare", name)
	}
	for _, j := range r.Info.Joins {
		// 5 ms: the clocks' rounding, far under a frame (33 ms).
		if math.Abs(j.PTSGap) > 0.005 || math.Abs(j.DTSGap) > 0.005 {
			t.Errorf("%s: segment %d (level %d) to %d (level %d): PTS gap %.3f s, DTS gap %.3f s",
				name, j.SN, j.Levels[0], j.SN+1, j.Levels[1], j.PTSGap, j.DTSGap)
		}
	}
}

// requirePlayerModules skips the test when e2e/player has no node_modules,
// except in CI (CI=true), where it is a broken set-up and fails.
func requirePlayerModules(t *testing.T) {
	t.Helper()
	for _, mod := range []string{"playwright-core", "hls.js", "dashjs", "mpegts.js"} {
		if _, err := os.Stat(filepath.Join(playerDir, "node_modules", mod, "package.json")); err != nil {
			msg := fmt.Sprintf("e2e/player/node_modules has no %s; run deploy/setup.sh (npm ci in e2e/player)", mod)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}
