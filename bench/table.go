package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the report as a readable table: one line per session
// count, then the knee, the encoders and the ffmpeg comparison.
func (r *TranscodeReport) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "livegrid bench transcode: ladder %s on %s, %s segments, %s per session\n",
		r.Config.Ladder, r.Source.describe(), seconds(r.Config.SegmentDurationS), seconds(r.Source.MediaS))
	fmt.Fprintf(&b, "machine: %s, %d cores, %s, encoder %s\n\n", or(r.Machine.CPUModel, "unknown CPU"), r.Machine.Cores,
		r.Machine.GoVersion, or(r.Machine.Encoder, "none"))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSIONS\tRT/SESSION\tAGGREGATE\tP50\tP95\tP99\tLATE\tSKIPPED\tCPU/SESSION\tRSS/SESSION\tPEAK RSS\tSLO")
	for i := range r.Runs {
		run := &r.Runs[i]
		slo := "ok"
		if !run.SLOMet {
			slo = "broken"
		}
		d := run.TranscodeRatio
		fmt.Fprintf(tw, "%d\t%.2fx\t%.2fx\t%.2f\t%.2f\t%.2f\t%.1f%%\t%d\t%.2f cores\t%s\t%s\t%s\n",
			run.Sessions, run.RealtimeRatio, run.AggregateRealtimeRatio, d.P50, d.P95, d.P99, run.LateShare*100, run.SkippedSegments,
			run.CPUCoresPerSession, mib(run.RSSBytesPerSession), mib(run.RSSPeakBytes), slo)
	}
	tw.Flush()
	fmt.Fprintf(&b, "\n%s\n", r.Knee.Sentence())
	if len(r.Rungs) > 0 {
		parts := make([]string, len(r.Rungs))
		for i, g := range r.Rungs {
			parts[i] = g.Name + " " + strings.Join(g.Encoders, "+")
		}
		fmt.Fprintf(&b, "encoders: %s\n", strings.Join(parts, ", "))
	}
	if c := r.FFmpeg; c != nil {
		fmt.Fprintf(&b, "ratio_vs_ffmpeg: %.2f (livegrid %.2fx real time in %s, ffmpeg %.2fx in %s; whole file, not paced; ffmpeg on %s encoders)\n",
			c.RatioVsFFmpeg, c.LivegridRealtimeRatio, seconds(c.LivegridWallS), c.FFmpegRealtimeRatio, seconds(c.FFmpegWallS), c.FFmpegEncoder)
	}
	if r.Interrupted {
		b.WriteString("interrupted: the table holds the runs that completed\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Sentence says the knee in words, for the table and the HTML page.
func (k Knee) Sentence() string {
	slo := fmt.Sprintf("p99 transcode time ≤ %.2f × segment duration", k.SLO)
	switch k.Status {
	case KneeFound:
		s := fmt.Sprintf("knee: %d %s per node (%s; broken at %d)", k.Sessions, plural(k.Sessions, "session"), slo, k.BrokenAt)
		if k.NonMonotonic {
			s += "; a larger count passed again and was ignored as noise"
		}
		return s
	case KneeNotReached:
		return fmt.Sprintf("knee: at least %d %s per node (%s held at every count measured)", k.Sessions, plural(k.Sessions, "session"), slo)
	case KneeBelowRange:
		return fmt.Sprintf("knee: none: %s broken already at %d %s", slo, k.BrokenAt, plural(k.BrokenAt, "session"))
	}
	return "knee: nothing measured"
}

func (s SourceInfo) describe() string {
	return fmt.Sprintf("%dx%d %.4g fps", s.Width, s.Height, s.FPS)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func seconds(s float64) string { return fmt.Sprintf("%.3gs", s) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
