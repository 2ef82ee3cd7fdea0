package cmaf

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
)

// MediaSegment is a media segment as ParseMediaSegment reads it back.
type MediaSegment struct {
	Seq            uint32 // mfhd sequence_number of the first moof
	TrackID        uint32
	BaseDecodeTime uint64 // tfdt of the first fragment
	Samples        []SampleInfo
	Duration       uint64 // sum of sample durations
}

// SampleInfo is what a trun says about one sample.
type SampleInfo struct {
	Duration  uint32
	Size      uint32
	CTSOffset int32
	Keyframe  bool
}

// ParseMediaSegment reads a media segment: an optional styp (and any
// sidx, prft, emsg or free boxes) followed by one or more moof+mdat pairs,
// whose samples are concatenated. Sample data must lie in the mdat after
// its moof, and the truns of a moof may not claim more bytes than that mdat
// holds, so the sizes add up to at most len(b). Defaults come from tfhd only, as trex
// lives in the init segment: a sample with no size or duration anywhere
// gets 0, one with no flags anywhere counts as a keyframe. If the segment
// carries several tracks, only the first traf's track is returned; every
// traf is still bounds-checked against its mdat.
func ParseMediaSegment(b []byte) (*MediaSegment, error) {
	seg, err := parseMediaSegment(b)
	if err != nil {
		return nil, fmt.Errorf("cmaf: parse media segment: %w", err)
	}
	return seg, nil
}

func parseMediaSegment(b []byte) (*MediaSegment, error) {
	boxes, err := readBoxes(b)
	if err != nil {
		return nil, err
	}
	seg := &MediaSegment{}
	// A sample costs memory but may cost no mdat bytes (size 0), so the
	// sample total is capped by the input length instead.
	budget := len(b)
	moofs := 0
	for i, bx := range boxes {
		if bx.Type != "moof" {
			continue
		}
		if i+1 >= len(boxes) || boxes[i+1].Type != "mdat" {
			return nil, fmt.Errorf("moof at offset %d not followed by mdat: %w", bx.Offset, ErrTruncated)
		}
		mdat := boxes[i+1]
		f := fragment{
			seg:       seg,
			budget:    &budget,
			moofStart: bx.Offset,
			dataStart: mdat.Offset + int64(mdat.HeaderSize),
			dataEnd:   mdat.Offset + mdat.Size,
			first:     moofs == 0,
		}
		if err := f.parseMoof(payload(b, bx)); err != nil {
			return nil, fmt.Errorf("moof at offset %d: %w", bx.Offset, err)
		}
		moofs++
	}
	if moofs == 0 {
		return nil, fmt.Errorf("no moof: %w", ErrNotFragmented)
	}
	return seg, nil
}

// fragment parses one moof into seg, knowing where the mdat payload after
// it lies so that every trun can be bounds-checked.
type fragment struct {
	seg                *MediaSegment
	budget             *int
	moofStart          int64
	dataStart, dataEnd int64
	claimed            uint64 // sample bytes claimed by truns so far
	first              bool   // first moof of the segment
}

func (f *fragment) parseMoof(p []byte) error {
	mfhd, err := mustChild(p, "mfhd")
	if err != nil {
		return err
	}
	_, _, rest, err := fullBox(mfhd, "mfhd")
	if err != nil {
		return err
	}
	if len(rest) < 4 {
		return fmt.Errorf("mfhd sequence_number: %w", ErrTruncated)
	}
	if f.first {
		f.seg.Seq = binary.BigEndian.Uint32(rest)
	}
	// Without default-base-is-moof a traf's data follows the previous
	// traf's data, and the first one's starts at the moof.
	nextData := f.moofStart
	trafs := 0
	err = walkBoxes(p, func(bx Box) error {
		if bx.Type != "traf" {
			return nil
		}
		end, err := f.parseTraf(payload(p, bx), nextData, f.first && trafs == 0)
		if err != nil {
			return fmt.Errorf("traf %d: %w", trafs, err)
		}
		nextData = end
		trafs++
		return nil
	})
	if err != nil {
		return err
	}
	if trafs == 0 {
		return fmt.Errorf("no traf: %w", ErrMalformed)
	}
	return nil
}

// parseTraf adds the traf's samples to the segment when it belongs to the
// segment's track and returns the offset where its sample data ends.
func (f *fragment) parseTraf(p []byte, implicitBase int64, firstTraf bool) (int64, error) {
	h, err := parseTfhd(p)
	if err != nil {
		return 0, err
	}
	if h.baseOffset < 0 {
		h.baseOffset = implicitBase
		if h.baseIsMoof {
			h.baseOffset = f.moofStart
		}
	}
	if firstTraf {
		f.seg.TrackID = h.trackID
		if f.seg.BaseDecodeTime, err = parseTfdt(p); err != nil {
			return 0, err
		}
	}
	keep := h.trackID == f.seg.TrackID
	next := h.baseOffset
	err = walkBoxes(p, func(bx Box) error {
		if bx.Type != "trun" {
			return nil
		}
		end, err := f.parseTrun(payload(p, bx), &h, next, keep)
		if err != nil {
			return err
		}
		next = end
		return nil
	})
	return next, err
}

// tfhd holds a track fragment header's track and defaults.
type tfhd struct {
	trackID               uint32
	baseOffset            int64 // -1 when absent
	baseIsMoof            bool
	duration, size, flags uint32
}

