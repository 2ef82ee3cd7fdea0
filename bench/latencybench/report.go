package latencybench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/livegrid/livegrid/bench"
)

// Schema names the JSON layout of a Report. Within v1 fields are only
// added; a field is never removed or changed in meaning.
const Schema = "livegrid.bench.latency/v1"

// Report is the result of one `livegrid bench latency` run.
// bench/README.md documents every field.
type Report struct {
	Schema      string        `json:"schema"`
	Suite       string        `json:"suite"`
	StartedAt   time.Time     `json:"started_at"`
	FinishedAt  time.Time     `json:"finished_at"`
	Machine     bench.Machine `json:"machine"`
	LoadAverage []float64     `json:"load_average,omitempty"` // 1, 5, 15 min, at the start
	Config      ReportConfig  `json:"config"`
	Publish     PublishInfo   `json:"publish"`
	Results     []Result      `json:"results"`
	Samples     []Sample      `json:"samples"`
	Interrupted bool          `json:"interrupted,omitempty"`
}

// ReportConfig is what the run was asked to do.
type ReportConfig struct {
	RTMP      string  `json:"rtmp_url"` // rtmp://host:port/app
	HTTP      string  `json:"http_url"`
	Edge      string  `json:"edge_url,omitempty"`
	Stream    string  `json:"stream"`
	DurationS float64 `json:"duration_s"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	FPS       int     `json:"fps"`
	GOPS      float64 `json:"gop_s"`
	PollS     float64 `json:"poll_s"`
	Rendition string  `json:"rendition,omitempty"` // as asked; results name the one measured
}

// PublishInfo is what the publisher sent.
type PublishInfo struct {
	Tags        int     `json:"tags"`
	VideoFrames int     `json:"video_frames"`
	Keyframes   int     `json:"keyframes"`
	MediaS      float64 `json:"media_s"` // last tag's timestamp − first's
	WallS       float64 `json:"wall_s"`
	// MaxSendLagS is the most a tag left after its due time (start + its
	// timestamp): how well the publisher kept real time.
	MaxSendLagS float64 `json:"max_send_lag_s"`
}

// Result is one protocol at one location.
type Result struct {
	Protocol  string `json:"protocol"` // flv, hls or dash
	Location  string `json:"location"` // origin or edge
	URL       string `json:"url"`
	Rendition string `json:"rendition,omitempty"` // HLS/DASH: the one measured
	Samples   int    `json:"samples"`
	// Latency is publish → playable: FLV, a keyframe tag's receive time −
	// its send time; HLS/DASH, a segment's download-complete time − the
	// send time of its first frame.
	Latency     bench.Distribution `json:"latency_s"`
	LatencyMinS float64            `json:"latency_min_s"`
	// Available is when the media was first offered: FLV, as latency;
	// HLS/DASH, when the playlist or MPD first listed the segment − the
	// send time of its first frame.
	Available bench.Distribution `json:"available_s"`
	// TimestampOffsetMS is the server's timeline minus the source's,
	// calibrated on segment 0; 0 when they agree (livegrid keeps source
	// timestamps).
	TimestampOffsetMS float64 `json:"timestamp_offset_ms"`
	Unmatched         int     `json:"unmatched"`                  // media whose timestamp matched no sent frame
	CachedKeyframes   int     `json:"cached_keyframes,omitempty"` // FLV: sent before the request (GOP cache), not sampled
	Errors            int     `json:"errors"`
	LastError         string  `json:"last_error,omitempty"`
	// Complete is set when media past the window arrived before the suite
	// stopped waiting: every sample inside the window had its chance.
	Complete bool `json:"complete"`
}

// Sample is one measured frame or segment.
type Sample struct {
	Protocol   string    `json:"protocol"`
	Location   string    `json:"location"`
	Seq        int64     `json:"seq"`          // segment number; -1 for FLV
	MediaTimeS float64   `json:"media_time_s"` // the first frame's PTS on the source timeline
	SentAt     time.Time `json:"sent_at"`
	AvailableS float64   `json:"available_s"`
	LatencyS   float64   `json:"latency_s"`
	Bytes      int       `json:"bytes,omitempty"` // the segment's size
}

// result summarises an observer once it has stopped.
func (o *observer) result() Result {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := Result{Protocol: o.protocol, Location: o.location, URL: o.url, Rendition: o.rendition, Samples: len(o.samples),
		TimestampOffsetMS: o.cal.offsetMS, Unmatched: o.unmatched, CachedKeyframes: o.cached,
		Errors: o.errors, LastError: o.lastErr, Complete: o.complete}
	r.Latency, r.LatencyMinS, r.Available = summarize(o.samples)
	return r
}

// summarize returns the latency distribution, its minimum and the
// availability distribution of samples.
func summarize(samples []Sample) (latency bench.Distribution, minLatency float64, available bench.Distribution) {
	lat := make([]float64, len(samples))
	avail := make([]float64, len(samples))
	for i, s := range samples {
		lat[i], avail[i] = s.LatencyS, s.AvailableS
	}
	if len(lat) > 0 {
		minLatency = slices.Min(lat)
	}
	return bench.Summarize(lat), minLatency, bench.Summarize(avail)
}

// Result returns the result of protocol at location.
func (r *Report) Result(protocol, location string) (Result, bool) {
	for _, x := range r.Results {
		if x.Protocol == protocol && x.Location == location {
			return x, true
		}
	}
	return Result{}, false
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error { return bench.WriteReportJSON(w, "latency", r) }

// ReadReport reads a report written by WriteJSON; another schema is
// refused with bench.ErrSchema.
func ReadReport(rd io.Reader) (*Report, error) {
	var r Report
	if err := bench.ReadReportJSON(rd, "latency", &r, func() string { return r.Schema }, Schema); err != nil {
		return nil, err
	}
	return &r, nil
}

// Headline says the p50 of each result in one line.
func (r *Report) Headline() string {
	parts := make([]string, 0, len(r.Results))
	for _, x := range r.Results {
		name := x.Protocol
		if x.Location != LocationOrigin {
			name = x.Location + " " + name
		}
		if x.Samples == 0 {
			parts = append(parts, name+" no samples")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s p50 %.3fs", name, x.Latency.P50))
	}
	s := "publish → playable: " + strings.Join(parts, ", ")
	if r.Interrupted {
		s += " (interrupted)"
	}
	return s
}

// WriteTable writes the report for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "livegrid bench latency: stream %q, %dx%d %d fps, GOP %gs, %gs measured, polled every %gs\n",
		c.Stream, c.Width, c.Height, c.FPS, c.GOPS, c.DurationS, c.PollS)
	fmt.Fprintf(&b, "machine: %s, %d cores, %s%s\n", orUnknown(r.Machine.CPUModel), r.Machine.Cores, r.Machine.GoVersion, loadText(r.LoadAverage))
	fmt.Fprintf(&b, "published %d video frames (%d keyframes) over %.1fs; tags left at most %.0f ms late\n\n",
		r.Publish.VideoFrames, r.Publish.Keyframes, r.Publish.WallS, r.Publish.MaxSendLagS*1000)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROTOCOL\tLOCATION\tRENDITION\tSAMPLES\tP50\tP95\tMAX\tMIN\tLISTED P50\tOFFSET\tERRORS")
	for _, x := range r.Results {
		listed := "-"
		if x.Protocol != ProtocolFLV {
			listed = fmt.Sprintf("%.3fs", x.Available.P50)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.3fs\t%.3fs\t%.3fs\t%.3fs\t%s\t%.0f ms\t%d\n", x.Protocol, x.Location, or(x.Rendition, "source"), x.Samples,
			x.Latency.P50, x.Latency.P95, x.Latency.Max, x.LatencyMinS, listed, x.TimestampOffsetMS, x.Errors)
	}
	tw.Flush()
	b.WriteString("\n" + r.Headline() + "\n")
	b.WriteString("FLV: keyframe received − sent; HLS/DASH: segment downloaded − its first frame sent (listed: first seen in the playlist/MPD − sent)\n")
	for _, x := range r.Results {
		if !x.Complete {
			fmt.Fprintf(&b, "%s at %s: the window's last media never arrived%s\n", x.Protocol, x.Location, lastErrText(x.LastError))
		} else if x.Unmatched > 0 {
			fmt.Fprintf(&b, "%s at %s: %d frames or segments matched no sent frame\n", x.Protocol, x.Location, x.Unmatched)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func lastErrText(s string) string {
	if s == "" {
		return ""
	}
	return " (last error: " + s + ")"
}

func loadText(l []float64) string {
	if len(l) < 3 {
		return ""
	}
	return fmt.Sprintf("; load average %.2f %.2f %.2f at the start", l[0], l[1], l[2])
}

func orUnknown(s string) string { return or(s, "unknown CPU") }
