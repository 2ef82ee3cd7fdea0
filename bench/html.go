package bench

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strings"
)

// WriteHTML writes the report as one self-contained HTML page: no scripts,
// no external files, two inline SVG charts (throughput and p99 against
// sessions) with the SLO line and the knee marked.
func (r *TranscodeReport) WriteHTML(w io.Writer) error {
	page := struct {
		R                   *TranscodeReport
		Knee                string
		Throughput, Latency template.HTML
	}{R: r, Knee: r.Knee.Sentence(), Throughput: throughputChart(r).svg(), Latency: latencyChart(r).svg()}
	if err := pageTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("bench: writing HTML report: %w", err)
	}
	return nil
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"pct":  func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"f2":   func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"mib":  mib,
	"sec":  seconds,
	"join": func(s []string) string { return strings.Join(s, " + ") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>livegrid bench transcode: {{.R.Config.Ladder}} on {{.R.Machine.CPUModel}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}
th,td{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.kv td{text-align:left}.broken{color:#b00020;font-weight:600}.ok{color:#16794c}
.knee-row{background:#eaf6ee}.summary{font-size:1.1em;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:1em}svg{background:#fff;border:1px solid #ddd}
</style>
</head>
<body>
<h1>livegrid bench transcode</h1>
<p class="summary" id="knee">{{.Knee}}</p>
{{if .R.Interrupted}}<p class="broken">Interrupted: only the runs that completed are shown.</p>{{end}}
{{with .R.FFmpeg}}<p>ratio_vs_ffmpeg: <b>{{f2 .RatioVsFFmpeg}}</b> (livegrid {{f2 .LivegridRealtimeRatio}}× real time, ffmpeg {{f2 .FFmpegRealtimeRatio}}×; whole file, not paced; method {{.Method}}; ffmpeg on {{.FFmpegEncoder}} encoders)</p>{{end}}
<div class="charts">
{{.Throughput}}
{{.Latency}}
</div>
<h2>Runs</h2>
<table>
<tr><th>sessions</th><th>real-time ratio per session</th><th>aggregate</th><th>p50</th><th>p95</th><th>p99</th><th>late</th><th>skipped</th><th>CPU per session</th><th>RSS per session</th><th>peak RSS</th><th>SLO</th></tr>
{{range .R.Runs}}<tr{{if eq .Sessions $.R.Knee.Sessions}} class="knee-row"{{end}}><td>{{.Sessions}}</td><td>{{f2 .RealtimeRatio}}×</td><td>{{f2 .AggregateRealtimeRatio}}×</td><td>{{f2 .TranscodeRatio.P50}}</td><td>{{f2 .TranscodeRatio.P95}}</td><td>{{f2 .TranscodeRatio.P99}}</td><td>{{pct .LateShare}}</td><td>{{.SkippedSegments}}</td><td>{{f2 .CPUCoresPerSession}} cores</td><td>{{mib .RSSBytesPerSession}}</td><td>{{mib .RSSPeakBytes}}</td><td>{{if .SLOMet}}<span class="ok">ok</span>{{else}}<span class="broken">broken</span>{{end}}</td></tr>
{{end}}</table>
<p>p50/p95/p99: segment transcode time ÷ segment duration (nearest rank, all sessions pooled). SLO: p99 ≤ {{f2 .R.Knee.SLO}}.</p>
<h2>Encoders</h2>
<table class="kv">{{range .R.Rungs}}<tr><td>{{.Name}}</td><td>{{if .Width}}{{.Width}}×{{.Height}}{{else}}{{.Kind}}{{end}}</td><td>{{join .Encoders}}</td></tr>{{end}}</table>
<h2>Machine</h2>
<table class="kv">
<tr><td>CPU</td><td>{{.R.Machine.CPUModel}}</td></tr>
<tr><td>cores</td><td>{{.R.Machine.Cores}}</td></tr>
<tr><td>memory</td><td>{{mib .R.Machine.MemoryBytes}}</td></tr>
<tr><td>host</td><td>{{.R.Machine.Hostname}} ({{.R.Machine.OS}}/{{.R.Machine.Arch}})</td></tr>
<tr><td>Go</td><td>{{.R.Machine.GoVersion}}</td></tr>
<tr><td>ffmpeg</td><td>{{.R.Machine.FFmpegVersion}}</td></tr>
<tr><td>encoder</td><td>{{.R.Machine.Encoder}}</td></tr>
</table>
<h2>Configuration</h2>
<table class="kv">
<tr><td>input</td><td>{{if .R.Config.Generated}}generated testsrc2 clip{{else}}{{.R.Config.Input}}{{end}}{{if .R.Source.Reencoded}} (re-encoded to a GOP of one segment){{end}}</td></tr>
<tr><td>source</td><td>{{.R.Source.Width}}×{{.R.Source.Height}} {{f2 .R.Source.FPS}} fps, {{.R.Source.Segments}} segments, {{sec .R.Source.MediaS}}</td></tr>
<tr><td>profile</td><td>{{.R.Config.Profile}} (ladder {{.R.Config.Ladder}})</td></tr>
<tr><td>encoder requested</td><td>{{.R.Config.Encoder}}</td></tr>
<tr><td>segment duration</td><td>{{sec .R.Config.SegmentDurationS}}</td></tr>
<tr><td>sessions</td><td>{{.R.Config.Sessions}}</td></tr>
<tr><td>measured</td><td>{{.R.StartedAt.Format "2006-01-02 15:04:05 MST"}} to {{.R.FinishedAt.Format "15:04:05"}}</td></tr>
<tr><td>schema</td><td>{{.R.Schema}}</td></tr>
</table>
</body>
</html>
`))

// chart is a line chart against session count, drawn as SVG.
type chart struct {
	id, title, yLabel string
	xLabel            string // "" reads "concurrent sessions"
	series            []series
	hlines            []hline
	knee              int // session count to mark; 0 for none
}

type series struct {
	name, color string
	dashed      bool
	points      []point
}

type point struct {
	x, y float64
	tip  string
}

type hline struct {
	y            float64
	label, class string
	color        string
	below        bool // label under the line
}

func throughputChart(r *TranscodeReport) chart {
	c := chart{id: "throughput", title: "Throughput: aggregate real-time ratio", yLabel: "× real time", knee: r.Knee.Sessions}
	agg := series{name: "aggregate real-time ratio", color: "#1f6fb2"}
	maxS := 0.0
	for _, run := range r.Runs {
		agg.points = append(agg.points, point{float64(run.Sessions), run.AggregateRealtimeRatio,
			fmt.Sprintf("%d %s: %.2f× real time", run.Sessions, plural(run.Sessions, "session"), run.AggregateRealtimeRatio)})
		maxS = max(maxS, float64(run.Sessions))
	}
	ideal := series{name: "ideal (one per session)", color: "#999", dashed: true, points: []point{{0, 0, ""}, {maxS, maxS, ""}}}
	c.series = []series{ideal, agg}
	return c
}

func latencyChart(r *TranscodeReport) chart {
	c := chart{id: "p99", title: "Segment transcode time ÷ segment duration", yLabel: "transcode time ÷ segment duration", knee: r.Knee.Sessions}
	p99 := series{name: "p99", color: "#c0392b"}
	p50 := series{name: "p50", color: "#e39b8f", dashed: true}
	for _, run := range r.Runs {
		d := run.TranscodeRatio
		p99.points = append(p99.points, point{float64(run.Sessions), d.P99, fmt.Sprintf("%d %s: p99 %.2f", run.Sessions, plural(run.Sessions, "session"), d.P99)})
		p50.points = append(p50.points, point{float64(run.Sessions), d.P50, fmt.Sprintf("%d %s: p50 %.2f", run.Sessions, plural(run.Sessions, "session"), d.P50)})
	}
	c.series = []series{p50, p99}
	c.hlines = []hline{
		{y: 1, label: "late (1.0)", class: "late", color: "#888"},
		{y: r.Knee.SLO, label: fmt.Sprintf("SLO p99 ≤ %.2f", r.Knee.SLO), class: "slo", color: "#b00020", below: r.Knee.SLO < 1},
	}
	return c
}

// Plot geometry, in SVG user units.
const (
	svgW, svgH                     = 480, 320
	padL, padR, padT, padB float64 = 56, 16, 48, 44
)

func (c chart) svg() template.HTML {
	xMax, yMax := 1.0, 0.0
	for _, s := range c.series {
		for _, p := range s.points {
			xMax, yMax = max(xMax, p.x), max(yMax, p.y)
		}
	}
	for _, h := range c.hlines {
		yMax = max(yMax, h.y)
	}
	xStep := math.Max(1, niceStep(xMax, 8))
	xMax = math.Ceil(xMax/xStep) * xStep
	yStep := niceStep(yMax*1.05, 6)
	yMax = math.Max(math.Ceil(yMax*1.05/yStep)*yStep, yStep)
	plotW, plotH := svgW-padL-padR, svgH-padT-padB
	sx := func(x float64) float64 { return padL + x/xMax*plotW }
	sy := func(y float64) float64 { return padT + plotH - math.Min(y, yMax)/yMax*plotH }

	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, `<svg id="%s" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" font-family="system-ui,sans-serif" font-size="11">`,
		e(c.id), svgW, svgH, svgW, svgH, e(c.title))
	fmt.Fprintf(&b, `<title>%s</title><text x="%g" y="18" font-size="13" font-weight="600">%s</text>`, e(c.title), padL, e(c.title))
	// Grid and axes.
	for y := 0.0; y <= yMax+yStep/2; y += yStep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`,
			padL, sy(y), padL+plotW, sy(y), padL-6, sy(y)+4, tick(y))
	}
	for x := 0.0; x <= xMax+xStep/2; x += xStep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`,
			sx(x), padT, sx(x), padT+plotH, sx(x), padT+plotH+16, tick(x))
	}
	fmt.Fprintf(&b, `<path d="M%.1f %.1fV%.1fH%.1f" fill="none" stroke="#444"/>`, padL, padT, padT+plotH, padL+plotW)
	xLabel := c.xLabel
	if xLabel == "" {
		xLabel = "concurrent sessions"
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, padL+plotW/2, svgH-8, e(xLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">%s</text>`, padT+plotH/2, e(c.yLabel))
	for _, h := range c.hlines {
		ty := sy(h.y) - 4 // label above the line, or below it when asked
		if h.below {
			ty = sy(h.y) + 13
		}
		fmt.Fprintf(&b, `<g class="%s"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="6 4" stroke-width="1.5"/><text x="%.1f" y="%.1f" text-anchor="end" fill="%s">%s</text></g>`,
			e(h.class), padL, sy(h.y), padL+plotW, sy(h.y), h.color, padL+plotW-4, ty, h.color, e(h.label))
	}
	if c.knee > 0 {
		fmt.Fprintf(&b, `<g class="knee"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#16794c" stroke-width="2" stroke-dasharray="2 3"/><text x="%.1f" y="%.1f" fill="#16794c" font-weight="600">knee: %d</text></g>`,
			sx(float64(c.knee)), padT, sx(float64(c.knee)), padT+plotH, sx(float64(c.knee))+4, padT+12, c.knee)
	}
	legendX := padL
	for _, s := range c.series {
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="5 4"`
		}
		pts := make([]string, len(s.points))
		for j, p := range s.points {
			pts[j] = fmt.Sprintf("%.1f,%.1f", sx(p.x), sy(p.y))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`, strings.Join(pts, " "), s.color, dash)
		for _, p := range s.points {
			if p.tip != "" {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s</title></circle>`, sx(p.x), sy(p.y), s.color, e(p.tip))
			}
		}
		// Legend: one row under the title.
		fmt.Fprintf(&b, `<line x1="%.1f" y1="30" x2="%.1f" y2="30" stroke="%s" stroke-width="2"%s/><text x="%.1f" y="34">%s</text>`,
			legendX, legendX+18, s.color, dash, legendX+22, e(s.name))
		legendX += 34 + 6*float64(len([]rune(s.name)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from escaped text and numbers only
}

// niceStep returns a 1, 2 or 5 × 10^k step that cuts 0..span into about n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch norm := raw / mag; {
	case norm <= 1:
		return mag
	case norm <= 2:
		return 2 * mag
	case norm <= 5:
		return 5 * mag
	}
	return 10 * mag
}

func tick(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}
