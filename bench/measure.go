package bench

import (
	"time"
)

// SessionMeasure is what one session of a run recorded.
type SessionMeasure struct {
	Ratios  []float64     // per segment: transcode time ÷ segment media duration
	Media   time.Duration // media transcoded
	Busy    time.Duration // sum of segment transcode times
	Wall    time.Duration // its start to its last segment done or its media's end, whichever is later
	Skipped int           // segments never started: the session fell too far behind
}

// RunMeasure is the raw measurement of one session count.
type RunMeasure struct {
	Sessions    []SessionMeasure
	Wall        time.Duration // first session start to last session end
	CPU         time.Duration // process utime + stime over the run
	RSSBaseline int64         // before the sessions started
	RSSPeak     int64         // highest sample during the run
	Encoders    []RungEncoders
	Fallbacks   int
}

// Result turns the measurement into a report row judged against slo.
func (m *RunMeasure) Result(slo float64) TranscodeRun {
	n := len(m.Sessions)
	r := TranscodeRun{Sessions: n, WallS: m.Wall.Seconds(), RSSBaselineBytes: m.RSSBaseline, RSSPeakBytes: m.RSSPeak,
		Encoders: m.Encoders, Fallbacks: m.Fallbacks}
	var ratios []float64
	var media, busy time.Duration
	for i, s := range m.Sessions {
		ratios = append(ratios, s.Ratios...)
		media += s.Media
		busy += s.Busy
		r.SkippedSegments += s.Skipped
		rt := 0.0
		if s.Busy > 0 {
			rt = s.Media.Seconds() / s.Busy.Seconds()
		}
		if i == 0 || rt < r.RealtimeRatioMin {
			r.RealtimeRatioMin = rt
		}
		if s.Wall > 0 {
			r.AggregateRealtimeRatio += s.Media.Seconds() / s.Wall.Seconds()
		}
	}
	r.Segments = len(ratios)
	r.MediaS, r.BusyS = media.Seconds(), busy.Seconds()
	if busy > 0 {
		r.RealtimeRatio = media.Seconds() / busy.Seconds()
	}
	r.TranscodeRatio = Summarize(ratios)
	r.LateSegments = Late(ratios)
	r.LateShare = LateShare(ratios, r.SkippedSegments)
	if m.Wall > 0 {
		r.CPUCoresTotal = m.CPU.Seconds() / m.Wall.Seconds()
	}
	if n > 0 {
		r.CPUCoresPerSession = r.CPUCoresTotal / float64(n)
		r.RSSBytesPerSession = max(m.RSSPeak-m.RSSBaseline, 0) / int64(n)
	}
	r.SLOMet = r.MeetsSLO(slo)
	return r
}
