package bench

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// This file holds the charts and page pieces every suite's HTML report
// shares: line charts over time and histograms, drawn as inline SVG with no
// script, and the page style.

// PageStyle is the CSS of every report page, for a <style> element.
const PageStyle = template.CSS(`body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}
th,td{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.kv td{text-align:left}.broken{color:#b00020;font-weight:600}.ok{color:#16794c}
.summary{font-size:1.1em;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:1em}svg{background:#fff;border:1px solid #ddd}`)

// TemplateFuncs are the number formats report templates use: pct (0.5 →
// 50.0%), f2, f3, mib (bytes), sec (seconds), mbps (bytes/s → Mbit/s).
func TemplateFuncs() template.FuncMap {
	return template.FuncMap{
		"pct":  func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
		"f2":   func(f float64) string { return fmt.Sprintf("%.2f", f) },
		"f3":   func(f float64) string { return fmt.Sprintf("%.3f", f) },
		"mib":  mib,
		"sec":  seconds,
		"mbps": Mbps,
	}
}

// MiB formats bytes as mebibytes, like "12.5 MiB".
func MiB(b int64) string { return mib(b) }

// Mbps formats a rate in bytes per second as megabits per second, like
// "3.21 Mbit/s": link capacity is sold in bits.
func Mbps(bytesPerSecond float64) string {
	return fmt.Sprintf("%.2f Mbit/s", bytesPerSecond*8/1e6)
}

// Plural returns word, with an s unless n is 1.
func Plural(n int, word string) string { return plural(n, word) }

// Series is one line of a LineChart.
type Series struct {
	Name, Color string
	Dashed      bool
	Points      []Point
}

// Point is one point of a Series; Tip shows on hover ("" draws no dot).
type Point struct {
	X, Y float64
	Tip  string
}

// HLine is a horizontal reference line across a LineChart, like a target.
type HLine struct {
	Y     float64
	Label string
	Color string
}

// LineChart plots series against an X axis that starts at 0 and has
// integer ticks, such as seconds into a run.
type LineChart struct {
	ID, Title, XLabel, YLabel string
	Series                    []Series
	HLines                    []HLine
}

// SVG draws the chart.
func (c LineChart) SVG() template.HTML {
	in := chart{id: c.ID, title: c.Title, xLabel: c.XLabel, yLabel: c.YLabel}
	for _, s := range c.Series {
		pts := make([]point, len(s.Points))
		for i, p := range s.Points {
			pts[i] = point{x: p.X, y: p.Y, tip: p.Tip}
		}
		in.series = append(in.series, series{name: s.Name, color: s.Color, dashed: s.Dashed, points: pts})
	}
	for _, h := range c.HLines {
		in.hlines = append(in.hlines, hline{y: h.Y, label: h.Label, class: "ref", color: h.Color})
	}
	return in.svg()
}

// Mark is a vertical line on a Histogram, such as a percentile.
type Mark struct {
	X     float64
	Label string
	Color string
}

// Histogram shows how values spread over about 20 equal bins of a 1, 2 or
// 5 × 10^k width, with marks such as p50 and p95.
type Histogram struct {
	ID, Title, XLabel string
	Values            []float64
	Color             string
	Marks             []Mark
	Unit              string // after numbers in hover tips, like "s"
}

// HistogramBins returns the bins Histogram draws for values: the first
// bin's lower edge, the bin width and the count in each bin. A bin holds
// values v with lo + i×width ≤ v < lo + (i+1)×width.
func HistogramBins(values []float64) (lo, width float64, counts []int) {
	if len(values) == 0 {
		return 0, 1, nil
	}
	vmin, vmax := values[0], values[0]
	for _, v := range values {
		vmin, vmax = min(vmin, v), max(vmax, v)
	}
	span := vmax - vmin
	if span <= 0 {
		span = math.Max(math.Abs(vmax), 1e-3)
	}
	width = niceStep(span, 20)
	// The epsilon keeps a value on a bin edge (0.15 with 0.05 bins) in the
	// bin it starts, despite binary fractions.
	const eps = 1e-9
	lo = math.Floor(vmin/width+eps) * width
	n := int(math.Floor((vmax-lo)/width+eps)) + 1
	counts = make([]int, n)
	for _, v := range values {
		i := min(max(int(math.Floor((v-lo)/width+eps)), 0), n-1)
		counts[i]++
	}
	return lo, width, counts
}

