package cmafflv

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/livegrid/livegrid/internal/cmaf"
)

// Sample is one access unit of a media segment, in decode order.
type Sample struct {
	DTS       uint64 // decode time, in the track's timescale
	Duration  uint32
	CTSOffset int32 // presentation minus decode time; negative with trun v1
	Keyframe  bool
	Data      []byte // aliases the segment
}

// tfhd and trun flags (ISO/IEC 14496-12 8.8.7, 8.8.8) and the sample
// flag this package reads.
const (
	tfhdBaseDataOffset    = 0x000001
	tfhdSampleDescription = 0x000002
	tfhdDefaultDuration   = 0x000008
	tfhdDefaultSize       = 0x000010
	tfhdDefaultFlags      = 0x000020
	tfhdDefaultBaseIsMoof = 0x020000

	trunDataOffset       = 0x000001
	trunFirstSampleFlags = 0x000004
	trunSampleDuration   = 0x000100
	trunSampleSize       = 0x000200
	trunSampleFlags      = 0x000400
	trunSampleCTS        = 0x000800

	sampleNonSync = 0x00010000
)

// Samples reads the track's samples from a media segment: one or more
// moof+mdat pairs, whose trafs for other tracks are skipped. Each
// traf's tfdt sets its decode time; a traf without one continues from
// the previous. Every sample's data must lie in the mdat after its moof.
func (t *Track) Samples(seg []byte) ([]Sample, error) {
	s, err := t.samples(seg)
	if err != nil {
		return nil, fmt.Errorf("cmafflv: read media segment: %w", err)
	}
	return s, nil
}

// fragReader reads one segment's fragments.
type fragReader struct {
	t      *Track
	seg    []byte
	out    []Sample
	budget int    // samples the input can still describe
	dts    uint64 // next decode time of the track
}

