package latencybench

import (
	"fmt"
	"html/template"
	"io"

	"github.com/livegrid/livegrid/bench"
)

// colors per protocol, for the charts; an edge's are lighter.
var colors = map[string][2]string{ProtocolFLV: {"#16794c", "#6fbf8f"}, ProtocolHLS: {"#1f6fb2", "#7fb0dc"}, ProtocolDASH: {"#c0392b", "#e39b8f"}}

func color(protocol, location string) string {
	if location == LocationEdge {
		return colors[protocol][1]
	}
	return colors[protocol][0]
}

// WriteHTML writes the report as one self-contained page: the headline,
// one latency histogram per protocol and location, latency against media
// time for all of them, the table, the machine and the configuration.
func (r *Report) WriteHTML(w io.Writer) error {
	page := struct {
		R        *Report
		Headline string
		Charts   []template.HTML
		Load     string
		Style    template.CSS
	}{R: r, Headline: r.Headline(), Charts: r.charts(), Load: loadText(r.LoadAverage), Style: bench.PageStyle}
	if err := pageTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("latency: writing HTML report: %w", err)
	}
	return nil
}

func (r *Report) charts() []template.HTML {
	var out []template.HTML
	over := bench.LineChart{ID: "over-time", Title: "Latency over the stream", XLabel: "media time (s)", YLabel: "publish → playable (s)"}
	for _, x := range r.Results {
		var vals []float64
		s := bench.Series{Name: x.Location + " " + x.Protocol, Color: color(x.Protocol, x.Location), Dashed: x.Protocol == ProtocolDASH}
		for _, smp := range r.Samples {
			if smp.Protocol == x.Protocol && smp.Location == x.Location {
				vals = append(vals, smp.LatencyS)
				s.Points = append(s.Points, bench.Point{X: smp.MediaTimeS, Y: smp.LatencyS,
					Tip: fmt.Sprintf("%s %s at %.2fs: %.3fs", x.Location, x.Protocol, smp.MediaTimeS, smp.LatencyS)})
			}
		}
		over.Series = append(over.Series, s)
		d := x.Latency
		out = append(out, bench.Histogram{
			ID: "latency-" + x.Location + "-" + x.Protocol, Title: fmt.Sprintf("%s at %s: publish → playable", x.Protocol, x.Location),
			XLabel: "seconds", Values: vals, Unit: "s", Color: color(x.Protocol, x.Location),
			Marks: []bench.Mark{{X: d.P50, Label: fmt.Sprintf("p50 %.3fs", d.P50), Color: "#333"}, {X: d.P95, Label: fmt.Sprintf("p95 %.3fs", d.P95), Color: "#b00020"}},
		}.SVG())
	}
	return append(out, over.SVG())
}

var pageTemplate = template.Must(template.New("page").Funcs(bench.TemplateFuncs()).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>livegrid bench latency: {{.R.Config.Stream}}</title>
<style>{{.Style}}</style>
</head>
<body>
<h1>livegrid bench latency</h1>
<p class="summary" id="headline">{{.Headline}}</p>
{{if .R.Interrupted}}<p class="broken">Interrupted: the numbers cover the run until it was stopped.</p>{{end}}
<table>
<tr><th>protocol</th><th>location</th><th>rendition</th><th>samples</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>min</th><th>listed p50</th><th>offset</th><th>errors</th><th>complete</th></tr>
{{range .R.Results}}<tr><td>{{.Protocol}}</td><td>{{.Location}}</td><td>{{or .Rendition "source"}}</td><td>{{.Samples}}</td><td>{{f3 .Latency.P50}}s</td><td>{{f3 .Latency.P95}}s</td><td>{{f3 .Latency.P99}}s</td><td>{{f3 .Latency.Max}}s</td><td>{{f3 .LatencyMinS}}s</td><td>{{if eq .Protocol "flv"}}-{{else}}{{f3 .Available.P50}}s{{end}}</td><td>{{.TimestampOffsetMS}} ms</td><td>{{.Errors}}</td><td>{{if .Complete}}<span class="ok">yes</span>{{else}}<span class="broken">no</span>{{end}}</td></tr>
{{end}}</table>
<p>Publish → playable. HTTP-FLV: a keyframe tag's receive time − the instant the publisher sent it (keyframes the server held in its GOP cache before the request are left out). HLS and DASH: the time a new segment finished downloading − the instant its first frame was sent; <i>listed</i> is when the playlist or MPD first named it. Playlists are polled every {{.R.Config.PollS}} s, which bounds the HLS/DASH resolution. Percentiles are nearest-rank.</p>
<div class="charts">
{{range .Charts}}{{.}}
{{end}}</div>
<h2>Publisher</h2>
<table class="kv">
<tr><td>sent</td><td>{{.R.Publish.VideoFrames}} video frames, {{.R.Publish.Keyframes}} keyframes, {{.R.Publish.Tags}} tags, {{sec .R.Publish.MediaS}} of media in {{sec .R.Publish.WallS}}</td></tr>
<tr><td>pacing</td><td>tags left at most {{f3 .R.Publish.MaxSendLagS}} s after their due time</td></tr>
</table>
<h2>Machine</h2>
<table class="kv">
<tr><td>CPU</td><td>{{.R.Machine.CPUModel}}</td></tr>
<tr><td>cores</td><td>{{.R.Machine.Cores}}{{.Load}}</td></tr>
<tr><td>host</td><td>{{.R.Machine.Hostname}} ({{.R.Machine.OS}}/{{.R.Machine.Arch}})</td></tr>
<tr><td>ffmpeg</td><td>{{.R.Machine.FFmpegVersion}}</td></tr>
</table>
<h2>Configuration</h2>
<table class="kv">
<tr><td>publish</td><td>{{.R.Config.RTMP}}/{{.R.Config.Stream}}</td></tr>
<tr><td>origin</td><td>{{.R.Config.HTTP}}</td></tr>
{{if .R.Config.Edge}}<tr><td>edge</td><td>{{.R.Config.Edge}}</td></tr>{{end}}
<tr><td>stream</td><td>{{.R.Config.Width}}×{{.R.Config.Height}} {{.R.Config.FPS}} fps, keyframe every {{.R.Config.GOPS}} s, {{sec .R.Config.DurationS}} measured</td></tr>
<tr><td>measured</td><td>{{.R.StartedAt.Format "2006-01-02 15:04:05 MST"}} to {{.R.FinishedAt.Format "15:04:05"}}</td></tr>
<tr><td>schema</td><td>{{.R.Schema}}</td></tr>
</table>
</body>
</html>
`))