// SVG draws the histogram.
func (h Histogram) SVG() template.HTML {
	e := html.EscapeString
	color := h.Color
	if color == "" {
		color = "#1f6fb2"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" font-family="system-ui,sans-serif" font-size="11">`,
		e(h.ID), svgW, svgH, svgW, svgH, e(h.Title))
	fmt.Fprintf(&b, `<title>%s</title><text x="%g" y="18" font-size="13" font-weight="600">%s</text>`, e(h.Title), padL, e(h.Title))
	plotW, plotH := svgW-padL-padR, svgH-padT-padB
	if len(h.Values) == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#888">no samples</text></svg>`, padL+plotW/2, padT+plotH/2)
		return template.HTML(b.String())
	}
	lo, width, counts := HistogramBins(h.Values)
	hi := lo + width*float64(len(counts))
	for _, m := range h.Marks {
		hi = math.Max(hi, m.X)
	}
	// At least a few bins' room, so one bin is not as wide as the plot,
	// and one bin's margin on the right.
	hi = math.Max(hi, lo+5*width) + width
	top := 0
	for _, c := range counts {
		top = max(top, c)
	}
	yStep := math.Max(1, math.Round(niceStep(float64(top)*1.05, 5)))
	yMax := math.Max(math.Ceil(float64(top)*1.05/yStep)*yStep, yStep)
	sx := func(x float64) float64 { return padL + (x-lo)/(hi-lo)*plotW }
	sy := func(y float64) float64 { return padT + plotH - y/yMax*plotH }
	for y := 0.0; y <= yMax+yStep/2; y += yStep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`,
			padL, sy(y), padL+plotW, sy(y), padL-6, sy(y)+4, tick(y))
	}
	xStep := niceStep(hi-lo, 6)
	for k := math.Ceil(lo / xStep); k*xStep <= hi+xStep/1e6; k++ {
		x := k * xStep
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, sx(x), padT+plotH+16, stepTick(x, xStep))
	}
	for i, c := range counts {
		if c == 0 {
			continue
		}
		x0 := lo + float64(i)*width
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.8"><title>%s–%s%s: %d</title></rect>`,
			sx(x0)+0.5, sy(float64(c)), math.Max(sx(x0+width)-sx(x0)-1, 1), sy(0)-sy(float64(c)), color,
			e(stepTick(x0, width)), e(stepTick(x0+width, width)), e(h.Unit), c)
	}
	fmt.Fprintf(&b, `<path d="M%.1f %.1fV%.1fH%.1f" fill="none" stroke="#444"/>`, padL, padT, padT+plotH, padL+plotW)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, padL+plotW/2, svgH-8, e(h.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">count</text>`, padT+plotH/2)
	for i, m := range h.Marks {
		mc := m.Color
		if mc == "" {
			mc = "#c0392b"
		}
		// Labels sit right of their line, or left of it near the right edge.
		tx, anchor := sx(m.X)+3, "start"
		if sx(m.X) > padL+0.7*plotW {
			tx, anchor = sx(m.X)-3, "end"
		}
		fmt.Fprintf(&b, `<g class="mark"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="4 3"/><text x="%.1f" y="%.1f" fill="%s" text-anchor="%s">%s</text></g>`,
			sx(m.X), padT, sx(m.X), padT+plotH, mc, tx, padT+10+12*float64(i), mc, anchor, e(m.Label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from escaped text and numbers only
}

// stepTick writes v with as many decimals as a step of step needs
// (0.005 needs three), trailing zeros dropped.
func stepTick(v, step float64) string {
	decimals := 0
	for s := step; s < 1-1e-9 && decimals < 9; s *= 10 {
		decimals++
	}
	t := fmt.Sprintf("%.*f", decimals, v)
	if decimals > 0 {
		t = strings.TrimSuffix(strings.TrimRight(t, "0"), ".")
	}
	if t == "-0" {
		t = "0"
	}
	return t
}
