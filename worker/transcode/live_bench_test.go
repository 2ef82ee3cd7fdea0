package transcode

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/testmedia"
	"github.com/livegrid/livegrid/profiles"
)

// BenchmarkLiveSessionVsSegment transcodes the 2 s source segments of a 20 s
// 1080p30 stream (cut by the coordinator's segmenter) through a ladder three
// ways in each iteration, in an order that rotates between iterations:
//
//   - oneshot: TranscodeSegment per segment, fresh decoder and encoders;
//   - session: one LiveSession, low-delay encoders kept open;
//   - drain:   one LiveSession with the ladder's own encoder settings,
//     drained and reopened at every segment end (decoder and scalers warm).
//
// It reports each way's p50 and p99 transcode time per segment as a
// fraction of the segment's duration (x_seg), each rung's bitrate over the
// stream as a fraction of its target (worst rung: rate_lo and rate_hi) and
// session_vs_oneshot = session p50 ÷ oneshot p50.
//
//	go test ./worker/transcode -run '^$' -bench LiveSessionVsSegment -benchtime 2x
func BenchmarkLiveSessionVsSegment(b *testing.B) {
	src := testmedia.Make(b, testmedia.Clip{Width: 1920, Height: 1080, FPS: 30, Seconds: 20, Format: "flv"})
	segs := cutLive(b, src, 2*time.Second)
	for _, name := range []string{"default", "mobile"} {
		b.Run(name, func(b *testing.B) {
			ladder, err := profiles.Builtin(name)
			if err != nil {
				b.Fatal(err)
			}
			benchLive(b, segs, ladder)
		})
	}
}

// liveWay is one way of transcoding a stream's segments.
type liveWay struct {
	name  string
	run   func(s liveSource) (*SegmentResult, error)
	open  func()
	close func()
	times []float64 // per segment, ÷ its duration
	cpu   []float64 // CPU seconds per segment, ÷ its duration
	bytes map[string]int
}

func benchLive(b *testing.B, segs []liveSource, ladder *profiles.Ladder) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(SchedulerProcs(runtime.NumCPU())))
	eng := New(Options{Log: quietLog()})
	drainEng := New(Options{Log: quietLog()})
	drainEng.drainLive = true
	opts := LiveOptions{SegmentDuration: 2 * time.Second}
	oneshot := &liveWay{name: "oneshot", run: func(s liveSource) (*SegmentResult, error) {
		return eng.TranscodeSegment(b.Context(), Source{Data: s.data, Format: "flv"}, ladder,
			SegmentOptions{SegmentDuration: opts.SegmentDuration, End: s.end})
	}, open: func() {}, close: func() {}}
	ways := []*liveWay{oneshot}
	for _, w := range []struct {
		name string
		eng  *Engine
	}{{"session", eng}, {"drain", drainEng}} {
		var sess *LiveSession
		ways = append(ways, &liveWay{name: w.name,
			open:  func() { sess = w.eng.OpenLive(ladder, opts) },
			close: func() { sess.Close() },
			run:   func(s liveSource) (*SegmentResult, error) { return sess.Transcode(b.Context(), s.segment()) },
		})
	}
	for _, w := range ways {
		w.bytes = map[string]int{}
	}
	// One unmeasured segment each, as a worker's first segment would be.
	for _, w := range ways {
		w.open()
		if _, err := w.run(segs[0]); err != nil {
			b.Fatal(err)
		}
		w.close()
	}
	var media float64
	for i := 0; b.Loop(); i++ {
		for k := range ways {
			w := ways[(i+k)%len(ways)]
			w.open()
			for _, s := range segs {
				start, cpu0 := time.Now(), cpuTime()
				res, err := w.run(s)
				took, cpu := time.Since(start), cpuTime()-cpu0
				if err != nil {
					b.Fatalf("%s segment %d: %v", w.name, s.seq, err)
				}
				dur := float64(s.end-s.start) / videoTimescale
				w.times = append(w.times, took.Seconds()/dur)
				w.cpu = append(w.cpu, cpu.Seconds()/dur)
				for _, r := range res.Renditions {
					for _, sg := range r.Segments {
						w.bytes[r.Name] += len(sg.Data)
					}
				}
			}
			w.close()
		}
		media += float64(segs[len(segs)-1].end-segs[0].start) / videoTimescale
	}
	var report strings.Builder
	for _, w := range ways {
		p50, p99 := percentile(w.times, 0.50), percentile(w.times, 0.99)
		b.ReportMetric(p50, w.name+"_p50_x_seg")
		b.ReportMetric(p99, w.name+"_p99_x_seg")
		lo, hi := 10.0, 0.0
		cpu := percentile(w.cpu, 0.5)
		b.ReportMetric(cpu, w.name+"_cpu_p50_x_seg")
		fmt.Fprintf(&report, "\n%-8s p50 %.3f p99 %.3f x segment, CPU p50 %.3f x segment; rate/target:", w.name, p50, p99, cpu)
		for _, rung := range ladder.Rungs {
			rate := float64(w.bytes[rung.Name]*8) / media / float64(rung.Bitrate)
			lo, hi = min(lo, rate), max(hi, rate)
			fmt.Fprintf(&report, " %s %.3f", rung.Name, rate)
		}
		b.ReportMetric(lo, w.name+"_rate_lo")
		b.ReportMetric(hi, w.name+"_rate_hi")
	}
	b.ReportMetric(percentile(ways[1].times, 0.5)/percentile(oneshot.times, 0.5), "session_vs_oneshot")
	b.Log(report.String())
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// percentile is the nearest-rank percentile q (0..1) of xs.
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
