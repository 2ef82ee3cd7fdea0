package fanoutbench

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/livegrid/livegrid/bench"
)

// Schema names the JSON layout of a Report. Within v1 fields are only
// added; a field is never removed or changed in meaning.
const Schema = "livegrid.bench.fanout/v1"

// Report is the result of one `livegrid bench fanout` run. bench/README.md
// documents every field.
type Report struct {
	Schema     string        `json:"schema"`
	Suite      string        `json:"suite"`
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt time.Time     `json:"finished_at"`
	Machine    bench.Machine `json:"machine"`
	// LoadAverage is the machine's 1, 5 and 15 minute load at the start:
	// what else was running.
	LoadAverage []float64       `json:"load_average,omitempty"`
	Config      ReportConfig    `json:"config"`
	Result      Result          `json:"result"`
	Edge        *EdgeProcess    `json:"edge_process,omitempty"`
	Client      ClientProcess   `json:"client"`
	Timeline    []TimelinePoint `json:"timeline"`
	Viewers     []ViewerResult  `json:"viewers"`
	Interrupted bool            `json:"interrupted,omitempty"`
}

// ReportConfig is what the run was asked to do.
type ReportConfig struct {
	URL       string  `json:"url"`
	Stream    string  `json:"stream"`
	Protocol  string  `json:"protocol"`
	Viewers   int     `json:"viewers"`
	DurationS float64 `json:"duration_s"`
	RampS     float64 `json:"ramp_s"`
	PID       int     `json:"pid,omitempty"`
	Rendition string  `json:"rendition,omitempty"` // HLS: round-robin, lowest or a name
	Audio     bool    `json:"audio,omitempty"`     // HLS: audio rendition followed too
	StallGapS float64 `json:"stall_gap_s"`
}

// Result is the run's measurement over its window: from the moment every
// viewer had started to the end.
type Result struct {
	Viewers        int            `json:"viewers"`         // asked for
	ViewersStarted int            `json:"viewers_started"` // fewer only when interrupted during the ramp
	ViewersHeld    int            `json:"viewers_held"`    // connected and getting media at the end (see held)
	HeldShare      float64        `json:"held_share"`      // held ÷ asked
	ViewersDropped int            `json:"viewers_dropped"` // lost their session at least once
	Drops          int            `json:"drops"`           // sessions lost, all viewers
	Errors         int            `json:"errors"`
	ErrorKinds     map[string]int `json:"error_kinds,omitempty"`
	Requests       int64          `json:"requests"` // HTTP requests made, the whole run
	// ViewersWithoutKeyframe never got their first keyframe.
	ViewersWithoutKeyframe int     `json:"viewers_without_keyframe"`
	WindowStartS           float64 `json:"window_start_s"` // since the start
	WindowS                float64 `json:"window_s"`
	Bytes                  int64   `json:"bytes"`        // body bytes received, the whole run
	WindowBytes            int64   `json:"window_bytes"` // in the window
	// BandwidthBytesPerS is window_bytes ÷ window_s: what the server
	// delivered to all viewers together.
	BandwidthBytesPerS float64 `json:"bandwidth_bytes_per_s"`
	// ViewerBandwidth is each started viewer's bytes in the window ÷ the
	// window.
	ViewerBandwidth RateStats `json:"viewer_bandwidth_bytes_per_s"`
	// TTFK is the time to first keyframe: FLV, from the request to the
	// first video keyframe tag; HLS, from the multivariant playlist request
	// to the last byte of the first media segment. One per viewer.
	TTFK     bench.Distribution `json:"ttfk_s"`
	TTFKMinS float64            `json:"ttfk_min_s"`
	// Stalls: FLV, a gap over stall_gap_s between tags; HLS, a segment not
	// listed by its due time (the previous one's arrival + its duration +
	// half a target duration). One outage is one stall.
	Stalls          int            `json:"stalls"`
	StalledViewers  int            `json:"stalled_viewers"`
	StallS          float64        `json:"stall_s"` // summed over viewers
	SkippedSegments int            `json:"skipped_segments,omitempty"`
	Renditions      map[string]int `json:"renditions,omitempty"` // HLS: viewers per rendition
}

