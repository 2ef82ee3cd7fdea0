package cmaf

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// Sample is one access unit, in decode order.
type Sample struct {
	Duration  uint32 // in track timescale
	CTSOffset int32  // presentation time minus decode time, may be negative
	Keyframe  bool   // sync sample (IDR)
	Data      []byte // video: 4-byte length-prefixed NAL units; audio: raw AAC frame
}

// Sample flags (ISO/IEC 14496-12 8.8.3.1).
const (
	flagDependsOnOthers = 1 << 24 // sample_depends_on = 1
	flagDependsOnNone   = 2 << 24 // sample_depends_on = 2
	flagNonSync         = 1 << 16 // sample_is_non_sync_sample
)

// tfhd and trun flags (ISO/IEC 14496-12 8.8.7, 8.8.8).
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
)

// Fixed sizes of the boxes WriteMediaSegment emits.
const (
	stypSize      = 8 + 4 + 4 + 4 // major, minor, one compatible brand
	mfhdSize      = 8 + 4 + 4     // full box, sequence_number
	tfhdSize      = 8 + 4 + 4     // full box, track_ID
	tfdtSize      = 8 + 4 + 8     // full box v1, baseMediaDecodeTime
	trunHeadSize  = 8 + 4 + 4 + 4 // full box, sample_count, data_offset
	trunEntrySize = 4 * 4         // duration, size, flags, CTS offset
	trafHeadSize  = 8 + tfhdSize + tfdtSize
	moofHeadSize  = 8 + mfhdSize
	maxBox32      = 1<<32 - 1
)

// WriteMediaSegment writes one media segment for a single track: styp,
// moof (mfhd, traf with tfhd default-base-is-moof, tfdt v1 and a v1 trun
// carrying data offset and every per-sample field) and mdat. The segment's
// decode time starts at exactly baseDecodeTime. Keyframes are flagged
// sample_depends_on=2, other samples sample_depends_on=1 and
// sample_is_non_sync_sample.
func WriteMediaSegment(w io.Writer, seq uint32, trackID uint32, baseDecodeTime uint64, samples []Sample) error {
	if len(samples) == 0 {
		return fmt.Errorf("cmaf: write media segment %d: %w", seq, ErrNoSamples)
	}
	if _, err := w.Write(AppendMediaSegment(nil, seq, trackID, baseDecodeTime, samples)); err != nil {
		return fmt.Errorf("cmaf: write media segment %d: %w", seq, err)
	}
	return nil
}

// AppendMediaSegment appends to dst the segment WriteMediaSegment writes
// and returns the extended slice; it grows dst at most once. Unlike
// WriteMediaSegment it does not refuse an empty samples list.
func AppendMediaSegment(dst []byte, seq, trackID uint32, baseDecodeTime uint64, samples []Sample) []byte {
	var dataSize uint64
	for _, s := range samples {
		dataSize += uint64(len(s.Data))
	}
	trunLen := trunHeadSize + trunEntrySize*len(samples)
	trafSize := trafHeadSize + trunLen
	moofSize := moofHeadSize + trafSize
	mdatHeader := 8
	if dataSize+8 > maxBox32 {
		mdatHeader = 16
	}
	dst = slices.Grow(dst, stypSize+moofSize+mdatHeader+int(dataSize))

	// styp: msdh is the DASH media segment brand; claiming cmfs would
	// promise that the first sample is a keyframe, which callers writing
	// low-latency parts do not guarantee.
	dst = appendBoxHeader(dst, stypSize, "styp")
	dst = append(dst, "msdh"...)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = append(dst, "msdh"...)

	dst = appendBoxHeader(dst, moofSize, "moof")
	dst = appendFullBoxHeader(dst, mfhdSize, "mfhd", 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, seq)

	dst = appendBoxHeader(dst, trafSize, "traf")
	dst = appendFullBoxHeader(dst, tfhdSize, "tfhd", 0, tfhdDefaultBaseIsMoof)
	dst = binary.BigEndian.AppendUint32(dst, trackID)
	dst = appendFullBoxHeader(dst, tfdtSize, "tfdt", 1, 0)
	dst = binary.BigEndian.AppendUint64(dst, baseDecodeTime)

	dst = appendFullBoxHeader(dst, trunLen, "trun", 1,
		trunDataOffset|trunSampleDuration|trunSampleSize|trunSampleFlags|trunSampleCTS)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(samples)))
	// The data offset is relative to the moof start (default-base-is-moof).
	dst = binary.BigEndian.AppendUint32(dst, uint32(moofSize+mdatHeader))
	for _, s := range samples {
		flags := uint32(flagDependsOnNone)
		if !s.Keyframe {
			flags = flagDependsOnOthers | flagNonSync
		}
		dst = binary.BigEndian.AppendUint32(dst, s.Duration)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.Data)))
		dst = binary.BigEndian.AppendUint32(dst, flags)
		dst = binary.BigEndian.AppendUint32(dst, uint32(s.CTSOffset))
	}

	if mdatHeader == 16 {
		dst = appendBoxHeader(dst, 1, "mdat")
		dst = binary.BigEndian.AppendUint64(dst, dataSize+16)
	} else {
		dst = appendBoxHeader(dst, int(dataSize)+8, "mdat")
	}
	for _, s := range samples {
		dst = append(dst, s.Data...)
	}
	return dst
}

func appendBoxHeader(dst []byte, size int, typ string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	return append(dst, typ...)
}

func appendFullBoxHeader(dst []byte, size int, typ string, version uint8, flags uint32) []byte {
	dst = appendBoxHeader(dst, size, typ)
	return binary.BigEndian.AppendUint32(dst, uint32(version)<<24|flags&0xFFFFFF)
}
