package fanoutbench

import (
	"fmt"
	"html/template"
	"io"

	"github.com/livegrid/livegrid/bench"
)

// WriteHTML writes the report as one self-contained page: the headline,
// SVG charts of the TTFK distribution, viewers and bandwidth over time
// (and the server's CPU and RSS with --pid), the numbers, the machine and
// the configuration. No scripts, no external files.
func (r *Report) WriteHTML(w io.Writer) error {
	page := struct {
		R        *Report
		Headline string
		Charts   []template.HTML
		Load     string
		Style    template.CSS
	}{R: r, Headline: r.Headline(), Charts: r.charts(), Load: loadText(r.LoadAverage), Style: bench.PageStyle}
	if err := pageTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("fanout: writing HTML report: %w", err)
	}
	return nil
}

func (r *Report) charts() []template.HTML {
	var ttfk []float64
	for _, v := range r.Viewers {
		if v.TTFKS != nil {
			ttfk = append(ttfk, *v.TTFKS)
		}
	}
	d := r.Result.TTFK
	hist := bench.Histogram{ID: "ttfk", Title: "Time to first keyframe", XLabel: "seconds", Values: ttfk, Unit: "s",
		Marks: []bench.Mark{{X: d.P50, Label: fmt.Sprintf("p50 %.3fs", d.P50), Color: "#16794c"}, {X: d.P95, Label: fmt.Sprintf("p95 %.3fs", d.P95), Color: "#c0392b"}}}
	started := bench.Series{Name: "started", Color: "#999", Dashed: true}
	held := bench.Series{Name: "held", Color: "#1f6fb2"}
	conn := bench.Series{Name: "connected", Color: "#8fb8de", Dashed: true}
	bw := bench.Series{Name: "all viewers", Color: "#1f6fb2"}
	cpu := bench.Series{Name: "server CPU", Color: "#c0392b"}
	rss := bench.Series{Name: "server RSS", Color: "#8e44ad"}
	for _, p := range r.Timeline {
		started.Points = append(started.Points, bench.Point{X: p.TS, Y: float64(p.Started)})
		conn.Points = append(conn.Points, bench.Point{X: p.TS, Y: float64(p.Connected)})
		held.Points = append(held.Points, bench.Point{X: p.TS, Y: float64(p.Held), Tip: fmt.Sprintf("%.0fs: %d held, %d connected, %d started", p.TS, p.Held, p.Connected, p.Started)})
		mbit := p.BandwidthBytesPerS * 8 / 1e6
		bw.Points = append(bw.Points, bench.Point{X: p.TS, Y: mbit, Tip: fmt.Sprintf("%.0fs: %.2f Mbit/s", p.TS, mbit)})
		cpu.Points = append(cpu.Points, bench.Point{X: p.TS, Y: p.EdgeCPUCores, Tip: fmt.Sprintf("%.0fs: %.2f cores", p.TS, p.EdgeCPUCores)})
		mb := float64(p.EdgeRSSBytes) / (1 << 20)
		rss.Points = append(rss.Points, bench.Point{X: p.TS, Y: mb, Tip: fmt.Sprintf("%.0fs: %.1f MiB", p.TS, mb)})
	}
	out := []template.HTML{
		hist.SVG(),
		bench.LineChart{ID: "viewers", Title: "Viewers over time", XLabel: "seconds since the start", YLabel: "viewers",
			Series: []bench.Series{started, conn, held},
			HLines: []bench.HLine{{Y: float64(r.Config.Viewers), Label: fmt.Sprintf("asked %d", r.Config.Viewers), Color: "#888"}}}.SVG(),
		bench.LineChart{ID: "bandwidth", Title: "Bandwidth delivered", XLabel: "seconds since the start", YLabel: "Mbit/s",
			Series: []bench.Series{bw}}.SVG(),
	}
	if r.Edge != nil {
		out = append(out,
			bench.LineChart{ID: "edge-cpu", Title: fmt.Sprintf("Server CPU (pid %d)", r.Edge.PID), XLabel: "seconds since the start", YLabel: "cores", Series: []bench.Series{cpu}}.SVG(),
			bench.LineChart{ID: "edge-rss", Title: fmt.Sprintf("Server RSS (pid %d)", r.Edge.PID), XLabel: "seconds since the start", YLabel: "MiB", Series: []bench.Series{rss},
				HLines: []bench.HLine{{Y: float64(r.Edge.RSSBeforeBytes) / (1 << 20), Label: "before", Color: "#888"}}}.SVG())
	}
	return out
}

