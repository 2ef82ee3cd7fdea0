package bench

import (
	"math"
	"slices"
)

// Distribution summarises a set of ratios (segment transcode time ÷ segment
// duration). Percentiles are nearest-rank: the p-th percentile of n sorted
// values is the value at rank ⌈p/100 × n⌉ (1-based), so it is always one of
// the measured values and p99 of fewer than 100 values is the maximum.
type Distribution struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// values, which need not be sorted. It returns 0 for no values; p ≤ 0 gives
// the minimum.
func Percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	return percentileSorted(s, p)
}

func percentileSorted(s []float64, p float64) float64 {
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Summarize returns the distribution of values.
func Summarize(values []float64) Distribution {
	if len(values) == 0 {
		return Distribution{}
	}
	s := slices.Clone(values)
	slices.Sort(s)
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	return Distribution{
		Count: len(s),
		Mean:  sum / float64(len(s)),
		P50:   percentileSorted(s, 50),
		P95:   percentileSorted(s, 95),
		P99:   percentileSorted(s, 99),
		Max:   s[len(s)-1],
	}
}

// Late counts the segments whose transcode took longer than the segment
// lasts (ratio > 1): a live stream needs the previous segment's slot back.
func Late(ratios []float64) int {
	n := 0
	for _, r := range ratios {
		if r > 1 {
			n++
		}
	}
	return n
}

// LateShare is the share of segments that were late. Skipped segments (a
// session that fell so far behind that the run stopped feeding it) count as
// late: a viewer never got them in time either.
func LateShare(ratios []float64, skipped int) float64 {
	total := len(ratios) + skipped
	if total == 0 {
		return 0
	}
	return float64(Late(ratios)+skipped) / float64(total)
}
