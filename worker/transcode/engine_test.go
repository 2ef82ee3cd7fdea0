package transcode

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/manifest"
	"github.com/livegrid/livegrid/internal/testmedia"
	"github.com/livegrid/livegrid/internal/vod"
	"github.com/livegrid/livegrid/profiles"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fastLadder is a two-rung ladder cheap enough for many test runs.
func fastLadder(t testing.TB) *profiles.Ladder {
	t.Helper()
	l, err := profiles.Parse([]byte(`
name: fast
gop: 2s
audio: {codec: aac, bitrate: 96k, sample_rate: 48000, channels: 2}
rungs:
  - {name: 360p, height: 360, bitrate: 600k, preset: ultrafast}
  - {name: 180p, height: 180, bitrate: 200k, preset: ultrafast}
`), "fast.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func transcodeDir(t *testing.T, eng *Engine, src string, ladder *profiles.Ladder, segDur time.Duration) (*Summary, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := vod.NewWriter(dir, segDur)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := eng.TranscodeFile(context.Background(), Source{URL: src}, ladder, FileOptions{SegmentDuration: segDur}, w)
	if err != nil {
		t.Fatalf("TranscodeFile: %v", err)
	}
	if err := w.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return sum, dir
}

// keyTimes returns the presentation times of the key frames.
func keyTimes(fs []testmedia.Frame) []float64 {
	var out []float64
	for _, f := range fs {
		if f.Key {
			out = append(out, f.PTS)
		}
	}
	return out
}

func TestLadderDefaultProfile(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 1920, Height: 1080, Seconds: 6})
	srcFrames := testmedia.Frames(t, src, "v:0")
	ladder, err := profiles.Builtin("default")
	if err != nil {
		t.Fatal(err)
	}
	eng := New(Options{Log: quietLog()})
	sum, dir := transcodeDir(t, eng, src, ladder, 2*time.Second)
	if sum.Segments != 3 || sum.Frames != len(srcFrames) {
		t.Errorf("segments = %d, frames = %d; want 3 and %d", sum.Segments, sum.Frames, len(srcFrames))
	}

	var refKeys []float64
	for i, rung := range []struct {
		name string
		w, h int
	}{{"1080p", 1920, 1080}, {"720p", 1280, 720}, {"480p", 854, 480}, {"360p", 640, 360}} {
		t.Run(rung.name, func(t *testing.T) {
			playlist := filepath.Join(dir, rung.name, "index.m3u8")
			fs := testmedia.Frames(t, playlist, "v:0")
			if len(fs) != len(srcFrames) {
				t.Fatalf("%d frames, source has %d", len(fs), len(srcFrames))
			}
			for j, f := range fs {
				if f.Width != rung.w || f.Height != rung.h {
					t.Fatalf("frame %d is %dx%d, want %dx%d", j, f.Width, f.Height, rung.w, rung.h)
				}
				// ffmpeg's mp4 reader delays every frame by the largest
				// negative composition offset; the spacing must match the source.
				if d, sd := f.PTS-fs[0].PTS, srcFrames[j].PTS-srcFrames[0].PTS; math.Abs(d-sd) > 0.001 {
					t.Fatalf("frame %d at +%.4fs, source frame at +%.4fs", j, d, sd)
				}
			}
			keys := keyTimes(fs)
			if len(keys) != 3 {
				t.Errorf("key frames at %v, want one per segment", keys)
			}
			// Each segment's tfdt is the source time of its first frame.
			for k, want := range []float64{0, 2, 4} {
				seg, err := os.ReadFile(filepath.Join(dir, rung.name, manifest.SegmentName(uint64(k))))
				if err != nil {
					t.Fatal(err)
				}
				ms, err := cmaf.ParseMediaSegment(seg)
				if err != nil {
					t.Fatal(err)
				}
				if got := float64(ms.BaseDecodeTime) / 90000; math.Abs(got-want) > 1e-9 || !ms.Samples[0].Keyframe || ms.Samples[0].CTSOffset != 0 {
					t.Errorf("segment %d: tfdt %.4fs (want %.4fs), first sample key=%v cts=%d", k, got, want, ms.Samples[0].Keyframe, ms.Samples[0].CTSOffset)
				}
			}
			if i == 0 {
				refKeys = keys
			} else if len(keys) != len(refKeys) {
				t.Errorf("key frames %v do not line up with 1080p's %v", keys, refKeys)
			} else {
				for k := range keys {
					if keys[k] != refKeys[k] {
						t.Errorf("key frames %v do not line up with 1080p's %v", keys, refKeys)
						break
					}
				}
			}
			// Bitrate within ±15% of the rung's target.
			var bytes int64
			entries, _ := os.ReadDir(filepath.Join(dir, rung.name))
			for _, e := range entries {
				if filepath.Ext(e.Name()) == ".m4s" {
					info, _ := e.Info()
					bytes += info.Size()
				}
			}
			target := float64(ladder.Rungs[i].Bitrate)
			got := float64(bytes*8) / 6
			if got < target*0.85 || got > target*1.15 {
				t.Errorf("bitrate %.0f b/s, target %.0f (±15%%)", got, target)
			}
		})
	}
	// Durations match: the audio track and every rung cover the source.
	for _, r := range []string{"1080p", "audio"} {
		fs := testmedia.Frames(t, filepath.Join(dir, r, "index.m3u8"), map[string]string{"1080p": "v:0", "audio": "a:0"}[r])
		last := fs[len(fs)-1].PTS
		if last < 5.9 || last > 6.05 {
			t.Errorf("%s: last frame at %.3fs, source is 6s", r, last)
		}
	}
	for _, manifest := range []string{"index.m3u8", "index.mpd"} {
		streams := testmedia.Streams(t, filepath.Join(dir, manifest))
		var video, audio int
		for _, s := range streams {
			switch s.CodecName {
			case "h264":
				video++
			case "aac":
				audio++
			}
		}
		if video != 4 || audio < 1 {
			t.Errorf("%s: ffprobe found %d h264 and %d aac streams: %+v", manifest, video, audio, streams)
		}
	}
}