// RateStats summarises per-viewer rates, in bytes per second.
type RateStats struct {
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

// EdgeProcess is the server process (--pid) sampled from /proc.
type EdgeProcess struct {
	PID int `json:"pid"`
	// CPUCores is its utime + stime over the window ÷ the window.
	CPUCores float64 `json:"cpu_cores"`
	// CPUCoresBefore is the same over the baseline before the first viewer
	// (0 without one): what the server spends with no viewer, such as a
	// standalone node's transcoding.
	CPUCoresBefore float64 `json:"cpu_cores_before"`
	BaselineS      float64 `json:"baseline_s"`
	// CPUCoresPer1000Viewers is (cpu_cores − cpu_cores_before) ÷ viewers ×
	// 1000: what viewers cost.
	CPUCoresPer1000Viewers float64 `json:"cpu_cores_per_1000_viewers"`
	// CPUCoresPerGbps is (cpu_cores − cpu_cores_before) ÷ the aggregate
	// bandwidth in Gbit/s: what delivery costs, whatever the bitrate.
	CPUCoresPerGbps float64 `json:"cpu_cores_per_gbps"`
	RSSBeforeBytes  int64   `json:"rss_before_bytes"` // before the first viewer
	RSSPeakBytes    int64   `json:"rss_peak_bytes"`   // highest sample in the window
	RSSMeanBytes    int64   `json:"rss_mean_bytes"`   // mean of the window's samples
	// RSSBytesPerViewer is (rss_peak_bytes − rss_before_bytes) ÷ viewers.
	RSSBytesPerViewer int64  `json:"rss_bytes_per_viewer"`
	Error             string `json:"error,omitempty"` // set when it could not be read at the end
}

// ClientProcess is the bench itself over the window: on one machine with
// the server, its CPU is taken from the server's.
type ClientProcess struct {
	CPUCores float64 `json:"cpu_cores"`
	RSSBytes int64   `json:"rss_bytes"`
	// MaxSampleGapS is the longest time between two timeline samples. Well
	// above the sampling step, the bench itself was starved of CPU: viewers
	// could not read either, so its stall figures are suspect.
	MaxSampleGapS float64 `json:"max_sample_gap_s"`
}

// TimelinePoint is one sample of the run.
type TimelinePoint struct {
	TS                 float64 `json:"t_s"` // since the start
	Started            int     `json:"viewers_started"`
	Connected          int     `json:"viewers_connected"`
	Held               int     `json:"viewers_held"`
	BandwidthBytesPerS float64 `json:"bandwidth_bytes_per_s"` // since the previous point
	EdgeCPUCores       float64 `json:"edge_cpu_cores,omitempty"`
	EdgeRSSBytes       int64   `json:"edge_rss_bytes,omitempty"`
}

// ViewerResult is one viewer.
type ViewerResult struct {
	ID                 int      `json:"id"`
	Rendition          string   `json:"rendition,omitempty"`
	StartS             float64  `json:"start_s"`
	TTFKS              *float64 `json:"ttfk_s,omitempty"`
	Bytes              int64    `json:"bytes"`
	BandwidthBytesPerS float64  `json:"bandwidth_bytes_per_s"` // in the window
	Stalls             int      `json:"stalls"`
	StallS             float64  `json:"stall_s"`
	Drops              int      `json:"drops"`
	Errors             int      `json:"errors"`
	SkippedSegments    int      `json:"skipped_segments,omitempty"`
	Held               bool     `json:"held"`
}

// Starved reports whether the bench's own sampler was held up by more
// than two seconds: the machine, not the server, stalled the viewers.
func (c ClientProcess) Starved() bool { return c.MaxSampleGapS > 3 }

// baseline is the server's CPU measured before the first viewer.
type baseline struct {
	cores  float64
	length time.Duration
}

// measure is what a run recorded, before the arithmetic.
type measure struct {
	asked      int
	protocol   string
	stallGap   time.Duration
	start      time.Time // the run's start, for viewers' start_s
	window     time.Duration
	end        time.Time        // the window's end, when viewers were read
	startBytes map[int]int64    // each viewer's bytes at the window's start
	viewers    []viewerSnapshot // read at end
	errors     map[string]int
	requests   int64
}

// summarize turns the measurement into the report's numbers.
func (m measure) summarize() (Result, []ViewerResult) {
	res := Result{Viewers: m.asked, ViewersStarted: len(m.viewers), WindowS: m.window.Seconds(), Requests: m.requests}
	if len(m.errors) > 0 {
		res.ErrorKinds = m.errors
	}
	for _, n := range m.errors {
		res.Errors += n
	}
	var ttfk, rates []float64
	out := make([]ViewerResult, 0, len(m.viewers))
	for _, s := range m.viewers {
		stalls, stall := s.Stalls, s.StallTime
		switch {
		case !s.StalledSince.IsZero(): // an HLS segment still overdue
			stall += m.end.Sub(s.StalledSince)
		case m.protocol == ProtocolFLV && s.Connected && !s.LastData.IsZero() && m.end.Sub(s.LastData) > m.stallGap:
			stalls++ // an FLV gap still open
			stall += m.end.Sub(s.LastData)
		}
		wb := s.Bytes - m.startBytes[s.ID]
		rate := 0.0
		if m.window > 0 {
			rate = float64(wb) / m.window.Seconds()
		}
		vr := ViewerResult{ID: s.ID, Rendition: s.Rendition, Bytes: s.Bytes, BandwidthBytesPerS: rate,
			Stalls: stalls, StallS: stall.Seconds(), Drops: s.Drops, Errors: s.Errors, SkippedSegments: s.Skipped, Held: s.Held}
		if !m.start.IsZero() && !s.StartedAt.IsZero() {
			vr.StartS = s.StartedAt.Sub(m.start).Seconds()
		}
		if s.HasTTFK {
			v := s.TTFK.Seconds()
			vr.TTFKS = &v
			ttfk = append(ttfk, v)
		}
		out = append(out, vr)
		rates = append(rates, rate)
		res.Bytes += s.Bytes
		res.WindowBytes += wb
		res.Stalls += stalls
		res.StallS += stall.Seconds()
		res.Drops += s.Drops
		res.SkippedSegments += s.Skipped
		if stalls > 0 {
			res.StalledViewers++
		}
		if s.Drops > 0 {
			res.ViewersDropped++
		}
		if s.Held {
			res.ViewersHeld++
		}
		if s.Rendition != "" {
			if res.Renditions == nil {
				res.Renditions = map[string]int{}
			}
			res.Renditions[s.Rendition]++
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if m.asked > 0 {
		res.HeldShare = float64(res.ViewersHeld) / float64(m.asked)
	}
	if m.window > 0 {
		res.BandwidthBytesPerS = float64(res.WindowBytes) / m.window.Seconds()
	}
	res.ViewerBandwidth = rateStats(rates)
	res.TTFK = bench.Summarize(ttfk)
	res.TTFKMinS = bench.Percentile(ttfk, 0)
	res.ViewersWithoutKeyframe = len(m.viewers) - len(ttfk)
	return res, out
}

func rateStats(v []float64) RateStats {
	if len(v) == 0 {
		return RateStats{}
	}
	d := bench.Summarize(v)
	return RateStats{Min: slices.Min(v), P50: d.P50, Mean: d.Mean, Max: d.Max}
}

// edgeProcess sums up the server process: CPU from the window's first and
// last samples, RSS from the timeline points inside the window and the
// last sample.
func edgeProcess(pid int, first, last bench.ProcSample, lastErr error, points []TimelinePoint, winStartS float64, win time.Duration, viewers int, bandwidth float64, base baseline) *EdgeProcess {
	e := &EdgeProcess{PID: pid, RSSBeforeBytes: first.RSSBytes, CPUCoresBefore: base.cores, BaselineS: base.length.Seconds()}
	if lastErr != nil {
		e.Error = lastErr.Error()
		return e
	}
	if win > 0 {
		e.CPUCores = (last.CPU - first.CPU).Seconds() / win.Seconds()
	}
	if viewers > 0 {
		e.CPUCoresPer1000Viewers = max(e.CPUCores-e.CPUCoresBefore, 0) / float64(viewers) * 1000
	}
	if bandwidth > 0 {
		e.CPUCoresPerGbps = max(e.CPUCores-e.CPUCoresBefore, 0) / (bandwidth * 8 / 1e9)
	}
	peak, sum, n := last.RSSBytes, last.RSSBytes, int64(1)
	for _, p := range points {
		if p.TS >= winStartS && p.EdgeRSSBytes > 0 {
			peak = max(peak, p.EdgeRSSBytes)
			sum += p.EdgeRSSBytes
			n++
		}
	}
	e.RSSPeakBytes, e.RSSMeanBytes = peak, sum/n
	if viewers > 0 {
		e.RSSBytesPerViewer = max(peak-first.RSSBytes, 0) / int64(viewers)
	}
	return e
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error { return bench.WriteReportJSON(w, "fanout", r) }

// ReadReport reads a report written by WriteJSON; another schema is
// refused with bench.ErrSchema.
func ReadReport(rd io.Reader) (*Report, error) {
	var r Report
	if err := bench.ReadReportJSON(rd, "fanout", &r, func() string { return r.Schema }, Schema); err != nil {
		return nil, err
	}
	return &r, nil
}

// Headline says the result in one line, for the table and the page.
func (r *Report) Headline() string {
	res := r.Result
	s := fmt.Sprintf("%d of %d %s viewers held; %s delivered; TTFK p50 %.3fs, p99 %.3fs; %d %s",
		res.ViewersHeld, res.Viewers, r.Config.Protocol, bench.Mbps(res.BandwidthBytesPerS), res.TTFK.P50, res.TTFK.P99,
		res.Stalls, bench.Plural(res.Stalls, "stall"))
	if r.Interrupted {
		s += " (interrupted)"
	}
	return s
}

// WriteTable writes the report for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	c, res := r.Config, r.Result
	fmt.Fprintf(&b, "livegrid bench fanout: %d %s viewers of %q at %s, ramp %gs, window %.1fs\n",
		c.Viewers, c.Protocol, c.Stream, c.URL, c.RampS, res.WindowS)
	fmt.Fprintf(&b, "machine: %s, %d cores, %s%s\n\n", orUnknown(r.Machine.CPUModel), r.Machine.Cores, r.Machine.GoVersion, loadText(r.LoadAverage))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VIEWERS\tHELD\tDROPPED\tERRORS\tAGGREGATE\tPER VIEWER P50\tMIN\tTTFK P50\tP95\tP99\tSTALLS\tSTALL TIME")
	fmt.Fprintf(tw, "%d\t%d/%d\t%d\t%d\t%s\t%s\t%s\t%.3fs\t%.3fs\t%.3fs\t%d\t%.1fs\n",
		res.ViewersStarted, res.ViewersHeld, res.Viewers, res.ViewersDropped, res.Errors,
		bench.Mbps(res.BandwidthBytesPerS), bench.Mbps(res.ViewerBandwidth.P50), bench.Mbps(res.ViewerBandwidth.Min),
		res.TTFK.P50, res.TTFK.P95, res.TTFK.P99, res.Stalls, res.StallS)
	tw.Flush()
	b.WriteString("\n" + r.Headline() + "\n")
	if len(res.ErrorKinds) > 0 {
		fmt.Fprintf(&b, "errors: %s\n", kindsText(res.ErrorKinds))
	}
	if len(res.Renditions) > 0 {
		fmt.Fprintf(&b, "renditions: %s\n", kindsText(res.Renditions))
	}
	if res.ViewersWithoutKeyframe > 0 {
		fmt.Fprintf(&b, "viewers without a keyframe: %d\n", res.ViewersWithoutKeyframe)
	}
	if e := r.Edge; e != nil {
		if e.Error != "" {
			fmt.Fprintf(&b, "server pid %d: could not be read at the end: %s\n", e.PID, e.Error)
		} else {
			fmt.Fprintf(&b, "server pid %d: CPU %.2f cores (%.2f before the viewers; %.3f per 1000 viewers, %.2f per Gbit/s), RSS %s before, %s peak, %.1f KiB per viewer\n",
				e.PID, e.CPUCores, e.CPUCoresBefore, e.CPUCoresPer1000Viewers, e.CPUCoresPerGbps, bench.MiB(e.RSSBeforeBytes), bench.MiB(e.RSSPeakBytes), float64(e.RSSBytesPerViewer)/1024)
		}
	}
	fmt.Fprintf(&b, "bench client: CPU %.2f cores, RSS %s, samples at most %.1fs apart\n", r.Client.CPUCores, bench.MiB(r.Client.RSSBytes), r.Client.MaxSampleGapS)
	if r.Client.Starved() {
		b.WriteString("warning: the bench itself went without CPU for over 2 s; stalls and drops may be the machine's, not the server's\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func kindsText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func loadText(l []float64) string {
	if len(l) < 3 {
		return ""
	}
	return fmt.Sprintf("; load average %.2f %.2f %.2f at the start", l[0], l[1], l[2])
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown CPU"
	}
	return s
}
