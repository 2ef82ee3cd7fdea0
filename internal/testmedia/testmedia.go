// Package testmedia makes real media for livegrid's tests with the ffmpeg
// command line and reads results back with ffprobe. Generated clips are
// cached under the system temp folder, keyed by their ffmpeg arguments.
package testmedia

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Require skips the test when a tool is missing, except in CI (CI=true),
// where a missing tool is a broken set-up and fails the test.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed; run deploy/setup.sh", tool)
			}
			t.Skipf("%s is not installed; run deploy/setup.sh", tool)
		}
	}
}

// Clip describes a generated test clip: testsrc2 video with a moving
// pattern and, unless ACodec is "none", a sine tone.
type Clip struct {
	Width, Height int
	FPS           int
	Seconds       float64
	GOP           int    // source keyframe interval in frames; default 2 s
	VCodec        string // default libx264
	ACodec        string // default aac; "none" for no audio
	Format        string // container: mp4 (default), flv, mpegts, matroska
	SAR           string // e.g. "64/45"; default square
	Channels      int    // audio channels, default 2
}

var mu sync.Mutex

// Make returns the path of the clip, generating it once.
func Make(t testing.TB, c Clip) string {
	t.Helper()
	Require(t, "ffmpeg")
	if c.FPS == 0 {
		c.FPS = 30
	}
	if c.GOP == 0 {
		c.GOP = 2 * c.FPS
	}
	if c.VCodec == "" {
		c.VCodec = "libx264"
	}
	if c.ACodec == "" {
		c.ACodec = "aac"
	}
	if c.Format == "" {
		c.Format = "mp4"
	}
	if c.Channels == 0 {
		c.Channels = 2
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", c.Width, c.Height, c.FPS)}
	if c.ACodec != "none" {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=48000,aformat=channel_layouts=%s", layout(c.Channels)))
	}
	args = append(args, "-t", strconv.FormatFloat(c.Seconds, 'f', -1, 64), "-c:v", c.VCodec, "-pix_fmt", "yuv420p", "-g", strconv.Itoa(c.GOP))
	if c.VCodec == "libx264" {
		args = append(args, "-preset", "ultrafast", "-bf", "2", "-sc_threshold", "0")
	}
	if c.SAR != "" {
		args = append(args, "-vf", "setsar="+c.SAR)
	}
	if c.ACodec != "none" {
		args = append(args, "-c:a", c.ACodec)
	}
	args = append(args, "-f", c.Format)
	sum := sha256.Sum256([]byte(strings.Join(args, " ")))
	dir := filepath.Join(os.TempDir(), "livegrid-testmedia")
	path := filepath.Join(dir, hex.EncodeToString(sum[:8])+"."+ext(c.Format))
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".part"
	out, err := exec.Command("ffmpeg", append(args, tmp)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func layout(ch int) string {
	if ch == 1 {
		return "mono"
	}
	return "stereo"
}

func ext(format string) string {
	switch format {
	case "mpegts":
		return "ts"
	case "matroska":
		return "mkv"
	}
	return format
}

// Frame is one decoded frame as ffprobe reports it.
type Frame struct {
	PTS    float64 // seconds
	Key    bool
	Type   string // I, P, B
	Width  int
	Height int
}

// Frames decodes a stream ("v:0", "a:0") of a file or playlist with ffprobe.
func Frames(t testing.TB, path, stream string) []Frame {
	t.Helper()
	Require(t, "ffprobe")
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
		"frame=pts_time,key_frame,pict_type,width,height", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var doc struct {
		Frames []struct {
			PTS    string `json:"pts_time"`
			Key    int    `json:"key_frame"`
			Type   string `json:"pict_type"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	fs := make([]Frame, len(doc.Frames))
	for i, f := range doc.Frames {
		pts, _ := strconv.ParseFloat(f.PTS, 64)
		fs[i] = Frame{PTS: pts, Key: f.Key == 1, Type: f.Type, Width: f.Width, Height: f.Height}
	}
	return fs
}

// Stream is one stream as ffprobe reports it.
type Stream struct {
	Index     int    `json:"index"`
	CodecName string `json:"codec_name"`
	CodecType string `json:"codec_type"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

// Streams lists the streams ffprobe finds in a file, playlist or MPD.
func Streams(t testing.TB, path string) []Stream {
	t.Helper()
	Require(t, "ffprobe")
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=index,codec_name,codec_type,width,height", "-of", "json", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	var doc struct {
		Streams []Stream `json:"streams"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	return doc.Streams
}
