package bench

import (
	"math"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	ten := []float64{0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.4, 0.6, 0.8, 1.0} // 0.1..1.0 shuffled
	for _, tc := range []struct {
		name   string
		values []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"single", []float64{0.4}, 99, 0.4},
		{"p50 of ten is the 5th", ten, 50, 0.5},
		{"p95 of ten is the 10th", ten, 95, 1.0},
		{"p99 of ten is the max", ten, 99, 1.0},
		{"p90 of ten is the 9th", ten, 90, 0.9},
		{"p10 of ten is the 1st", ten, 10, 0.1},
		{"p0 is the min", ten, 0, 0.1},
		{"p100 is the max", ten, 100, 1.0},
		{"p50 of four is the 2nd", []float64{4, 1, 3, 2}, 50, 2},
		{"p51 of four is the 3rd", []float64{4, 1, 3, 2}, 51, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.values, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %g) = %g, want %g", tc.values, tc.p, got, tc.want)
			}
		})
	}
}

func TestPercentileOfHundred(t *testing.T) {
	var v []float64
	for i := 100; i >= 1; i-- {
		v = append(v, float64(i))
	}
	for p, want := range map[float64]float64{50: 50, 95: 95, 99: 99, 99.5: 100, 1: 1} {
		if got := Percentile(v, p); got != want {
			t.Errorf("p%g = %g, want %g", p, got, want)
		}
	}
	if v[0] != 100 {
		t.Error("Percentile sorted its argument in place")
	}
}

func TestSummarize(t *testing.T) {
	d := Summarize([]float64{0.2, 0.4, 0.6, 0.8, 1.2})
	want := Distribution{Count: 5, Mean: 0.64, P50: 0.6, P95: 1.2, P99: 1.2, Max: 1.2}
	if math.Abs(d.Mean-want.Mean) > 1e-12 {
		t.Errorf("mean %g, want %g", d.Mean, want.Mean)
	}
	d.Mean = want.Mean
	if d != want {
		t.Errorf("Summarize = %+v, want %+v", d, want)
	}
	if (Summarize(nil) != Distribution{}) {
		t.Error("Summarize(nil) is not zero")
	}
}

func TestLateShare(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ratios   []float64
		skipped  int
		late     int
		wantFrac float64
	}{
		{"none", nil, 0, 0, 0},
		{"all on time", []float64{0.5, 0.99, 1.0}, 0, 0, 0}, // exactly 1.0 is just in time
		{"one of four late", []float64{0.5, 1.01, 0.7, 0.2}, 0, 1, 0.25},
		{"all late", []float64{1.5, 2}, 0, 2, 1},
		{"skipped count as late", []float64{0.5, 1.5}, 2, 1, 0.75},
		{"only skipped", nil, 3, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Late(tc.ratios); got != tc.late {
				t.Errorf("Late = %d, want %d", got, tc.late)
			}
			if got := LateShare(tc.ratios, tc.skipped); got != tc.wantFrac {
				t.Errorf("LateShare = %g, want %g", got, tc.wantFrac)
			}
		})
	}
}

func TestRunMeasureResult(t *testing.T) {
	m := RunMeasure{
		Sessions: []SessionMeasure{
			{Ratios: []float64{0.5, 0.5}, Media: 4 * time.Second, Busy: 2 * time.Second, Wall: 5 * time.Second},
			{Ratios: []float64{0.25, 1.5}, Media: 4 * time.Second, Busy: 3500 * time.Millisecond, Wall: 8 * time.Second, Skipped: 1},
		},
		Wall:        10 * time.Second,
		CPU:         15 * time.Second,
		RSSBaseline: 100 << 20,
		RSSPeak:     300 << 20,
	}
	r := m.Result(0.8)
	approx := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %g, want %g", name, got, want)
		}
	}
	if r.Sessions != 2 || r.Segments != 4 || r.SkippedSegments != 1 || r.LateSegments != 1 {
		t.Errorf("counts: %+v", r)
	}
	approx("media_s", r.MediaS, 8)
	approx("busy_s", r.BusyS, 5.5)
	approx("realtime_ratio", r.RealtimeRatio, 8/5.5)
	approx("realtime_ratio_min", r.RealtimeRatioMin, 4/3.5)
	approx("aggregate_realtime_ratio", r.AggregateRealtimeRatio, 4.0/5+4.0/8)
	approx("late_share", r.LateShare, 2.0/5)
	approx("cpu_cores_total", r.CPUCoresTotal, 1.5)
	approx("cpu_cores_per_session", r.CPUCoresPerSession, 0.75)
	if r.RSSBytesPerSession != 100<<20 {
		t.Errorf("rss per session %d, want %d", r.RSSBytesPerSession, 100<<20)
	}
	if r.TranscodeRatio.P99 != 1.5 || r.SLOMet {
		t.Errorf("p99 %g slo_met %v, want 1.5 and false", r.TranscodeRatio.P99, r.SLOMet)
	}
}
