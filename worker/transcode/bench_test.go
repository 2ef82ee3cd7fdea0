package transcode

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/livegrid/livegrid/bench/ffmpegref"
	"github.com/livegrid/livegrid/internal/testmedia"
	"github.com/livegrid/livegrid/internal/vod"
	"github.com/livegrid/livegrid/profiles"
)

// BenchmarkLadderVsFFmpeg transcodes a 1080p30 clip into the default ladder
// with the engine and, in the same iteration, with the ffmpeg command line
// (one process, split filter, same presets), and reports
// ratio_vs_ffmpeg = livegrid throughput ÷ ffmpeg throughput.
//
//	go test ./worker/transcode -run '^$' -bench LadderVsFFmpeg -benchtime 3x
func BenchmarkLadderVsFFmpeg(b *testing.B) {
	testmedia.Require(b, "ffmpeg", "ffprobe")
	src := testmedia.Make(b, testmedia.Clip{Width: 1920, Height: 1080, FPS: 30, Seconds: 10})
	ladder, err := profiles.Builtin("default")
	if err != nil {
		b.Fatal(err)
	}
	eng := New(Options{Log: quietLog()})
	ctx := context.Background()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(SchedulerProcs(runtime.NumCPU())))
	var ours, theirs time.Duration
	for i := 0; b.Loop(); i++ {
		// Alternate the order so neither side always runs on a warm cache.
		runOurs := func() {
			w, err := vod.NewWriter(b.TempDir(), 2*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if _, err := eng.TranscodeFile(ctx, Source{URL: src}, ladder, FileOptions{SegmentDuration: 2 * time.Second}, w); err != nil {
				b.Fatal(err)
			}
			if err := w.Finish(); err != nil {
				b.Fatal(err)
			}
			ours += time.Since(start)
		}
		runTheirs := func() {
			d, err := ffmpegref.Run(ctx, src, ladder, 2*time.Second, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			theirs += d
		}
		if i%2 == 0 {
			runOurs()
			runTheirs()
		} else {
			runTheirs()
			runOurs()
		}
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "livegrid_s/op")
	b.ReportMetric(theirs.Seconds()/n, "ffmpeg_s/op")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ratio_vs_ffmpeg")
	b.ReportMetric(10*n/ours.Seconds(), "livegrid_x_realtime")
}
