//go:build cgo

package transcodebench

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/bench"
	"github.com/livegrid/livegrid/internal/testmedia"
	"github.com/livegrid/livegrid/profiles"
	"go.uber.org/goleak"
)

const tinyLadder = `
name: tiny
gop: 1s
rungs:
  - name: 144p
    height: 144
    bitrate: 150k
    preset: ultrafast
    encoders: [software]
`

// TestSmoke runs the whole suite on a generated 320x180 clip of two
// one-second segments: one session, one rung, with the ffmpeg comparison.
func TestSmoke(t *testing.T) {
	defer goleak.VerifyNone(t)
	testmedia.Require(t, "ffmpeg", "ffprobe")
	ladder, err := profiles.Parse([]byte(tinyLadder), "test")
	if err != nil {
		t.Fatal(err)
	}
	var steps []bench.ProgressStep
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		GenerateWidth: 320, GenerateHeight: 180, GenerateFPS: 15,
		Profile: "tiny", Ladder: ladder, SegmentDuration: time.Second, Duration: 2 * time.Second,
		Sessions: []int{1}, CompareFFmpeg: true, WorkDir: t.TempDir(),
		Log:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Progress: func(s bench.ProgressStep) { steps = append(steps, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source.Segments != 2 || rep.Source.Width != 320 || rep.Source.Height != 180 {
		t.Errorf("source %+v, want two segments of 320x180", rep.Source)
	}
	if d := rep.Source.MediaS; d < 1.9 || d > 2.1 {
		t.Errorf("source media %.3fs, want 2s", d)
	}
	if len(rep.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(rep.Runs))
	}
	r := rep.Runs[0]
	if r.Sessions != 1 || r.Segments != 2 || r.SkippedSegments != 0 || r.TranscodeRatio.Count != 2 {
		t.Errorf("run %+v", r)
	}
	if r.AggregateRealtimeRatio <= 0 || r.AggregateRealtimeRatio > 1.0001 || r.WallS < r.MediaS {
		t.Errorf("one session delivered %.3f streams of real time in %.3fs for %.3fs of media", r.AggregateRealtimeRatio, r.WallS, r.MediaS)
	}
	if r.RealtimeRatio <= 0 || r.TranscodeRatio.P99 <= 0 || r.WallS < 1 || r.CPUCoresTotal <= 0 || r.RSSPeakBytes <= 0 {
		t.Errorf("implausible measurements: %+v", r)
	}
	if len(rep.Rungs) == 0 || rep.Rungs[0].Name != "144p" || !strings.Contains(strings.Join(rep.Rungs[0].Encoders, ","), "libx264") {
		t.Errorf("rungs %+v, want 144p on libx264", rep.Rungs)
	}
	if rep.Machine.Encoder != "libx264" || rep.Machine.Cores < 1 {
		t.Errorf("machine %+v", rep.Machine)
	}
	if rep.RatioVsFFmpeg == nil || *rep.RatioVsFFmpeg <= 0 || rep.FFmpeg.Method != "transcode_file" {
		t.Errorf("comparison %+v", rep.FFmpeg)
	}
	if rep.Knee.Status == bench.KneeNoRuns {
		t.Errorf("knee %+v", rep.Knee)
	}
	if len(steps) == 0 || steps[len(steps)-1].Phase != "run" || steps[len(steps)-1].Done != 2 {
		t.Errorf("progress steps %+v", steps)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
