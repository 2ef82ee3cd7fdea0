// Package segmenter cuts a live source, fed as FLV tags, into GOP-aligned
// source segments near a target duration. Each segment is a
// self-contained FLV (header, onMetaData, sequence headers, then its tags)
// that any worker can demux and transcode on its own.
//
// # Cuts
//
// A video keyframe that plays at or after Start + Target (less 10%) ends
// the open segment at its presentation time. Audio goes to the segment
// whose time range holds it: audio received ahead of that keyframe but
// playing after it moves to the new segment, and the closed segment
// waits, for about the keyframe's composition delay, for audio that
// plays before the cut. A changed video or audio sequence header cuts at
// the next keyframe whatever the duration, so each segment starts with
// the configuration its frames need; an audio change also travels in band.
//
// # Timeline
//
// Segment times are presentation times on one monotonic timeline: the
// source's timestamps plus an offset that is zero until the first
// discontinuity. At a discontinuity (a publisher reconnect announced by
// Discontinuity, or a timestamp that steps back more than a second or
// forward more than Config.MaxJump) the open segment is emitted and, when
// the new timestamps would not continue the timeline, the offset is reset
// so that the new part's first frame lands on the previous segment's End.
// Tag timestamps in Segment.Data carry the same offset, so Data, Start and
// End always agree; they are written modulo 2^32 ms, as FLV requires.
package segmenter

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
)

// ErrTooLarge means a tag is larger than Config.MaxBytes; it is dropped.
var ErrTooLarge = errors.New("segmenter: tag too large")

// Defaults for a zero Config.
const (
	DefaultTarget      = 2 * time.Second
	DefaultMaxDuration = 10 * time.Second
	DefaultMaxJump     = 10 * time.Second
	DefaultMaxBytes    = 64 << 20
)

const (
	// maxBackstep is how far a frame may go back before it counts as a
	// discontinuity: muxers interleave audio and video only roughly.
	maxBackstep = 1000 // ms
	// maxPending bounds the audio and script tags held back since the
	// last video tag, so an audio-only stretch cannot grow them unbounded.
	maxPending = 512
	// maxCompositionTime bounds the keyframe composition time used for a
	// cut; more than a second is a broken stream, not B-frames.
	maxCompositionTime = 1000 // ms
	defaultFrame       = 33   // ms, one frame at 30 fps
	maxTagBody         = 1<<24 - 1
)

// Segment is one GOP-aligned piece of the source.
type Segment struct {
	Seq uint64
	// Start is the presentation time of the segment's first keyframe and
	// End that of the next segment's, or an estimate of the end of the
	// last frame when no keyframe closed the segment.
	Start, End    time.Duration
	Duration      time.Duration // End - Start
	Keyframes     int
	Data          []byte // a complete FLV file
	Discontinuity bool   // the segment does not continue the previous one
}

// Config tunes a Segmenter; the zero value uses the defaults.
type Config struct {
	// Target is the segment duration to aim for: the first keyframe at or
	// after Start + Target (less 10%) closes a segment. Default 2 s.
	Target time.Duration
	// MaxDuration bounds a segment that sees no keyframe: it is emitted as
	// it is, and video is dropped until the next keyframe. Default 10 s;
	// never less than Target.
	MaxDuration time.Duration
	// MaxJump is the forward timestamp jump treated as a discontinuity.
	// Default 10 s.
	MaxJump time.Duration
	// MaxBytes bounds the bytes buffered for unemitted segments: the tag
	// that passes it forces a cut, as MaxDuration does, and a tag larger
	// than it is refused. Default 64 MiB.
	MaxBytes int
	// FirstSeq is the sequence number of the first segment, so a
	// replacement coordinator can continue a stream's numbering.
	FirstSeq uint64
	// Logger receives warnings about forced cuts and discontinuities.
	Logger *slog.Logger
}

