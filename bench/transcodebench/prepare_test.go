package transcodebench

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/testmedia"
)

func TestGOPFits(t *testing.T) {
	every := func(gop, end float64) []float64 {
		var kf []float64
		for x := 0.0; x <= end; x += gop {
			kf = append(kf, x)
		}
		return kf
	}
	for _, tc := range []struct {
		name string
		kf   []float64
		end  float64
		want bool
	}{
		{"GOP equals the segment", every(2, 20), 20, true},
		{"GOP halves the segment", every(1, 20), 20, true},
		{"29.97 fps GOP of 60 frames", every(60/29.97, 20), 20, true},
		{"GOP 3s is too long", every(3, 21), 21, false},
		{"GOP 1.5s gives 3s then 1.5s segments", every(1.5, 21), 21, false},
		{"GOP 2.4s is within a quarter", every(2.4, 24), 24, true},
		{"one keyframe, long clip", []float64{0}, 20, false},
		{"one keyframe, clip of one segment", []float64{0}, 1.9, true},
		{"no keyframes", nil, 20, false},
		{"starts late", []float64{1.4, 3.4, 5.4, 7.4}, 9, true},
		{"short last segment is fine", []float64{0, 2, 4}, 4.5, true},
		{"irregular: a missing keyframe", []float64{0, 2, 6, 8}, 9, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gopFits(tc.kf, tc.end, 2); got != tc.want {
				t.Errorf("gopFits = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPrepareInput(t *testing.T) {
	testmedia.Require(t, "ffmpeg", "ffprobe")
	for _, tc := range []struct {
		name      string
		clip      testmedia.Clip
		duration  time.Duration
		reencoded bool
		segments  int
	}{
		{"GOP fits: stream copy from MP4", testmedia.Clip{Width: 320, Height: 180, FPS: 15, Seconds: 4, GOP: 15}, 0, false, 4},
		{"GOP of 3s: re-encoded", testmedia.Clip{Width: 320, Height: 180, FPS: 15, Seconds: 4, GOP: 45}, 0, true, 4},
		{"cut to the duration", testmedia.Clip{Width: 320, Height: 180, FPS: 15, Seconds: 4, GOP: 15, Format: "flv"}, 2 * time.Second, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{Input: testmedia.Make(t, tc.clip), SegmentDuration: time.Second, Duration: tc.duration,
				Log: slog.New(slog.DiscardHandler)}
			src, err := prepare(context.Background(), cfg, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if src.info.Reencoded != tc.reencoded || len(src.segments) != tc.segments || src.info.Width != 320 || !src.info.HasAudio {
				t.Errorf("source %+v with %d segments, want reencoded %v and %d segments", src.info, len(src.segments), tc.reencoded, tc.segments)
			}
			for i, s := range src.segments {
				if d := s.media.Seconds(); d < 0.9 || d > 1.1 {
					t.Errorf("segment %d lasts %.3fs, want 1s", i, d)
				}
				if want := time.Duration(i) * time.Second; s.offset < want-50*time.Millisecond || s.offset > want+50*time.Millisecond {
					t.Errorf("segment %d released at %s, want %s", i, s.offset, want)
				}
				if last := i == len(src.segments)-1; (!last && s.end <= s.start) || len(s.data) == 0 {
					t.Errorf("segment %d: end %d, %d bytes", i, s.end, len(s.data))
				}
			}
		})
	}
}
