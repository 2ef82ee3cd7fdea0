package cmaf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

func TestMediaSegmentRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		seq     uint32
		trackID uint32
		base    uint64
		samples []Sample
	}{
		{
			name: "video with B-frames and negative CTS", seq: 7, trackID: 1, base: 90000 * 3600,
			samples: []Sample{
				{Duration: 3000, CTSOffset: 3000, Keyframe: true, Data: []byte{0, 0, 0, 2, 0x65, 0x88}},
				{Duration: 3000, CTSOffset: 6000, Data: []byte{0, 0, 0, 1, 0x41}},
				{Duration: 3000, CTSOffset: -3000, Data: []byte{0, 0, 0, 1, 0x01}},
				{Duration: 3000, CTSOffset: 0, Data: []byte{0, 0, 0, 3, 0x01, 0x02, 0x03}},
			},
		},
		{
			name: "audio, all sync", seq: 1, trackID: 2, base: 48000 * 10,
			samples: []Sample{
				{Duration: 1024, Keyframe: true, Data: bytes.Repeat([]byte{0x21}, 200)},
				{Duration: 1024, Keyframe: true, Data: bytes.Repeat([]byte{0x22}, 180)},
				{Duration: 1023, Keyframe: true, Data: bytes.Repeat([]byte{0x23}, 190)},
			},
		},
		{
			name: "decode time past 32 bits", seq: 1<<32 - 1, trackID: 9, base: 1<<40 + 5,
			samples: []Sample{{Duration: 1, Keyframe: true, Data: []byte{1}}},
		},
		{
			name: "empty sample data", seq: 3, trackID: 1,
			samples: []Sample{{Duration: 10, Keyframe: true}, {Duration: 10, CTSOffset: -1 << 31}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteMediaSegment(&buf, tt.seq, tt.trackID, tt.base, tt.samples); err != nil {
				t.Fatalf("WriteMediaSegment() error = %v", err)
			}
			b := buf.Bytes()
			if app := AppendMediaSegment([]byte("prefix"), tt.seq, tt.trackID, tt.base, tt.samples); !bytes.Equal(app[6:], b) || string(app[:6]) != "prefix" {
				t.Error("AppendMediaSegment() differs from WriteMediaSegment() or lost dst")
			}

			seg, err := ParseMediaSegment(b)
			if err != nil {
				t.Fatalf("ParseMediaSegment() error = %v", err)
			}
			if seg.Seq != tt.seq || seg.TrackID != tt.trackID || seg.BaseDecodeTime != tt.base {
				t.Errorf("seq, track, tfdt = %d, %d, %d; want %d, %d, %d",
					seg.Seq, seg.TrackID, seg.BaseDecodeTime, tt.seq, tt.trackID, tt.base)
			}
			var want []SampleInfo
			var dur uint64
			for _, s := range tt.samples {
				want = append(want, SampleInfo{Duration: s.Duration, Size: uint32(len(s.Data)), CTSOffset: s.CTSOffset, Keyframe: s.Keyframe})
				dur += uint64(s.Duration)
			}
			if !slices.Equal(seg.Samples, want) {
				t.Errorf("samples = %+v, want %+v", seg.Samples, want)
			}
			if seg.Duration != dur {
				t.Errorf("duration = %d, want %d", seg.Duration, dur)
			}

			raw := readRawTrun(t, b)
			if raw.moofOffset+int64(raw.dataOffset) != raw.mdatPayload {
				t.Errorf("moof at %d + data_offset %d = %d, want mdat payload at %d",
					raw.moofOffset, raw.dataOffset, raw.moofOffset+int64(raw.dataOffset), raw.mdatPayload)
			}
			var data []byte
			for _, s := range tt.samples {
				data = append(data, s.Data...)
			}
			if !bytes.Equal(b[raw.mdatPayload:], data) {
				t.Error("mdat payload is not the samples' data in order")
			}
			for i, s := range tt.samples {
				want := uint32(0x02000000) // sample_depends_on = 2
				if !s.Keyframe {
					want = 0x01010000 // sample_depends_on = 1, sample_is_non_sync_sample
				}
				if raw.flags[i] != want {
					t.Errorf("sample %d flags = %#08x, want %#08x", i, raw.flags[i], want)
				}
			}
			if raw.version != 1 || raw.tfhdFlags != tfhdDefaultBaseIsMoof || raw.tfdtVersion != 1 {
				t.Errorf("trun v%d, tfhd flags %#x, tfdt v%d; want trun v1, default-base-is-moof, tfdt v1",
					raw.version, raw.tfhdFlags, raw.tfdtVersion)
			}
		})
	}
}