// Stats counts what a Segmenter did.
type Stats struct {
	Segments        uint64 // emitted, including those emit refused
	ForcedCuts      uint64 // segments emitted without a closing keyframe
	Discontinuities uint64 // announced or found in the timestamps
	// DroppedTags and DroppedBytes count tags in no segment: those before
	// the first keyframe or after a forced cut, unknown tag types and
	// tags over MaxBytes.
	DroppedTags, DroppedBytes uint64
}

// Segmenter cuts one stream. It is not safe for concurrent use: the
// goroutine that owns the stream's ingest feeds it.
type Segmenter struct {
	cfg  Config
	emit func(Segment) error
	log  *slog.Logger

	// Remembered and prepended to every segment.
	meta, videoConfig, audioConfig []byte

	seq          uint64
	open         *building // receives tags
	closing      *building // cut, waiting for audio before its end
	pending      []held    // audio and script tags since the last video tag
	pendingBytes int

	offset        int64 // timeline = source timestamp + offset, in ms
	last          int64 // latest timeline time in this part
	haveLast      bool
	lastVideo     int64
	haveLastVideo bool
	frameMs       int64 // last video frame interval
	metaFrameMs   int64 // frame interval from onMetaData framerate
	prevEnd       int64
	havePrevEnd   bool
	nextDisc      bool // the next segment opened is a discontinuity
	announced     bool // Discontinuity was called; applied at the next frame
	forceCut      bool // a codec configuration changed: cut at the next keyframe

	stats Stats
}

// held is a tag waiting to learn which segment it belongs to.
type held struct {
	typ  flv.TagType
	ts   int64
	data []byte
}

// building is a segment being written.
type building struct {
	start     int64 // ms, keyframe presentation time
	end       int64 // ms, set when cut
	maxPTS    int64 // of video frames
	keyframes int
	audio     bool
	disc      bool
	buf       bytes.Buffer
	w         *flv.Writer
}