func (t *Track) samples(seg []byte) ([]Sample, error) {
	boxes, err := cmaf.ReadBoxes(seg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	r := fragReader{t: t, seg: seg, budget: len(seg)}
	moofs := 0
	for i, bx := range boxes {
		if bx.Type != "moof" {
			continue
		}
		if i+1 == len(boxes) || boxes[i+1].Type != "mdat" {
			return nil, fmt.Errorf("moof at %d is not followed by an mdat: %w", bx.Offset, ErrMalformed)
		}
		mdat := boxes[i+1]
		if err := r.moof(bx, mdat.Offset+int64(mdat.HeaderSize), mdat.Offset+mdat.Size); err != nil {
			return nil, fmt.Errorf("moof at %d: %w", bx.Offset, err)
		}
		moofs++
	}
	if moofs == 0 {
		return nil, fmt.Errorf("no moof: %w", ErrMalformed)
	}
	return r.out, nil
}

// moof reads the trafs of one moof whose mdat payload is [dataStart,
// dataEnd) of the segment.
func (r *fragReader) moof(moof cmaf.Box, dataStart, dataEnd int64) error {
	p := payload(r.seg, moof)
	boxes, err := cmaf.ReadBoxes(p)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// Without a base offset, the first traf's data starts at the moof and
	// each later one's where the previous one's ended.
	next := moof.Offset
	for _, bx := range boxes {
		if bx.Type != "traf" {
			continue
		}
		f := trafReader{fragReader: r, moofStart: moof.Offset, dataStart: dataStart, dataEnd: dataEnd}
		if next, err = f.read(payload(p, bx), next); err != nil {
			return err
		}
	}
	return nil
}

type trafReader struct {
	*fragReader
	moofStart, dataStart, dataEnd int64

	keep                  bool
	duration, size, flags uint32 // defaults
}

// read reads one traf whose implicit data base is next and returns where
// its data ends.
func (f *trafReader) read(traf []byte, next int64) (int64, error) {
	tfhd, err := child(traf, "tfhd")
	if err != nil {
		return 0, err
	}
	if len(tfhd) < 8 {
		return 0, fmt.Errorf("tfhd: %w", ErrMalformed)
	}
	flags := binary.BigEndian.Uint32(tfhd) & 0xffffff
	f.keep = binary.BigEndian.Uint32(tfhd[4:]) == f.t.TrackID
	f.duration, f.size, f.flags = f.t.defDuration, f.t.defSize, f.t.defFlags
	rd := reader{b: tfhd[8:]}
	base := next
	if flags&tfhdDefaultBaseIsMoof != 0 {
		base = f.moofStart
	}
	if flags&tfhdBaseDataOffset != 0 {
		off := rd.u64()
		if off > 1<<62 {
			return 0, fmt.Errorf("tfhd base_data_offset %d: %w", off, ErrMalformed)
		}
		base = int64(off)
	}
	if flags&tfhdSampleDescription != 0 {
		rd.u32()
	}
	if flags&tfhdDefaultDuration != 0 {
		f.duration = rd.u32()
	}
	if flags&tfhdDefaultSize != 0 {
		f.size = rd.u32()
	}
	if flags&tfhdDefaultFlags != 0 {
		f.flags = rd.u32()
	}
	if rd.short {
		return 0, fmt.Errorf("tfhd flags %#x: %w", flags, ErrMalformed)
	}
	if f.keep {
		if tfdt, err := child(traf, "tfdt"); err == nil {
			switch {
			case len(tfdt) >= 12 && tfdt[0] == 1:
				f.dts = binary.BigEndian.Uint64(tfdt[4:])
			case len(tfdt) >= 8 && tfdt[0] == 0:
				f.dts = uint64(binary.BigEndian.Uint32(tfdt[4:]))
			default:
				return 0, fmt.Errorf("tfdt: %w", ErrMalformed)
			}
		}
	}
	boxes, err := cmaf.ReadBoxes(traf)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	pos := base
	for _, bx := range boxes {
		if bx.Type != "trun" {
			continue
		}
		if pos, err = f.trun(payload(traf, bx), base, pos); err != nil {
			return 0, err
		}
	}
	return pos, nil
}

// trun reads one track run whose data, without a data_offset, starts at
// pos, and returns where its data ends.
func (f *trafReader) trun(p []byte, base, pos int64) (int64, error) {
	if len(p) < 8 {
		return 0, fmt.Errorf("trun: %w", ErrMalformed)
	}
	flags := binary.BigEndian.Uint32(p) & 0xffffff
	count := binary.BigEndian.Uint32(p[4:])
	rd := reader{b: p[8:]}
	if flags&trunDataOffset != 0 {
		pos = base + int64(int32(rd.u32()))
	}
	firstFlags, hasFirst := uint32(0), flags&trunFirstSampleFlags != 0
	if hasFirst {
		firstFlags = rd.u32()
	}
	if rd.short {
		return 0, fmt.Errorf("trun header: %w", ErrMalformed)
	}
	entry := 4 * bits.OnesCount32(flags&(trunSampleDuration|trunSampleSize|trunSampleFlags|trunSampleCTS))
	if entry > 0 && uint64(count) > uint64(len(rd.b)/entry) {
		return 0, fmt.Errorf("trun of %d samples in %d bytes: %w", count, len(rd.b), ErrMalformed)
	}
	if uint64(count) > uint64(f.budget) {
		return 0, fmt.Errorf("trun of %d samples in a %d-byte segment: %w", count, len(f.seg), ErrMalformed)
	}
	f.budget -= int(count)
	for i := range count {
		s := Sample{Duration: f.duration}
		size, sflags := f.size, f.flags
		if i == 0 && hasFirst {
			sflags = firstFlags
		}
		if flags&trunSampleDuration != 0 {
			s.Duration = rd.u32()
		}
		if flags&trunSampleSize != 0 {
			size = rd.u32()
		}
		if flags&trunSampleFlags != 0 {
			sflags = rd.u32()
		}
		if flags&trunSampleCTS != 0 {
			// v0 offsets are unsigned, but encoders wrote negative ones
			// there before v1 existed, so both read as signed.
			s.CTSOffset = int32(rd.u32())
		}
		if pos < f.dataStart || pos > f.dataEnd || int64(size) > f.dataEnd-pos {
			return 0, fmt.Errorf("sample data [%d, +%d) outside the mdat payload [%d, %d): %w",
				pos, size, f.dataStart, f.dataEnd, ErrMalformed)
		}
		s.Keyframe = sflags&sampleNonSync == 0
		s.Data = f.seg[pos : pos+int64(size) : pos+int64(size)]
		pos += int64(size)
		if f.keep {
			s.DTS = f.dts
			f.dts = addSat(f.dts, uint64(s.Duration))
			if size > 0 {
				f.out = append(f.out, s)
			}
		}
	}
	return pos, nil
}

func addSat(a, b uint64) uint64 {
	if s, carry := bits.Add64(a, b, 0); carry == 0 {
		return s
	}
	return math.MaxUint64
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
