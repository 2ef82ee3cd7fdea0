// Package manifest renders HLS multivariant and media playlists and
// MPEG-DASH MPDs from one model of a presentation.
//
// Every rendition is a CMAF track stored as one folder holding an init
// segment (init.mp4) and numbered fMP4 media segments named by SegmentName,
// so the same files serve HLS and DASH, for VOD (offline transcode, ended
// recordings) and for live sliding windows alike. The package only renders
// text; it keeps no state and reads no clock.
package manifest

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"
)

// Kind says whether a rendition carries video or audio.
type Kind string

// Rendition kinds.
const (
	Video Kind = "video"
	Audio Kind = "audio"
)

// DefaultInitName is the init segment name used when Rendition.InitURI is empty.
const DefaultInitName = "init.mp4"

// Sentinel errors returned (wrapped) by DASH.
var (
	// ErrNoSegments means no rendition has a segment, so there is no
	// timeline to describe yet.
	ErrNoSegments = errors.New("no segments")
	// ErrInvalid means the presentation model breaks one of its rules.
	ErrInvalid = errors.New("invalid presentation")
)

// Segment is one CMAF media segment of a rendition.
type Segment struct {
	// Seq is the media sequence number; it keeps counting across
	// discontinuities and names the file (see SegmentName).
	Seq uint64
	// Start is the presentation start (tfdt) in the rendition timescale.
	Start uint64
	// Duration is the segment duration in the rendition timescale.
	Duration uint64
	// URI is the HLS segment URI relative to the media playlist; empty
	// means SegmentName(Seq). DASH ignores it and addresses segments by the
	// $Number$ template, so files must be named by SegmentName.
	URI string
	// Discontinuity marks the first segment after a publisher reconnect.
	Discontinuity bool
	// ProgramDateTime is the optional wall clock of Start
	// (EXT-X-PROGRAM-DATE-TIME when non-zero).
	ProgramDateTime time.Time
}

// Rendition is one rung of the ladder (video) or one audio track.
type Rendition struct {
	Name string
	Kind Kind
	// Codecs is the RFC 6381 codec string, e.g. "avc1.64002a" or "mp4a.40.2".
	Codecs string
	// Bandwidth and AverageBandwidth are peak and average bits/s, measured
	// from real segment sizes where possible (see MeasureBandwidth).
	Bandwidth, AverageBandwidth int64
	Width, Height               int
	FrameRate                   float64
	SampleRate, Channels        int
	// Language is a BCP 47 tag such as "en"; empty when unknown.
	Language string
	// Timescale is the track timescale (mdhd) that Segment times count in.
	Timescale uint32
	// InitURI is the init segment relative to the media playlist; empty
	// means DefaultInitName.
	InitURI string
	// Segments is a contiguous window of segments, oldest first.
	Segments []Segment
}

// Presentation is everything the playlists and the MPD are rendered from.
type Presentation struct {
	Renditions []Rendition
	// Live selects sliding-window semantics; false means VOD or an ended
	// recording.
	Live bool
	// Ended marks a live stream that has finished: HLS gets EXT-X-ENDLIST
	// and the MPD becomes static.
	Ended bool
	// TargetDuration is the nominal segment duration. Keep it at least the
	// longest segment so EXT-X-TARGETDURATION never changes while live.
	TargetDuration time.Duration
	// AvailabilityStart is the wall clock of media time 0 (live MPD
	// availabilityStartTime). Segment Start values must keep counting
	// across reconnects so media time stays on this clock.
	AvailabilityStart time.Time
	// PublishTime is the MPD publishTime; zero means the wall clock at the
	// end of the newest segment.
	PublishTime time.Time
	// TimeShiftBuffer is the DASH timeShiftBufferDepth; zero means the
	// length of the window.
	TimeShiftBuffer time.Duration
	// MinBufferTime is the DASH minBufferTime; zero means 2×TargetDuration.
	MinBufferTime time.Duration
	// DiscontinuitySequence is the HLS EXT-X-DISCONTINUITY-SEQUENCE: the
	// number of discontinuity segments that have left the window. DASH
	// numbers its Period ids from it, so ids stay stable as the window slides.
	DiscontinuitySequence uint64
	// UTCTimingURL is served as DASH UTCTiming urn:mpeg:dash:utc:http-iso:2014;
	// empty means urn:mpeg:dash:utc:direct:2014 carrying PublishTime.
	UTCTimingURL string
	// PeriodStart is, for a live MPD whose window starts after a reconnect
	// whose first segment has already left the window, the media time at
	// which that period began (the Period@start of earlier renders). It
	// keeps Period@start stable as the window slides; zero means the start
	// of the window's first segment.
	PeriodStart time.Duration
}

// SegmentName is the file name of media segment seq in its rendition
// folder; the DASH template $Number%08d$.m4s addresses the same files.
func SegmentName(seq uint64) string {
	return fmt.Sprintf("%08d.m4s", seq)
}

// MeasureBandwidth returns the peak bits/s over single segments and the
// average bits/s over all of them, both rounded up. Pairs with a
// non-positive duration are skipped; extra entries of the longer slice are
// ignored.
func MeasureBandwidth(sizes []int64, durations []float64) (peak, avg int64) {
	var totalBits, totalSeconds float64
	for i := 0; i < len(sizes) && i < len(durations); i++ {
		if durations[i] <= 0 || sizes[i] < 0 {
			continue
		}
		b := float64(sizes[i]) * 8
		if rate := int64(math.Ceil(b / durations[i])); rate > peak {
			peak = rate
		}
		totalBits += b
		totalSeconds += durations[i]
	}
	if totalSeconds > 0 {
		avg = int64(math.Ceil(totalBits / totalSeconds))
	}
	return peak, avg
}

func (r *Rendition) initName() string {
	if r.InitURI != "" {
		return r.InitURI
	}
	return DefaultInitName
}

// seconds converts ticks to seconds for display.
func seconds(ticks uint64, timescale uint32) float64 {
	if timescale == 0 {
		return 0
	}
	return float64(ticks) / float64(timescale)
}

// ceilSeconds is ticks/timescale rounded up, computed exactly.
func ceilSeconds(ticks uint64, timescale uint32) uint64 {
	if timescale == 0 {
		return 0
	}
	ts := uint64(timescale)
	return ticks/ts + min(ticks%ts, 1)
}

// TicksToDuration converts ticks of a timescale to a duration, rounding
// down and saturating at the largest duration.
func TicksToDuration(ticks uint64, timescale uint32) time.Duration {
	if timescale == 0 {
		return 0
	}
	hi, lo := bits.Mul64(ticks, uint64(time.Second))
	if hi >= uint64(timescale) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(timescale))
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(q)
}

// DurationToTicks converts a non-negative duration to ticks of a
// timescale, rounding up.
func DurationToTicks(d time.Duration, timescale uint32) uint64 {
	if d <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(d), uint64(timescale))
	q, r := bits.Div64(hi, lo, uint64(time.Second)) // hi < 2^31 < 1e9: no overflow
	if r != 0 {
		q++
	}
	return q
}

// formatSeconds writes a duration as decimal seconds with no trailing zeros.
func formatSeconds(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := strconv.FormatInt(int64(d/time.Second), 10)
	frac := int64(d % time.Second)
	if frac == 0 {
		return s
	}
	f := fmt.Sprintf("%09d", frac)
	for f[len(f)-1] == '0' {
		f = f[:len(f)-1]
	}
	return s + "." + f
}
