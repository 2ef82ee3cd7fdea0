package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

func TestHistogramBins(t *testing.T) {
	for _, tc := range []struct {
		name      string
		values    []float64
		lo, width float64
		counts    []int
	}{
		{"spread", []float64{0.1, 0.15, 0.2, 1.0}, 0.1, 0.05, []int{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"equal values", []float64{2, 2, 2}, 2, 0.1, []int{3}},
		{"zeros", []float64{0, 0}, 0, 0.00005, []int{2}},
		{"none", nil, 0, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, width, counts := HistogramBins(tc.values)
			if !near(lo, tc.lo) || !near(width, tc.width) || len(counts) != len(tc.counts) {
				t.Fatalf("bins %g, %g, %v; want %g, %g, %v", lo, width, counts, tc.lo, tc.width, tc.counts)
			}
			total := 0
			for i, c := range counts {
				total += c
				if c != tc.counts[i] {
					t.Errorf("bin %d holds %d, want %d", i, c, tc.counts[i])
				}
			}
			if total != len(tc.values) {
				t.Errorf("bins hold %d values of %d", total, len(tc.values))
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestStepTick(t *testing.T) {
	for _, tc := range []struct {
		v, step float64
		want    string
	}{{0.005, 0.005, "0.005"}, {0.01, 0.005, "0.01"}, {2.4, 0.2, "2.4"}, {3, 0.2, "3"}, {20, 5, "20"}, {-0.0000001, 0.1, "0"}} {
		if got := stepTick(tc.v, tc.step); got != tc.want {
			t.Errorf("stepTick(%g, %g) = %q, want %q", tc.v, tc.step, got, tc.want)
		}
	}
}

// wellFormed fails unless s parses as XML.
func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		if _, err := d.Token(); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, s)
		}
	}
}

func TestChartsSVG(t *testing.T) {
	h := Histogram{ID: "ttfk", Title: "TTFK <p50>", XLabel: "seconds", Values: []float64{0.1, 0.2, 0.2, 0.9}, Unit: "s",
		Marks: []Mark{{X: 0.2, Label: "p50"}, {X: 0.9, Label: "p95"}}}
	svg := string(h.SVG())
	wellFormed(t, svg)
	for _, want := range []string{`id="ttfk"`, "TTFK &lt;p50&gt;", "<rect", "p95", "0.2–0.25s: 2"} {
		if !strings.Contains(svg, want) {
			t.Errorf("histogram lacks %q", want)
		}
	}
	empty := string(Histogram{ID: "none", Title: "x"}.SVG())
	wellFormed(t, empty)
	if !strings.Contains(empty, "no samples") {
		t.Error("empty histogram does not say so")
	}
	l := LineChart{ID: "viewers", Title: "Viewers", XLabel: "seconds since the start", YLabel: "viewers",
		Series: []Series{{Name: "held", Color: "#000", Points: []Point{{0, 0, "a"}, {1, 5, "b & c"}}}},
		HLines: []HLine{{Y: 5, Label: "asked 5", Color: "#888"}}}
	svg = string(l.SVG())
	wellFormed(t, svg)
	for _, want := range []string{`id="viewers"`, "seconds since the start", "asked 5", "b &amp; c"} {
		if !strings.Contains(svg, want) {
			t.Errorf("line chart lacks %q", want)
		}
	}
	if strings.Contains(svg, "concurrent sessions") {
		t.Error("line chart kept the transcode suite's x label")
	}
}

func TestProgressUpdate(t *testing.T) {
	var out bytes.Buffer
	p, _ := NewProgress("bar", &out, nil)
	clock := time.Unix(0, 0)
	p.now = func() time.Time { return clock }
	p.Update(ProgressUpdate{Frac: 0.5, Text: "10/20 viewers"})
	p.Update(ProgressUpdate{Frac: 0.6, Text: "dropped: too soon"})
	clock = clock.Add(time.Second)
	p.Update(ProgressUpdate{Frac: 1.5, Text: "done", Final: true})
	got := out.String()
	if !strings.Contains(got, "[###############...............]  50%  10/20 viewers") || strings.Contains(got, "too soon") ||
		!strings.Contains(got, "[##############################] 100%  done") || !strings.HasSuffix(got, "\n") {
		t.Errorf("bar output %q", got)
	}
	var logged bytes.Buffer
	p, _ = NewProgress("log", &bytes.Buffer{}, slog.New(slog.NewTextHandler(&logged, nil)))
	p.Update(ProgressUpdate{Suite: "fanout", Frac: 0.1, Attrs: []any{"held", 3}})
	p.Update(ProgressUpdate{Suite: "fanout", Frac: 0.2}) // within 5 s: dropped
	p.Update(ProgressUpdate{Suite: "fanout", Frac: 1, Final: true})
	if n := strings.Count(logged.String(), "bench fanout"); n != 2 || !strings.Contains(logged.String(), "held=3") {
		t.Errorf("log mode wrote %d lines:\n%s", n, logged.String())
	}
}

func TestReadProcPIDAndLoad(t *testing.T) {
	s, err := ReadProcPID(os.Getpid())
	if err != nil || s.RSSBytes <= 0 {
		t.Errorf("ReadProcPID(self) = %+v, %v", s, err)
	}
	if _, err := ReadProcPID(0); err == nil {
		t.Error("pid 0 accepted")
	}
	if _, err := ReadProcPID(1 << 30); err == nil {
		t.Error("a pid that cannot exist was read")
	}
	if got := parseLoadAvg([]byte("1.50 0.75 0.25 2/345 6789\n")); len(got) != 3 || got[0] != 1.5 || got[2] != 0.25 {
		t.Errorf("parseLoadAvg = %v", got)
	}
	if got := parseLoadAvg([]byte("x")); got != nil {
		t.Errorf("parseLoadAvg(bad) = %v", got)
	}
}