var pageTemplate = template.Must(template.New("page").Funcs(bench.TemplateFuncs()).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>livegrid bench fanout: {{.R.Config.Viewers}} {{.R.Config.Protocol}} viewers of {{.R.Config.Stream}}</title>
<style>{{.Style}}</style>
</head>
<body>
<h1>livegrid bench fanout</h1>
<p class="summary" id="headline">{{.Headline}}</p>
{{if .R.Interrupted}}<p class="broken">Interrupted: the numbers cover the run until it was stopped.</p>{{end}}
<div class="charts">
{{range .Charts}}{{.}}
{{end}}</div>
<h2>Result</h2>
<table class="kv">
{{with .R.Result}}<tr><td>viewers held</td><td>{{.ViewersHeld}} of {{.Viewers}} ({{pct .HeldShare}}); {{.ViewersStarted}} started</td></tr>
<tr><td>drops, errors</td><td>{{.ViewersDropped}} viewers dropped ({{.Drops}} drops); {{.Errors}} errors{{range $k, $v := .ErrorKinds}}, {{$k}} {{$v}}{{end}}</td></tr>
<tr><td>aggregate bandwidth</td><td>{{mbps .BandwidthBytesPerS}} over {{sec .WindowS}}</td></tr>
<tr><td>per-viewer bandwidth</td><td>p50 {{mbps .ViewerBandwidth.P50}}, min {{mbps .ViewerBandwidth.Min}}, max {{mbps .ViewerBandwidth.Max}}</td></tr>
<tr><td>time to first keyframe</td><td>p50 {{f3 .TTFK.P50}}s, p95 {{f3 .TTFK.P95}}s, p99 {{f3 .TTFK.P99}}s, max {{f3 .TTFK.Max}}s ({{.TTFK.Count}} viewers; {{.ViewersWithoutKeyframe}} without)</td></tr>
<tr><td>stalls</td><td>{{.Stalls}} ({{.StalledViewers}} viewers, {{f2 .StallS}}s in all)</td></tr>
<tr><td>requests</td><td>{{.Requests}}</td></tr>
{{range $k, $v := .Renditions}}<tr><td>rendition {{$k}}</td><td>{{$v}} viewers</td></tr>
{{end}}{{end}}{{with .R.Edge}}<tr><td>server (pid {{.PID}})</td><td>{{if .Error}}not read at the end: {{.Error}}{{else}}CPU {{f2 .CPUCores}} cores ({{f2 .CPUCoresBefore}} before the viewers; {{f3 .CPUCoresPer1000Viewers}} per 1000 viewers, {{f2 .CPUCoresPerGbps}} per Gbit/s); RSS {{mib .RSSBeforeBytes}} before, {{mib .RSSPeakBytes}} peak, {{mib .RSSBytesPerViewer}} per viewer{{end}}</td></tr>
{{end}}<tr><td>bench client</td><td>CPU {{f2 .R.Client.CPUCores}} cores, RSS {{mib .R.Client.RSSBytes}}, samples at most {{f2 .R.Client.MaxSampleGapS}} s apart{{if .R.Client.Starved}} <span class="broken">(the bench itself went without CPU for over 2 s: stalls and drops may be the machine's, not the server's)</span>{{end}}</td></tr>
</table>
<h2>Machine</h2>
<table class="kv">
<tr><td>CPU</td><td>{{.R.Machine.CPUModel}}</td></tr>
<tr><td>cores</td><td>{{.R.Machine.Cores}}{{.Load}}</td></tr>
<tr><td>memory</td><td>{{mib .R.Machine.MemoryBytes}}</td></tr>
<tr><td>host</td><td>{{.R.Machine.Hostname}} ({{.R.Machine.OS}}/{{.R.Machine.Arch}})</td></tr>
<tr><td>Go</td><td>{{.R.Machine.GoVersion}}</td></tr>
</table>
<h2>Configuration</h2>
<table class="kv">
<tr><td>URL</td><td>{{.R.Config.URL}}</td></tr>
<tr><td>stream</td><td>{{.R.Config.Stream}} over {{.R.Config.Protocol}}{{if .R.Config.Rendition}}, rendition {{.R.Config.Rendition}}{{if .R.Config.Audio}} with audio{{end}}{{end}}</td></tr>
<tr><td>viewers</td><td>{{.R.Config.Viewers}}, ramped over {{sec .R.Config.RampS}}, then measured for {{sec .R.Config.DurationS}}</td></tr>
<tr><td>measured</td><td>{{.R.StartedAt.Format "2006-01-02 15:04:05 MST"}} to {{.R.FinishedAt.Format "15:04:05"}}</td></tr>
<tr><td>schema</td><td>{{.R.Schema}}</td></tr>
</table>
</body>
</html>
`))