func parseTfhd(traf []byte) (tfhd, error) {
	p, err := mustChild(traf, "tfhd")
	if err != nil {
		return tfhd{}, err
	}
	_, flags, rest, err := fullBox(p, "tfhd")
	if err != nil {
		return tfhd{}, err
	}
	r := reader{b: rest}
	h := tfhd{trackID: r.u32(), baseOffset: -1, baseIsMoof: flags&tfhdDefaultBaseIsMoof != 0}
	if flags&tfhdBaseDataOffset != 0 {
		off := r.u64()
		// Anything near 2^63 is nonsense and would overflow offset sums.
		if off > 1<<62 {
			return tfhd{}, fmt.Errorf("tfhd base_data_offset %d: %w", off, ErrMalformed)
		}
		h.baseOffset = int64(off)
	}
	if flags&tfhdSampleDescription != 0 {
		r.u32()
	}
	if flags&tfhdDefaultDuration != 0 {
		h.duration = r.u32()
	}
	if flags&tfhdDefaultSize != 0 {
		h.size = r.u32()
	}
	if flags&tfhdDefaultFlags != 0 {
		h.flags = r.u32()
	}
	if r.short {
		return tfhd{}, fmt.Errorf("tfhd flags %#06x with %d bytes: %w", flags, len(rest), ErrTruncated)
	}
	return h, nil
}

func parseTfdt(traf []byte) (uint64, error) {
	p, err := mustChild(traf, "tfdt")
	if err != nil {
		return 0, err
	}
	version, _, rest, err := fullBox(p, "tfdt")
	if err != nil {
		return 0, err
	}
	switch {
	case version == 1 && len(rest) >= 8:
		return binary.BigEndian.Uint64(rest), nil
	case version == 0 && len(rest) >= 4:
		return uint64(binary.BigEndian.Uint32(rest)), nil
	}
	return 0, fmt.Errorf("tfdt version %d with %d bytes: %w", version, len(rest), ErrTruncated)
}

// parseTrun checks that the trun's sample data lies inside the mdat
// payload, appends its samples to the segment when keep is set, and returns
// the offset where its data ends.
func (f *fragment) parseTrun(p []byte, h *tfhd, next int64, keep bool) (int64, error) {
	_, flags, rest, err := fullBox(p, "trun")
	if err != nil {
		return 0, err
	}
	r := reader{b: rest}
	count := r.u32()
	start := next
	if flags&trunDataOffset != 0 {
		start = h.baseOffset + int64(int32(r.u32()))
	}
	var firstFlags uint32
	hasFirstFlags := flags&trunFirstSampleFlags != 0
	if hasFirstFlags {
		firstFlags = r.u32()
	}
	if r.short {
		return 0, fmt.Errorf("trun header: %w", ErrTruncated)
	}
	entry := 4 * bits.OnesCount32(flags&(trunSampleDuration|trunSampleSize|trunSampleFlags|trunSampleCTS))
	if entry > 0 && uint64(count) > uint64(len(r.b)/entry) {
		return 0, fmt.Errorf("trun sample_count %d needs %d bytes, have %d: %w",
			count, uint64(count)*uint64(entry), len(r.b), ErrTruncated)
	}
	if uint64(count) > uint64(*f.budget) {
		return 0, fmt.Errorf("trun sample_count %d exceeds what %d bytes can describe: %w", count, *f.budget, ErrMalformed)
	}
	*f.budget -= int(count)
	if keep {
		f.seg.Samples = slices.Grow(f.seg.Samples, int(count))
	}
	var total uint64
	for i := range count {
		s := SampleInfo{Duration: h.duration, Size: h.size}
		sflags := h.flags
		if i == 0 && hasFirstFlags {
			sflags = firstFlags
		}
		if flags&trunSampleDuration != 0 {
			s.Duration = r.u32()
		}
		if flags&trunSampleSize != 0 {
			s.Size = r.u32()
		}
		if flags&trunSampleFlags != 0 {
			sflags = r.u32()
		}
		if flags&trunSampleCTS != 0 {
			// v0 offsets are unsigned, but encoders wrote negative ones
			// there before v1 existed, so both versions read as int32.
			s.CTSOffset = int32(r.u32())
		}
		s.Keyframe = sflags&flagNonSync == 0
		total += uint64(s.Size)
		if keep {
			f.seg.Samples = append(f.seg.Samples, s)
			f.seg.Duration += uint64(s.Duration)
		}
	}
	if total == 0 {
		return start, nil
	}
	if start < f.dataStart || start > f.dataEnd || total > uint64(f.dataEnd-start) {
		return 0, fmt.Errorf("trun data [%d, %d+%d) outside mdat payload [%d, %d): %w",
			start, start, total, f.dataStart, f.dataEnd, ErrTruncated)
	}
	// Truns pointing at the same bytes would let sample sizes add up to
	// far more than the input, and callers allocate by those sizes.
	f.claimed += total
	if f.claimed > uint64(f.dataEnd-f.dataStart) {
		return 0, fmt.Errorf("truns claim %d bytes of a %d-byte mdat: %w", f.claimed, f.dataEnd-f.dataStart, ErrMalformed)
	}
	return start + int64(total), nil
}

// reader reads big-endian integers, noting rather than panicking when the
// bytes run out.
type reader struct {
	b     []byte
	short bool
}

func (r *reader) u32() uint32 {
	if len(r.b) < 4 {
		r.short, r.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.short, r.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}