// rawTrun is what the spec-level checks need from a written segment.
type rawTrun struct {
	moofOffset, mdatPayload int64
	dataOffset              int32
	version                 uint8
	tfhdFlags               uint32
	tfdtVersion             uint8
	flags                   []uint32
}

func readRawTrun(t *testing.T, b []byte) rawTrun {
	t.Helper()
	boxes, err := ReadBoxes(b)
	if err != nil {
		t.Fatal(err)
	}
	var r rawTrun
	for _, bx := range boxes {
		switch bx.Type {
		case "moof":
			r.moofOffset = bx.Offset
			traf, err := findPath(payload(b, bx), "traf")
			if err != nil {
				t.Fatal(err)
			}
			tfhd, _ := mustChild(traf, "tfhd")
			_, r.tfhdFlags, _, _ = fullBox(tfhd, "tfhd")
			tfdt, _ := mustChild(traf, "tfdt")
			r.tfdtVersion, _, _, _ = fullBox(tfdt, "tfdt")
			trun, err := mustChild(traf, "trun")
			if err != nil {
				t.Fatal(err)
			}
			var rest []byte
			r.version, _, rest, _ = fullBox(trun, "trun")
			n := binary.BigEndian.Uint32(rest)
			r.dataOffset = int32(binary.BigEndian.Uint32(rest[4:]))
			for i := range n {
				r.flags = append(r.flags, binary.BigEndian.Uint32(rest[8+16*i+8:]))
			}
		case "mdat":
			r.mdatPayload = bx.Offset + int64(bx.HeaderSize)
		}
	}
	return r
}

