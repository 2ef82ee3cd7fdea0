package bench

import (
	"slices"
	"testing"
)

// runs builds one run per (sessions, p99) pair.
func runs(pairs ...float64) []TranscodeRun {
	var rs []TranscodeRun
	for i := 0; i+1 < len(pairs); i += 2 {
		rs = append(rs, TranscodeRun{Sessions: int(pairs[i]), Segments: 10, TranscodeRatio: Distribution{P99: pairs[i+1]}})
	}
	return rs
}

func TestFindKnee(t *testing.T) {
	for _, tc := range []struct {
		name string
		runs []TranscodeRun
		want Knee
	}{
		{"no runs", nil, Knee{Status: KneeNoRuns}},
		{"broken at one session", runs(1, 0.95, 2, 1.8), Knee{Status: KneeBelowRange, BrokenAt: 1}},
		{"broken at the smallest measured", runs(4, 0.9, 8, 1.2), Knee{Status: KneeBelowRange, BrokenAt: 4}},
		{"never broken", runs(1, 0.1, 2, 0.2, 4, 0.5), Knee{Sessions: 4, Status: KneeNotReached}},
		{"found", runs(1, 0.2, 2, 0.3, 3, 0.5, 4, 0.81, 6, 1.4), Knee{Sessions: 3, Status: KneeFound, BrokenAt: 4}},
		{"exactly at the SLO passes", runs(1, 0.5, 2, 0.8, 3, 0.9), Knee{Sessions: 2, Status: KneeFound, BrokenAt: 3}},
		{"unsorted", runs(6, 1.4, 1, 0.2, 4, 0.81, 3, 0.5), Knee{Sessions: 3, Status: KneeFound, BrokenAt: 4}},
		{"non-monotonic: a pass after a failure is ignored", runs(1, 0.3, 2, 0.85, 3, 0.7, 4, 1.2),
			Knee{Sessions: 1, Status: KneeFound, BrokenAt: 2, NonMonotonic: true}},
		{"non-monotonic below range", runs(1, 0.9, 2, 0.5), Knee{Status: KneeBelowRange, BrokenAt: 1, NonMonotonic: true}},
		{"p99 dips but stays in SLO", runs(1, 0.5, 2, 0.4, 3, 0.6), Knee{Sessions: 3, Status: KneeNotReached}},
		{"repeated count must pass every time", runs(1, 0.3, 2, 0.5, 2, 0.9, 3, 0.6),
			Knee{Sessions: 1, Status: KneeFound, BrokenAt: 2, NonMonotonic: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.SLO = DefaultSLO
			if got := FindKnee(tc.runs, DefaultSLO); got != tc.want {
				t.Errorf("FindKnee = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFindKneeSkippedBreaksSLO(t *testing.T) {
	rs := runs(1, 0.3, 2, 0.5)
	rs[1].SkippedSegments = 1
	if k := FindKnee(rs, DefaultSLO); k.Sessions != 1 || k.BrokenAt != 2 {
		t.Errorf("a run that skipped segments met the SLO: %+v", k)
	}
	rs = runs(1, 0.3)
	rs[0].Segments = 0
	if k := FindKnee(rs, DefaultSLO); k.Status != KneeBelowRange {
		t.Errorf("a run with no segments met the SLO: %+v", k)
	}
}

func TestAutoStep(t *testing.T) {
	var got []int
	for n := 0; n < 64; n = autoStep(n) {
		got = append(got, autoStep(n))
	}
	want := []int{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64}
	if !slices.Equal(got, want) {
		t.Errorf("auto sweep %v, want %v", got, want)
	}
}

func TestNextAutoSessions(t *testing.T) {
	for _, tc := range []struct {
		name string
		runs []TranscodeRun
		max  int
		want int
	}{
		{"starts at one", nil, 64, 1},
		{"climbs", runs(1, 0.2), 64, 2},
		{"climbs past four in steps of half", runs(1, 0.1, 2, 0.2, 3, 0.3, 4, 0.4), 64, 6},
		{"capped at max", runs(1, 0.1, 2, 0.1, 3, 0.1, 4, 0.1, 6, 0.1), 7, 7},
		{"stops at max", runs(1, 0.1, 2, 0.1, 3, 0.1, 4, 0.1), 4, 0},
		{"broken at one: done", runs(1, 0.9), 64, 0},
		{"adjacent: done", runs(1, 0.2, 2, 0.5, 3, 0.9), 64, 0},
		{"bisects 4..8", runs(1, 0.1, 2, 0.2, 3, 0.3, 4, 0.4, 6, 0.6, 8, 0.9), 64, 7},
		{"bisects 8..12", runs(1, 0.1, 2, 0.1, 3, 0.1, 4, 0.1, 6, 0.1, 8, 0.5, 12, 0.9), 64, 10},
		{"bisect result lowers the bracket", runs(1, 0.1, 2, 0.1, 3, 0.1, 4, 0.1, 6, 0.1, 8, 0.5, 12, 0.9, 10, 0.85), 64, 9},
		{"bisect done", runs(8, 0.5, 12, 0.9, 10, 0.85, 9, 0.7), 64, 0},
		{"no max", nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextAutoSessions(tc.runs, DefaultSLO, tc.max); got != tc.want {
				t.Errorf("NextAutoSessions = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseSessions(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		auto    bool
		wantErr bool
	}{
		{in: "auto", auto: true},
		{in: "1", want: []int{1}},
		{in: "1,2,4", want: []int{1, 2, 4}},
		{in: "4, 1,2,2", want: []int{1, 2, 4}},
		{in: "", wantErr: true},
		{in: "0", wantErr: true},
		{in: "1,,2", wantErr: true},
		{in: "two", wantErr: true},
		{in: "-1", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, auto, err := ParseSessions(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) || auto != tc.auto {
				t.Errorf("ParseSessions(%q) = %v, %v; want %v, %v", tc.in, got, auto, tc.want, tc.auto)
			}
		})
	}
}