// New returns a Segmenter that passes every segment to emit, on the
// goroutine that calls WriteTag, Flush or Discontinuity's next WriteTag.
// emit owns Segment.Data.
func New(cfg Config, emit func(Segment) error) *Segmenter {
	if cfg.Target <= 0 {
		cfg.Target = DefaultTarget
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = DefaultMaxDuration
	}
	cfg.MaxDuration = max(cfg.MaxDuration, cfg.Target)
	if cfg.MaxJump <= 0 {
		cfg.MaxJump = DefaultMaxJump
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if emit == nil {
		emit = func(Segment) error { return nil }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Segmenter{cfg: cfg, emit: emit, log: log, seq: cfg.FirstSeq}
}

// Stats returns the counters so far.
func (s *Segmenter) Stats() Stats { return s.stats }

// Discontinuity announces that the publisher reconnected: the open
// segment is emitted when the new part's first audio or video frame
// arrives (sequence headers and metadata sent before it are remembered
// for the new part), and the next segment is marked Discontinuity.
func (s *Segmenter) Discontinuity() { s.announced = true }

// WriteTag feeds the next tag of the source. Its error reports a segment
// that emit refused (that segment is lost, its Seq is not reused, and the
// next one is marked Discontinuity) or a tag over MaxBytes (dropped); the
// Segmenter stays usable after either.
func (s *Segmenter) WriteTag(t flv.Tag) error {
	if limit := min(s.cfg.MaxBytes, maxTagBody); len(t.Data) > limit {
		s.drop(len(t.Data))
		return fmt.Errorf("segmenter: %s tag at %d ms of %d bytes, limit %d: %w", t.Type, t.Timestamp, len(t.Data), limit, ErrTooLarge)
	}
	switch t.Type {
	case flv.TagScript:
		if _, err := flv.ParseMetadata(t.Data); err == nil {
			s.setMetadata(t.Data)
			return nil
		}
		return s.other(t)
	case flv.TagAudio:
		info, err := flv.ParseAudio(t.Data)
		if err == nil && info.SequenceHeader {
			s.setAudioConfig(t.Data)
			return s.bound()
		}
		return s.other(t)
	case flv.TagVideo:
		return s.video(t)
	}
	s.drop(len(t.Data))
	return nil
}

// Flush emits the open segment, ending it one frame after its last
// frame; Segmenter goes on waiting for a keyframe.
func (s *Segmenter) Flush() error {
	err := s.emitClosing()
	if s.open != nil {
		s.movePending(len(s.pending))
		err = firstErr(err, s.emitOpen(false))
	}
	s.dropPending(len(s.pending))
	return err
}

func (s *Segmenter) setMetadata(body []byte) {
	s.meta = slices.Clone(flv.TrimSetDataFrame(body))
	m, _ := flv.ParseMetadata(body)
	if fps, ok := m["framerate"].(float64); ok && fps >= 1 && fps <= 1000 {
		s.metaFrameMs = int64(math.Round(1000 / fps))
	}
}

func (s *Segmenter) setAudioConfig(body []byte) {
	if bytes.Equal(body, s.audioConfig) {
		return // publishers repeat sequence headers
	}
	changed := s.audioConfig != nil
	s.audioConfig = slices.Clone(body)
	if s.open != nil && !s.announced {
		// The frames that follow need the new configuration at once; the
		// next segment starts clean with it.
		s.hold(flv.TagAudio, s.last, body)
		s.forceCut = s.forceCut || changed
	}
}

func (s *Segmenter) video(t flv.Tag) error {
	info, perr := flv.ParseVideo(t.Data)
	if perr == nil && info.SequenceHeader {
		if !bytes.Equal(t.Data, s.videoConfig) {
			s.forceCut = s.forceCut || s.videoConfig != nil
			s.videoConfig = slices.Clone(t.Data)
		}
		return nil
	}
	ts, err := s.timeline(t.Timestamp)
	ct := int64(min(max(info.CompositionTime, 0), maxCompositionTime))
	if perr == nil && info.Keyframe {
		return firstErr(err, s.keyframe(t, ts, ts+ct))
	}
	// Frames the parser does not understand travel as inter frames.
	if s.haveLastVideo && ts-s.lastVideo > 0 && ts-s.lastVideo <= 1000 {
		s.frameMs = ts - s.lastVideo
	}
	s.lastVideo, s.haveLastVideo = ts, true
	if s.closing != nil && ts >= s.closing.end {
		err = firstErr(err, s.emitClosing())
	}
	if s.open == nil {
		s.drop(len(t.Data))
		return err
	}
	if ts-s.open.start >= s.cfg.MaxDuration.Milliseconds() {
		s.log.Warn("no keyframe within max duration; cutting and dropping video until the next keyframe",
			"start_ms", s.open.start, "max_duration", s.cfg.MaxDuration)
		s.movePending(len(s.pending))
		err = firstErr(err, s.emitOpen(true))
		s.drop(len(t.Data))
		return err
	}
	s.movePending(len(s.pending))
	s.open.write(flv.TagVideo, ts, t.Data)
	s.open.maxPTS = max(s.open.maxPTS, ts+ct)
	return firstErr(err, s.bound())
}

// keyframe cuts the open segment when it is long enough and starts the
// next one, or starts the first one.
func (s *Segmenter) keyframe(t flv.Tag, dts, pts int64) error {
	if s.haveLastVideo && dts-s.lastVideo > 0 && dts-s.lastVideo <= 1000 {
		s.frameMs = dts - s.lastVideo
	}
	s.lastVideo, s.haveLastVideo = dts, true
	err := s.emitClosing()
	target := s.cfg.Target.Milliseconds()
	if s.open != nil && !s.forceCut && pts < s.open.start+target-target/10 {
		s.movePending(len(s.pending))
		s.open.write(flv.TagVideo, dts, t.Data)
		s.open.keyframes++
		s.open.maxPTS = max(s.open.maxPTS, pts)
		return firstErr(err, s.bound())
	}
	// Audio already here belongs before the cut if it plays before it.
	var carry []held
	if s.open != nil {
		for _, h := range s.pending {
			if h.ts < pts {
				s.open.write(h.typ, h.ts, h.data)
			} else {
				carry = append(carry, h)
			}
		}
		s.closing, s.open = s.open, nil
		s.closing.end = max(pts, s.closing.start+1)
	} else {
		for _, h := range s.pending {
			if h.ts >= dts {
				carry = append(carry, h)
			} else {
				s.drop(len(h.data))
			}
		}
	}
	s.pending, s.pendingBytes = nil, 0

	b := s.newBuilding(pts, dts)
	b.write(flv.TagVideo, dts, t.Data)
	b.keyframes = 1
	b.maxPTS = pts
	for _, h := range carry {
		b.write(h.typ, h.ts, h.data)
	}
	s.open = b
	return firstErr(err, s.bound())
}

func (s *Segmenter) newBuilding(start, dts int64) *building {
	b := &building{start: start, disc: s.nextDisc, audio: s.audioConfig != nil}
	s.nextDisc, s.forceCut = false, false
	b.w, _ = flv.NewWriter(&b.buf, flv.Header{Audio: true, Video: true}) // bytes.Buffer does not fail
	if s.meta != nil {
		b.write(flv.TagScript, dts, s.meta)
	}
	if s.videoConfig != nil {
		b.write(flv.TagVideo, dts, s.videoConfig)
	}
	if s.audioConfig != nil {
		b.write(flv.TagAudio, dts, s.audioConfig)
	}
	return b
}

// other takes an audio frame or a script tag other than metadata.
func (s *Segmenter) other(t flv.Tag) error {
	ts, err := s.timeline(t.Timestamp)
	if s.closing != nil {
		if ts < s.closing.end {
			s.closing.write(t.Type, ts, t.Data)
			return firstErr(err, s.bound())
		}
		err = firstErr(err, s.emitClosing())
	}
	if s.open != nil && ts-s.open.start >= s.cfg.MaxDuration.Milliseconds()+maxBackstep {
		// Video stopped; audio alone must not keep the segment open.
		s.log.Warn("no video within max duration; cutting", "start_ms", s.open.start, "max_duration", s.cfg.MaxDuration)
		s.movePending(len(s.pending))
		err = firstErr(err, s.emitOpen(true))
	}
	s.hold(t.Type, ts, t.Data)
	if len(s.pending) > maxPending {
		if s.open != nil {
			s.movePending(maxPending / 2)
		} else {
			s.dropPending(maxPending / 2)
		}
	}
	return firstErr(err, s.bound())
}

// timeline maps a source timestamp of an audio or video frame onto the
// timeline, handling discontinuities first.
func (s *Segmenter) timeline(raw uint32) (int64, error) {
	ts := int64(raw) + s.offset
	var err error
	switch {
	case s.announced:
		s.announced = false
		err = s.restart(raw, ts, true)
		ts = int64(raw) + s.offset
	case s.haveLast && (ts < s.last-maxBackstep || ts > s.last+s.cfg.MaxJump.Milliseconds() || ts < 0):
		s.log.Warn("timestamp discontinuity", "from_ms", s.last, "to_ms", ts)
		err = s.restart(raw, ts, false)
		ts = int64(raw) + s.offset
	}
	if !s.haveLast || ts > s.last {
		s.last, s.haveLast = ts, true
	}
	return ts, err
}

// restart emits what is buffered and starts a new part of the timeline.
func (s *Segmenter) restart(raw uint32, ts int64, announced bool) error {
	s.stats.Discontinuities++
	err := s.Flush()
	s.nextDisc, s.forceCut = true, false
	s.haveLastVideo = false
	if !s.haveLast {
		return err // nothing came before: the source's timestamps stand
	}
	end := s.last + s.frame()
	if s.havePrevEnd {
		end = max(end, s.prevEnd)
	}
	if !announced || ts < end || ts > end+s.cfg.MaxJump.Milliseconds() {
		s.offset = end - int64(raw)
	}
	s.last = int64(raw) + s.offset
	return err
}

func (s *Segmenter) frame() int64 {
	switch {
	case s.frameMs > 0:
		return s.frameMs
	case s.metaFrameMs > 0:
		return s.metaFrameMs
	}
	return defaultFrame
}

func (s *Segmenter) hold(typ flv.TagType, ts int64, data []byte) {
	s.pending = append(s.pending, held{typ, ts, slices.Clone(data)})
	s.pendingBytes += len(data)
}

// movePending writes the first n held tags into the open segment.
func (s *Segmenter) movePending(n int) {
	for _, h := range s.pending[:n] {
		s.open.write(h.typ, h.ts, h.data)
		s.pendingBytes -= len(h.data)
	}
	s.pending = slices.Delete(s.pending, 0, n)
}

func (s *Segmenter) dropPending(n int) {
	for _, h := range s.pending[:n] {
		s.drop(len(h.data))
		s.pendingBytes -= len(h.data)
	}
	s.pending = slices.Delete(s.pending, 0, n)
}

func (s *Segmenter) drop(n int) {
	s.stats.DroppedTags++
	s.stats.DroppedBytes += uint64(n)
}

// bound keeps the buffered bytes under MaxBytes by emitting early.
func (s *Segmenter) bound() error {
	var err error
	for s.buffered() > s.cfg.MaxBytes {
		switch {
		case s.closing != nil:
			err = firstErr(err, s.emitClosing())
		case s.open != nil:
			s.log.Warn("segment over max bytes; cutting and dropping video until the next keyframe",
				"start_ms", s.open.start, "max_bytes", s.cfg.MaxBytes)
			s.movePending(len(s.pending))
			err = firstErr(err, s.emitOpen(true))
		default:
			s.dropPending(1)
		}
	}
	return err
}

func (s *Segmenter) buffered() int {
	n := s.pendingBytes
	if s.open != nil {
		n += s.open.buf.Len()
	}
	if s.closing != nil {
		n += s.closing.buf.Len()
	}
	return n
}

func (s *Segmenter) emitClosing() error {
	if s.closing == nil {
		return nil
	}
	b := s.closing
	s.closing = nil
	return s.emitSegment(b, b.end, false)
}

// emitOpen emits the open segment, which no keyframe closed; after a
// forced cut the next segment does not follow on.
func (s *Segmenter) emitOpen(forced bool) error {
	b := s.open
	s.open = nil
	if forced {
		s.nextDisc = true
	}
	return s.emitSegment(b, b.maxPTS+s.frame(), forced)
}

func (s *Segmenter) emitSegment(b *building, end int64, forced bool) error {
	end = max(end, b.start+1)
	data := b.buf.Bytes()
	if !b.audio {
		data[4] &^= 0x04 // the header promised audio; take it back
	}
	seg := Segment{
		Seq:           s.seq,
		Start:         ms(b.start),
		End:           ms(end),
		Duration:      ms(end - b.start),
		Keyframes:     b.keyframes,
		Data:          data,
		Discontinuity: b.disc,
	}
	s.seq++
	s.prevEnd, s.havePrevEnd = end, true
	s.stats.Segments++
	if forced {
		s.stats.ForcedCuts++
	}
	if err := s.emit(seg); err != nil {
		// The segment after the lost one does not follow on; it may
		// already be open when a closing segment fails.
		if s.open != nil {
			s.open.disc = true
		} else {
			s.nextDisc = true
		}
		return fmt.Errorf("segmenter: emit segment %d: %w", seg.Seq, err)
	}
	return nil
}

func (b *building) write(typ flv.TagType, ts int64, data []byte) {
	if typ == flv.TagAudio {
		b.audio = true
	}
	// Writing to a bytes.Buffer fails only for bodies over 16 MiB, which
	// WriteTag refuses.
	_ = b.w.WriteTag(flv.Tag{Type: typ, Timestamp: uint32(max(ts, 0)), Data: data})
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
