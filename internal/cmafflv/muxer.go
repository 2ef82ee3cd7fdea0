package cmafflv

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/livegrid/livegrid/internal/flv"
)

// maxOverlap is how far a segment may start before the end of the one
// before it and still count as continuing it (encoder priming, audio
// frames across a boundary); more is a timeline that went back, which the
// Muxer moves forward.
const maxOverlap = 100 // ms

// Meta is what onMetaData says beyond the init segments; zero fields are
// left out (a zero FrameRate is measured from the first segment).
type Meta struct {
	FrameRate    float64
	VideoBitrate int64 // bits/s
	AudioBitrate int64
}

// Muxer turns the media segments of a video track, an audio track or
// both, in order, into FLV tags on one millisecond timeline. Tag
// timestamps are decode times: the segments' tfdt-based times, with video
// moved earlier by the largest negative composition offset seen, so that
// no frame's presentation precedes its decode time and CompositionTime
// stays non-negative. Timestamps only go forward: a segment whose times go
// back (a publisher's new timeline) continues where the last one ended.
// Tags of the two tracks are interleaved by decode time; Write holds back
// what a later segment of the other track might precede.
//
// The first tags carry onMetaData and the sequence headers; SetTracks
// sends new sequence headers when an init segment changes. Video starts
// at a keyframe. A Muxer is not safe for concurrent use.
type Muxer struct {
	tracks [2]*Track // video, audio
	meta   Meta

	sendMeta bool
	sendSeq  [2]bool
	needKey  bool

	shift  int64 // ms video decode times move earlier
	offset int64 // ms added to every time after a timeline rewind
	// Per track: the last decode time sent and where its samples end.
	last, end [2]int64
	seen      [2]bool
	sent      int64 // the latest time sent
	pending   []timedTag
}

type timedTag struct {
	ts  int64
	tag flv.Tag
}

const (
	vi = 0
	ai = 1
)

// NewMuxer returns a Muxer for a video track (nil for audio only) and an
// audio track (nil for video only).
func NewMuxer(video, audio *Track, meta Meta) (*Muxer, error) {
	switch {
	case video == nil && audio == nil:
		return nil, fmt.Errorf("cmafflv: new muxer: no track: %w", ErrMalformed)
	case video != nil && !video.Video:
		return nil, fmt.Errorf("cmafflv: new muxer: the video track is %s: %w", video.Handler, ErrMalformed)
	case audio != nil && audio.Video:
		return nil, fmt.Errorf("cmafflv: new muxer: the audio track is %s: %w", audio.Handler, ErrMalformed)
	}
	m := &Muxer{tracks: [2]*Track{video, audio}, meta: meta, sendMeta: true, needKey: video != nil}
	m.sendSeq = [2]bool{video != nil, audio != nil}
	return m, nil
}

// Header returns the FLV file header's flags for the Muxer's tracks.
func (m *Muxer) Header() flv.Header {
	return flv.Header{Video: m.tracks[vi] != nil, Audio: m.tracks[ai] != nil}
}

// SetTracks switches to new init segments (nil keeps a track's current
// one): the track's next tag comes after a new sequence header and
// onMetaData, and video waits for a keyframe. Tags held back for the old
// init segments are still sent, before them.
func (m *Muxer) SetTracks(video, audio *Track) {
	for i, t := range [2]*Track{video, audio} {
		if t == nil || m.tracks[i] == nil || t.Video != (i == vi) {
			continue
		}
		m.tracks[i] = t
		m.sendSeq[i] = true
		m.sendMeta = true
		if i == vi {
			m.needKey = true
		}
	}
}