func TestLongSourceGOPStillCutsAtTarget(t *testing.T) {
	// A broadcaster with a 6 s GOP: output segments must still be ~2 s.
	src := testmedia.Make(t, testmedia.Clip{Width: 640, Height: 360, Seconds: 6, GOP: 180})
	eng := New(Options{Log: quietLog()})
	sum, dir := transcodeDir(t, eng, src, fastLadder(t), 2*time.Second)
	if sum.Segments != 3 {
		t.Fatalf("segments = %d, want 3 from one 6 s source GOP", sum.Segments)
	}
	for _, r := range []string{"360p", "180p"} {
		keys := keyTimes(testmedia.Frames(t, filepath.Join(dir, r, "index.m3u8"), "v:0"))
		want := []float64{0, 2, 4}
		if len(keys) != len(want) {
			t.Fatalf("%s: key frames at %v, want %v", r, keys, want)
		}
		for i := range want {
			if math.Abs(keys[i]-want[i]) > 0.04 {
				t.Fatalf("%s: key frames at %v, want %v", r, keys, want)
			}
		}
	}
}

func TestOddSourceSizes(t *testing.T) {
	ladder, err := profiles.Parse([]byte(`
name: odd
rungs:
  - {name: 720p, height: 720, bitrate: 1M, preset: ultrafast}
  - {name: 360p, height: 360, bitrate: 400k, preset: ultrafast}
`), "odd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		clip testmedia.Clip
		want [][2]int
	}{
		{"1366x768", testmedia.Clip{Width: 1366, Height: 768}, [][2]int{{1280, 720}, {640, 360}}},
		{"portrait 1080x1920", testmedia.Clip{Width: 1080, Height: 1920}, [][2]int{{720, 1280}, {360, 640}}},
		{"4:3 1440x1080", testmedia.Clip{Width: 1440, Height: 1080}, [][2]int{{960, 720}, {480, 360}}},
		{"anamorphic 720x576", testmedia.Clip{Width: 720, Height: 576, SAR: "64/45"}, [][2]int{{640, 360}}},
		{"odd 321x241", testmedia.Clip{Width: 321, Height: 241, ACodec: "none"}, [][2]int{{320, 240}}},
	}
	eng := New(Options{Log: quietLog()})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.clip.Seconds = 1
			src := testmedia.Make(t, tt.clip)
			sum, dir := transcodeDir(t, eng, src, ladder, 2*time.Second)
			var video []RenditionInfo
			for _, r := range sum.Renditions {
				if r.Kind == "video" {
					video = append(video, r)
				}
			}
			if len(video) != len(tt.want) {
				t.Fatalf("renditions %+v, want sizes %v", video, tt.want)
			}
			for i, r := range video {
				if r.Width != tt.want[i][0] || r.Height != tt.want[i][1] {
					t.Errorf("%s is %dx%d, want %dx%d", r.Name, r.Width, r.Height, tt.want[i][0], tt.want[i][1])
				}
				fs := testmedia.Frames(t, filepath.Join(dir, r.Name, "index.m3u8"), "v:0")
				if len(fs) != 30 || fs[0].Width != r.Width || fs[0].Height != r.Height {
					t.Errorf("%s: %d frames decoded, first %dx%d", r.Name, len(fs), fs[0].Width, fs[0].Height)
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	good := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 2})
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	tsClip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 2, Format: "mpegts"})
	tsBytes, _ := os.ReadFile(tsClip)
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(i*7919 + i>>3)
	}
	tests := []struct {
		name    string
		src     Source
		wantErr error // nil: a correct (possibly shorter) result is fine
	}{
		{"empty", Source{Data: []byte{}}, ErrInvalidInput},
		{"junk bytes", Source{Data: junk}, ErrInvalidInput},
		{"missing file", Source{URL: filepath.Join(t.TempDir(), "nope.mp4")}, ErrInvalidInput},
		{"mp4 cut in half (no moov)", Source{Data: goodBytes[:len(goodBytes)/2]}, ErrInvalidInput},
		{"mpegts cut in half", Source{Data: tsBytes[:len(tsBytes)/2], Format: "mpegts"}, nil},
		{"unknown FLV video codec", Source{Data: flvWithVideoCodec(13), Format: "flv"}, ErrUnsupportedCodec},
		{"audio only", Source{Data: flvAudioOnly(), Format: "flv"}, ErrNoVideo},
	}
	eng := New(Options{Log: quietLog()})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := eng.TranscodeSegment(ctx, tt.src, fastLadder(t), SegmentOptions{End: -1})
			if ctx.Err() != nil {
				t.Fatal("hung")
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v, want a result", err)
			}
			if len(res.Renditions) == 0 || len(res.Renditions[0].Segments) == 0 {
				t.Fatalf("empty result: %+v", res)
			}
		})
	}
}

// flvWithVideoCodec builds a tiny FLV whose one video tag uses codec id c.
func flvWithVideoCodec(c byte) []byte {
	b := []byte{'F', 'L', 'V', 1, 0x01, 0, 0, 0, 9, 0, 0, 0, 0}
	body := []byte{0x10 | c, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7}
	return append(b, flvTag(9, body)...)
}

func flvAudioOnly() []byte {
	b := []byte{'F', 'L', 'V', 1, 0x04, 0, 0, 0, 9, 0, 0, 0, 0}
	// MP3 (codec 2), 44 kHz stereo, one silent-ish frame header.
	body := append([]byte{0x2F}, 0xFF, 0xFB, 0x90, 0x64, 0, 0, 0, 0)
	return append(b, flvTag(8, body)...)
}

func flvTag(typ byte, body []byte) []byte {
	n := len(body)
	t := []byte{typ, byte(n >> 16), byte(n >> 8), byte(n), 0, 0, 0, 0, 0, 0, 0}
	t = append(t, body...)
	size := n + 11
	return append(t, byte(size>>24), byte(size>>16), byte(size>>8), byte(size))
}