func TestWriteMediaSegmentErrors(t *testing.T) {
	t.Run("no samples", func(t *testing.T) {
		err := WriteMediaSegment(&bytes.Buffer{}, 1, 1, 0, nil)
		if !errors.Is(err, ErrNoSamples) {
			t.Errorf("error = %v, want ErrNoSamples", err)
		}
	})
	t.Run("writer fails", func(t *testing.T) {
		errDisk := errors.New("disk full")
		err := WriteMediaSegment(failWriter{errDisk}, 1, 1, 0, []Sample{{Duration: 1, Keyframe: true}})
		if !errors.Is(err, errDisk) {
			t.Errorf("error = %v, want it to wrap %v", err, errDisk)
		}
	})
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// fragmentBytes builds moof+mdat where trafs(dataOffset) returns the traf
// boxes given the data offset that points at the mdat payload.
func fragmentBytes(seq uint32, data []byte, trafs func(dataOffset uint32) [][]byte) []byte {
	moof := func(off uint32) []byte {
		return box("moof", append([][]byte{fullbox("mfhd", 0, 0, u32(seq))}, trafs(off)...)...)
	}
	size := len(moof(0))
	return slices.Concat(moof(uint32(size+8)), box("mdat", data))
}

func TestParseMediaSegmentVariants(t *testing.T) {
	const nonSync = 0x01010000
	tests := []struct {
		name string
		in   []byte
		want MediaSegment
	}{
		{
			name: "tfhd defaults, trun v0, first-sample-flags, tfdt v0, no styp",
			in: fragmentBytes(5, make([]byte, 9), func(off uint32) [][]byte {
				return [][]byte{box("traf",
					fullbox("tfhd", 0, tfhdDefaultBaseIsMoof|tfhdDefaultDuration|tfhdDefaultSize|tfhdDefaultFlags, u32(3, 1000, 3, nonSync)),
					fullbox("tfdt", 0, 0, u32(4321)),
					fullbox("trun", 0, trunDataOffset|trunFirstSampleFlags, u32(3, off, 0x02000000)),
				)}
			}),
			want: MediaSegment{Seq: 5, TrackID: 3, BaseDecodeTime: 4321, Duration: 3000, Samples: []SampleInfo{
				{Duration: 1000, Size: 3, Keyframe: true},
				{Duration: 1000, Size: 3},
				{Duration: 1000, Size: 3},
			}},
		},
		{
			name: "trun v0 CTS offsets read as signed",
			in: fragmentBytes(1, make([]byte, 2), func(off uint32) [][]byte {
				return [][]byte{box("traf",
					fullbox("tfhd", 0, tfhdDefaultBaseIsMoof|tfhdDefaultSize, u32(1, 1)),
					fullbox("tfdt", 1, 0, u64(0)),
					fullbox("trun", 0, trunDataOffset|trunSampleCTS, u32(2, off, 0xFFFFFFFF, 7)),
				)}
			}),
			want: MediaSegment{Seq: 1, TrackID: 1, Samples: []SampleInfo{
				{Size: 1, CTSOffset: -1, Keyframe: true},
				{Size: 1, CTSOffset: 7, Keyframe: true},
			}},
		},
		{
			name: "two truns, the second continuing the first's data",
			in: fragmentBytes(1, make([]byte, 5), func(off uint32) [][]byte {
				return [][]byte{box("traf",
					fullbox("tfhd", 0, tfhdDefaultBaseIsMoof, u32(1)),
					fullbox("tfdt", 1, 0, u64(10)),
					fullbox("trun", 0, trunDataOffset|trunSampleSize, u32(1, off, 2)),
					fullbox("trun", 0, trunSampleSize|trunSampleDuration, u32(1, 20, 3)),
				)}
			}),
			want: MediaSegment{Seq: 1, TrackID: 1, BaseDecodeTime: 10, Duration: 20, Samples: []SampleInfo{
				{Size: 2, Keyframe: true},
				{Duration: 20, Size: 3, Keyframe: true},
			}},
		},
		{
			name: "second track skipped but present",
			in: fragmentBytes(2, make([]byte, 4), func(off uint32) [][]byte {
				return [][]byte{
					box("traf",
						fullbox("tfhd", 0, tfhdDefaultBaseIsMoof, u32(1)),
						fullbox("tfdt", 1, 0, u64(0)),
						fullbox("trun", 1, trunDataOffset|trunSampleSize, u32(1, off, 3))),
					box("traf",
						fullbox("tfhd", 0, tfhdDefaultBaseIsMoof, u32(2)),
						fullbox("tfdt", 1, 0, u64(0)),
						fullbox("trun", 1, trunDataOffset|trunSampleSize, u32(1, off+3, 1))),
				}
			}),
			want: MediaSegment{Seq: 2, TrackID: 1, Samples: []SampleInfo{{Size: 3, Keyframe: true}}},
		},
		{
			name: "base data offset in tfhd",
			in: slices.Concat(box("styp", []byte("msdh"), u32(0)), fragmentBytes(1, make([]byte, 4), func(off uint32) [][]byte {
				return [][]byte{box("traf",
					// styp is 16 bytes, so the payload sits at 16+off.
					fullbox("tfhd", 0, tfhdBaseDataOffset, u32(1), u64(16+uint64(off))),
					fullbox("tfdt", 1, 0, u64(0)),
					fullbox("trun", 1, trunSampleSize, u32(2, 1, 3)),
				)}
			})),
			want: MediaSegment{Seq: 1, TrackID: 1, Samples: []SampleInfo{{Size: 1, Keyframe: true}, {Size: 3, Keyframe: true}}},
		},
		{
			name: "two fragments concatenated",
			in: slices.Concat(
				AppendMediaSegment(nil, 8, 1, 100, []Sample{{Duration: 10, Keyframe: true, Data: []byte{1}}}),
				AppendMediaSegment(nil, 9, 1, 110, []Sample{{Duration: 10, Data: []byte{2, 3}}}),
			),
			want: MediaSegment{Seq: 8, TrackID: 1, BaseDecodeTime: 100, Duration: 20, Samples: []SampleInfo{
				{Duration: 10, Size: 1, Keyframe: true},
				{Duration: 10, Size: 2},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMediaSegment(tt.in)
			if err != nil {
				t.Fatalf("ParseMediaSegment() error = %v", err)
			}
			if got.Seq != tt.want.Seq || got.TrackID != tt.want.TrackID || got.BaseDecodeTime != tt.want.BaseDecodeTime || got.Duration != tt.want.Duration {
				t.Errorf("ParseMediaSegment() = %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(got.Samples, tt.want.Samples) {
				t.Errorf("samples = %+v, want %+v", got.Samples, tt.want.Samples)
			}
		})
	}
}

func TestParseMediaSegmentErrors(t *testing.T) {
	traf := func(trun []byte) func(uint32) [][]byte {
		return func(uint32) [][]byte {
			return [][]byte{box("traf", fullbox("tfhd", 0, tfhdDefaultBaseIsMoof, u32(1)), fullbox("tfdt", 1, 0, u64(0)), trun)}
		}
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{name: "empty", in: nil, wantErr: ErrNotFragmented},
		{name: "garbage", in: []byte("abc"), wantErr: ErrTruncated},
		{name: "styp only", in: box("styp", []byte("msdh"), u32(0)), wantErr: ErrNotFragmented},
		{name: "moof without mdat", in: box("moof", fullbox("mfhd", 0, 0, u32(1))), wantErr: ErrTruncated},
		{name: "no mfhd", in: slices.Concat(box("moof"), box("mdat")), wantErr: ErrMalformed},
		{name: "no traf", in: slices.Concat(box("moof", fullbox("mfhd", 0, 0, u32(1))), box("mdat")), wantErr: ErrMalformed},
		{
			name: "no tfdt",
			in: fragmentBytes(1, nil, func(uint32) [][]byte {
				return [][]byte{box("traf", fullbox("tfhd", 0, tfhdDefaultBaseIsMoof, u32(1)))}
			}),
			wantErr: ErrMalformed,
		},
		{
			name: "tfhd cut short",
			in: fragmentBytes(1, nil, func(uint32) [][]byte {
				return [][]byte{box("traf", fullbox("tfhd", 0, tfhdDefaultDuration, u32(1)), fullbox("tfdt", 1, 0, u64(0)))}
			}),
			wantErr: ErrTruncated,
		},
		{
			name:    "sample count beyond trun",
			in:      fragmentBytes(1, nil, traf(fullbox("trun", 1, trunSampleSize, u32(1<<30, 1)))),
			wantErr: ErrTruncated,
		},
		{
			name:    "sample count beyond input without per-sample fields",
			in:      fragmentBytes(1, nil, traf(fullbox("trun", 1, 0, u32(1<<31)))),
			wantErr: ErrMalformed,
		},
		{
			name:    "data past mdat",
			in:      fragmentBytes(1, make([]byte, 4), traf(fullbox("trun", 1, trunSampleSize, u32(1, 5)))),
			wantErr: ErrTruncated,
		},
		{
			name: "negative data offset",
			in: fragmentBytes(1, make([]byte, 4), func(uint32) [][]byte {
				return traf(fullbox("trun", 1, trunDataOffset|trunSampleSize, u32(1, 0xFFFFFFF0, 1)))(0)
			}),
			wantErr: ErrTruncated,
		},
		{
			name: "two truns claiming the same bytes",
			in: fragmentBytes(1, make([]byte, 4), func(off uint32) [][]byte {
				return traf(slices.Concat(
					fullbox("trun", 1, trunDataOffset|trunSampleSize, u32(1, off, 4)),
					fullbox("trun", 1, trunDataOffset|trunSampleSize, u32(1, off, 4))))(0)
			}),
			wantErr: ErrMalformed,
		},
		{
			name: "second track's data past mdat",
			in: fragmentBytes(2, make([]byte, 4), func(off uint32) [][]byte {
				return [][]byte{
					box("traf", fullbox("tfhd", 0, tfhdDefaultBaseIsMoof, u32(1)), fullbox("tfdt", 1, 0, u64(0)),
						fullbox("trun", 1, trunDataOffset|trunSampleSize, u32(1, off, 3))),
					box("traf", fullbox("tfhd", 0, tfhdDefaultBaseIsMoof, u32(2)), fullbox("tfdt", 1, 0, u64(0)),
						fullbox("trun", 1, trunDataOffset|trunSampleSize, u32(1, off+3, 2))),
				}
			}),
			wantErr: ErrTruncated,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMediaSegment(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseMediaSegment() error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// Every strict prefix of a segment is a cut-off download and must be
// rejected rather than read as a shorter segment.
func TestParseMediaSegmentPrefixes(t *testing.T) {
	b := AppendMediaSegment(nil, 1, 1, 0, []Sample{
		{Duration: 1, Keyframe: true, Data: []byte{1, 2, 3}},
		{Duration: 1, Data: []byte{4}},
	})
	for n := range len(b) {
		if _, err := ParseMediaSegment(b[:n]); err == nil {
			t.Errorf("ParseMediaSegment(first %d of %d bytes) succeeded", n, len(b))
		}
	}
}