// Write takes the samples of one segment of each track (the video and
// audio segments of one sequence number; nil for a track that has none)
// and returns the tags that are ready, in order.
func (m *Muxer) Write(video, audio []Sample) []flv.Tag {
	in := [2][]Sample{video, audio}
	for i := range in {
		if m.tracks[i] == nil {
			in[i] = nil
		}
	}
	if m.needKey {
		k := slices.IndexFunc(in[vi], func(s Sample) bool { return s.Keyframe })
		if k < 0 {
			in[vi] = nil
		} else {
			in[vi] = in[vi][k:]
			m.needKey = false
		}
	}
	if len(in[vi]) > 0 && m.sendMeta && m.meta.FrameRate == 0 {
		m.meta.FrameRate = frameRate(in[vi], m.tracks[vi].Timescale)
	}
	// A composition offset deeper than any before moves video earlier;
	// the clamp below keeps its decode times from going back.
	for _, s := range in[vi] {
		dts, pts := m.rawTimes(vi, s)
		m.shift = max(m.shift, dts-pts)
	}
	// A timeline that went back continues from the end of the last
	// segment.
	var jump int64
	earliest := int64(math.MaxInt64)
	for i := range in {
		if len(in[i]) == 0 {
			continue
		}
		first, _ := m.times(i, in[i][0])
		earliest = min(earliest, first)
		if m.seen[i] && first < m.end[i]-maxOverlap {
			jump = max(jump, m.end[i]-first)
		}
	}
	var out []flv.Tag
	if jump > 0 {
		out = m.Flush()
		// Nothing may go before what Flush just sent either.
		m.offset += max(jump, m.sent-earliest)
	}

	fresh := m.pending
	for i := range in {
		t := m.tracks[i]
		for j, s := range in[i] {
			dts, pts := m.times(i, s)
			ts := max(dts, m.last[i], 0)
			if j == 0 && m.sendSeq[i] {
				if m.sendMeta {
					m.sendMeta = false
					if body, err := Metadata(m.tracks[vi], m.tracks[ai], m.meta); err == nil {
						fresh = append(fresh, timedTag{ts: ts, tag: flv.Tag{Type: flv.TagScript, Timestamp: uint32(ts), Data: body}})
					}
				}
				m.sendSeq[i] = false
				fresh = append(fresh, timedTag{ts: ts, tag: flv.Tag{Type: tagType(i), Timestamp: uint32(ts), Data: t.SequenceHeader()}})
			}
			cts := clampSI24(pts - ts)
			if t.VideoCodec == flv.CodecAV1 {
				cts = 0
			}
			fresh = append(fresh, timedTag{ts: ts, tag: flv.Tag{
				Type: tagType(i), Timestamp: uint32(ts), Data: t.frame(s.Data, s.Keyframe || i == ai, cts),
			}})
			end, _ := m.times(i, Sample{DTS: addSat(s.DTS, uint64(s.Duration))})
			m.last[i], m.end[i], m.seen[i] = ts, max(m.end[i], end), true
		}
	}
	// Stable: a sequence header stays before the frame it shares a time
	// with, and held tags before new ones.
	slices.SortStableFunc(fresh, func(a, b timedTag) int { return cmp.Compare(a.ts, b.ts) })

	// Hold back what the other track's next segment may come before.
	ready := len(fresh)
	if len(in[vi]) > 0 && len(in[ai]) > 0 {
		mark := min(m.last[vi], m.last[ai])
		ready, _ = slices.BinarySearchFunc(fresh, mark+1, func(t timedTag, ts int64) int { return cmp.Compare(t.ts, ts) })
	}
	m.pending = slices.Clone(fresh[ready:])
	return m.appendTags(out, fresh[:ready])
}

// Flush returns every tag held back, for the end of the stream.
func (m *Muxer) Flush() []flv.Tag {
	p := m.pending
	m.pending = nil
	return m.appendTags(nil, p)
}

func (m *Muxer) appendTags(out []flv.Tag, tags []timedTag) []flv.Tag {
	for _, t := range tags {
		out = append(out, t.tag)
		m.sent = max(m.sent, t.ts)
	}
	return out
}

// rawTimes returns a sample's decode and presentation times in ms.
func (m *Muxer) rawTimes(i int, s Sample) (dts, pts int64) {
	ts := m.tracks[i].Timescale
	dts = toMS(s.DTS, ts)
	switch {
	case s.CTSOffset >= 0:
		pts = toMS(addSat(s.DTS, uint64(s.CTSOffset)), ts)
	case uint64(-int64(s.CTSOffset)) <= s.DTS:
		pts = toMS(s.DTS-uint64(-int64(s.CTSOffset)), ts)
	}
	return dts, pts
}

// times returns a sample's decode and presentation times in ms on the
// output timeline, before the monotonic clamp.
func (m *Muxer) times(i int, s Sample) (dts, pts int64) {
	dts, pts = m.rawTimes(i, s)
	if i == vi {
		dts -= m.shift
	}
	return dts + m.offset, pts + m.offset
}

// toMS converts ticks to milliseconds, rounding down and saturating
// well below overflow.
func toMS(ticks uint64, timescale uint32) int64 {
	const limit = 1 << 53
	if timescale == 0 {
		return 0
	}
	hi, lo := bits.Mul64(ticks, 1000)
	if hi >= uint64(timescale) {
		return limit
	}
	q, _ := bits.Div64(hi, lo, uint64(timescale))
	return int64(min(q, limit))
}

func clampSI24(v int64) int32 {
	return int32(min(max(v, -1<<23), 1<<23-1))
}

func tagType(i int) flv.TagType {
	if i == vi {
		return flv.TagVideo
	}
	return flv.TagAudio
}

// frameRate measures the frame rate of a segment's samples.
func frameRate(s []Sample, timescale uint32) float64 {
	var total uint64
	for _, x := range s {
		total += uint64(x.Duration)
	}
	if total == 0 || timescale == 0 {
		return 0
	}
	r := float64(len(s)) * float64(timescale) / float64(total)
	return math.Round(r*1000) / 1000
}
