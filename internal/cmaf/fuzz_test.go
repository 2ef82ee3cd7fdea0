package cmaf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// The seeds under testdata/fuzz/ include tiny ffmpeg outputs (32x32 x264
// and x265, 8 kHz AAC, fragmented with
// -movflags +frag_keyframe+empty_moov+default_base_moof) and segments
// written by this package.

func FuzzReadBoxes(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		boxes, err := ReadBoxes(b)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is neither ErrTruncated nor ErrMalformed", err)
			}
			return
		}
		var off int64
		for _, bx := range boxes {
			if bx.Offset != off || bx.Size < int64(bx.HeaderSize) || bx.Type != string(b[off+4:off+8]) {
				t.Fatalf("box %+v does not follow at %d", bx, off)
			}
			off += bx.Size
		}
		if off != int64(len(b)) {
			t.Fatalf("boxes cover %d of %d bytes", off, len(b))
		}
	})
}

func FuzzParseInit(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		init, err := ParseInit(b)
		if err != nil {
			return
		}
		if init.Timescale == 0 || init.Codec == "" || (init.Handler != "vide" && init.Handler != "soun") {
			t.Fatalf("ParseInit() = %+v without error", init)
		}
		rewritten := slices.Clone(b)
		if err := RewriteSampleEntry(rewritten, init.SampleEntry, "zzzz"); err != nil {
			// Only a broken trak after the one ParseInit read can fail.
			return
		}
		if len(rewritten) != len(b) {
			t.Fatal("RewriteSampleEntry changed the length")
		}
		if _, err := ParseInit(rewritten); !errors.Is(err, ErrUnsupportedCodec) {
			t.Fatalf("ParseInit() after renaming the entry to zzzz: error = %v, want ErrUnsupportedCodec", err)
		}
	})
}

func FuzzParseMediaSegment(f *testing.F) {
	f.Add(AppendMediaSegment(nil, 1, 1, 0, []Sample{{Duration: 1, Keyframe: true, Data: []byte{1}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, err := ParseMediaSegment(b)
		if err != nil {
			return
		}
		// Whatever was read must survive being written and read again;
		// the parser bounds the sizes by the input, so the data fits.
		var total uint64
		samples := make([]Sample, len(seg.Samples))
		for i, s := range seg.Samples {
			total += uint64(s.Size)
			samples[i] = Sample{Duration: s.Duration, CTSOffset: s.CTSOffset, Keyframe: s.Keyframe}
		}
		if total > uint64(len(b)) {
			t.Fatalf("samples hold %d bytes, input only %d", total, len(b))
		}
		zeros := make([]byte, total)
		for i, s := range seg.Samples {
			samples[i].Data = zeros[:s.Size]
		}
		again, err := ParseMediaSegment(AppendMediaSegment(nil, seg.Seq, seg.TrackID, seg.BaseDecodeTime, samples))
		if err != nil {
			t.Fatalf("reading back the rewritten segment: %v", err)
		}
		if again.Seq != seg.Seq || again.TrackID != seg.TrackID || again.BaseDecodeTime != seg.BaseDecodeTime ||
			again.Duration != seg.Duration || !slices.Equal(again.Samples, seg.Samples) {
			t.Fatalf("rewritten segment reads back as %+v, want %+v", again, seg)
		}
	})
}

func FuzzSplitAnnexB(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		nalus := SplitAnnexB(b)
		var annexB []byte
		for _, n := range nalus {
			if len(n) == 0 || n[len(n)-1] == 0 || bytes.Contains(n, startCode) {
				t.Fatalf("NAL unit %x is empty, ends in 0 or holds a start code", n)
			}
			annexB = append(append(annexB, 0, 0, 0, 1), n...)
		}
		if again := SplitAnnexB(annexB); !slices.EqualFunc(again, nalus, bytes.Equal) {
			t.Fatalf("re-split gives %x, want %x", again, nalus)
		}
		avcc := AppendAVCC(nil, b)
		for _, n := range nalus {
			if len(avcc) < 4 || int(binary.BigEndian.Uint32(avcc)) != len(n) || !bytes.Equal(avcc[4:4+len(n)], n) {
				t.Fatalf("AppendAVCC() does not carry %x next", n)
			}
			avcc = avcc[4+len(n):]
		}
		if len(avcc) != 0 {
			t.Fatalf("AppendAVCC() has %d bytes left over", len(avcc))
		}
	})
}
