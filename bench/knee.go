package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DefaultSLO is the live transcode SLO: the p99 of segment transcode time ÷
// segment duration must stay at or below 0.8, leaving a fifth of every
// segment's slot for upload, packaging and jitter.
const DefaultSLO = 0.8

// Knee statuses.
const (
	KneeFound      = "found"       // the SLO held up to Sessions and broke at BrokenAt
	KneeNotReached = "not_reached" // the SLO held at every measured count: capacity is at least Sessions
	KneeBelowRange = "below_range" // the SLO broke at the smallest measured count
	KneeNoRuns     = "no_runs"     // nothing was measured
)

// Knee is the most concurrent sessions a machine carries within the SLO.
type Knee struct {
	Sessions int     `json:"sessions"`            // most sessions meeting the SLO; 0 when none did
	Status   string  `json:"status"`              // found, not_reached, below_range or no_runs
	BrokenAt int     `json:"broken_at,omitempty"` // fewest sessions that broke the SLO
	SLO      float64 `json:"slo_p99_ratio"`       // the p99 bound the knee was found against
	// NonMonotonic is set when a count above BrokenAt met the SLO again. The
	// knee ignores such counts: a pass after a failure is noise, not capacity.
	NonMonotonic bool `json:"non_monotonic,omitempty"`
}

// MeetsSLO reports whether a run kept p99 of transcode time ÷ segment
// duration at or below slo, transcoded something and skipped nothing.
func (r *TranscodeRun) MeetsSLO(slo float64) bool {
	return r.Segments > 0 && r.SkippedSegments == 0 && r.TranscodeRatio.P99 <= slo
}

// FindKnee returns the knee of runs: the largest session count that, with
// every smaller measured count, met the SLO. Runs may come in any order; a
// count measured more than once meets the SLO only if every run of it did.
func FindKnee(runs []TranscodeRun, slo float64) Knee {
	k := Knee{Status: KneeNoRuns, SLO: slo}
	if len(runs) == 0 {
		return k
	}
	met := map[int]bool{}
	for i := range runs {
		r := &runs[i]
		ok, seen := met[r.Sessions]
		met[r.Sessions] = (ok || !seen) && r.MeetsSLO(slo)
	}
	counts := make([]int, 0, len(met))
	for n := range met {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	for _, n := range counts {
		switch {
		case met[n] && k.BrokenAt == 0:
			k.Sessions = n
		case !met[n] && k.BrokenAt == 0:
			k.BrokenAt = n
		case met[n]:
			k.NonMonotonic = true
		}
	}
	switch {
	case k.BrokenAt == 0:
		k.Status = KneeNotReached
	case k.Sessions == 0:
		k.Status = KneeBelowRange
	default:
		k.Status = KneeFound
	}
	return k
}

// autoStep returns the first count of the auto sweep 1, 2, 3, 4, 6, 8, 12,
// 16, 24, ... (powers of two and one and a half times them) above n.
func autoStep(n int) int {
	if n < 1 {
		return 1
	}
	for p := 2; ; p *= 2 {
		if p > n {
			return p
		}
		if p*3/2 > n {
			return p * 3 / 2
		}
	}
}

// NextAutoSessions returns the session count an auto sweep measures next
// after runs, or 0 when the knee is named. It climbs 1, 2, 3, 4, 6, 8, 12,
// ... (capped at maxSessions) until the SLO breaks, then bisects between
// the knee and the first failing count so the knee is exact.
func NextAutoSessions(runs []TranscodeRun, slo float64, maxSessions int) int {
	if maxSessions < 1 {
		return 0
	}
	k := FindKnee(runs, slo)
	switch k.Status {
	case KneeNoRuns:
		return 1
	case KneeNotReached:
		largest := 0
		for _, r := range runs {
			largest = max(largest, r.Sessions)
		}
		if next := min(autoStep(largest), maxSessions); next > largest {
			return next
		}
	case KneeFound:
		if mid := (k.Sessions + k.BrokenAt) / 2; mid > k.Sessions && !slices.ContainsFunc(runs, func(r TranscodeRun) bool { return r.Sessions == mid }) {
			return mid
		}
	}
	return 0
}

// ParseSessions reads the --sessions flag: "auto" (auto is true, list nil)
// or a comma-separated list of positive counts, returned sorted and without
// repeats.
func ParseSessions(s string) (list []int, auto bool, err error) {
	if strings.TrimSpace(s) == "auto" {
		return nil, true, nil
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 4096 {
			return nil, false, fmt.Errorf(`'sessions' must be "auto" or a list of counts from 1 to 4096 like 1,2,4, not %q`, s)
		}
		list = append(list, n)
	}
	slices.Sort(list)
	return slices.Compact(list), false, nil
}
