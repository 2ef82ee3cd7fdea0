package flv

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"unsafe"
)

// The seeds under testdata/fuzz/ hold bytes cut from a 320x180 H.264 +
// AAC FLV made by ffmpeg (header, onMetaData, sequence headers, frames)
// and hand-made enhanced-RTMP bodies.

func isSentinel(err error) bool {
	for _, s := range []error{ErrTruncated, ErrTooLarge, ErrBadHeader, ErrUnsupported, ErrMalformed} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// within reports whether sub lies inside b's memory, so parsers return
// views of the input rather than copies they sized from a length field.
func within(sub, b []byte) bool {
	if len(sub) == 0 {
		return true
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return p >= start && p+uintptr(len(sub)) <= start+uintptr(len(b))
}

func FuzzReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b))
		r.MaxTagSize = 1 << 20
		h, err := r.Header()
		var out bytes.Buffer
		w, werr := NewWriter(&out, h)
		if werr != nil {
			t.Fatal(werr)
		}
		var tags []Tag
		for err == nil {
			var tag Tag
			tag, err = r.ReadTag()
			if err == nil {
				tags = append(tags, tag)
				if werr := w.WriteTag(tag); werr != nil {
					t.Fatalf("WriteTag(%+v) = %v", tag, werr)
				}
			} else if errors.Is(err, ErrUnsupported) {
				err = nil // an encrypted tag, skipped
			}
			if r.Offset() > int64(len(b)) {
				t.Fatalf("offset %d past %d bytes", r.Offset(), len(b))
			}
		}
		if err != io.EOF && !isSentinel(err) {
			t.Fatalf("error %v is no sentinel", err)
		}
		// What was read writes back and reads again the same.
		r2 := NewReader(&out)
		for i, want := range tags {
			got, err := r2.ReadTag()
			if err != nil || got.Type != want.Type || got.Timestamp != want.Timestamp || got.StreamID != want.StreamID || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("tag %d read back as %+v, %v; want %+v", i, got, err, want)
			}
		}
		if _, err := r2.ReadTag(); err != io.EOF {
			t.Fatalf("rewritten stream ends with %v", err)
		}
	})
}

func FuzzParseVideo(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseVideo(b)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v is no sentinel", err)
			}
			return
		}
		if !within(info.Payload, b) {
			t.Fatal("payload is not a view of the body")
		}
		n := 0
		for _, f := range []bool{info.Keyframe, info.SequenceHeader, info.EndOfSequence} {
			if f {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("ParseVideo() = %+v: more than one of keyframe, sequence header, end", info)
		}
		if info.CompositionTime < -1<<23 || info.CompositionTime >= 1<<23 {
			t.Fatalf("composition time %d out of 24 bits", info.CompositionTime)
		}
		_ = info.Codec.String()
	})
}

func FuzzParseAudio(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseAudio(b)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v is no sentinel", err)
			}
			return
		}
		if !within(info.Payload, b) {
			t.Fatal("payload is not a view of the body")
		}
		if info.SequenceHeader && info.Codec == CodecAAC && (info.SampleRate <= 0 || info.SampleRate >= 1<<24) {
			t.Fatalf("AAC sequence header with rate %d", info.SampleRate)
		}
		_ = info.Codec.String()
	})
}

func FuzzAVCConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseAVCConfig(b)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v is no sentinel", err)
			}
			return
		}
		for _, s := range append(append([][]byte{}, c.SPS...), c.PPS...) {
			if !within(s, b) {
				t.Fatal("parameter set is not a view of the record")
			}
		}
		c2, err := ParseAVCConfig(c.Marshal())
		if err != nil {
			t.Fatalf("ParseAVCConfig(Marshal()) = %v", err)
		}
		want := *c
		if want.Profile == 0 && want.Compat == 0 && want.Level == 0 && len(c.SPS) > 0 && len(c.SPS[0]) >= 4 {
			want.Profile, want.Compat, want.Level = c.SPS[0][1], c.SPS[0][2], c.SPS[0][3]
		}
		if c2.Profile != want.Profile || c2.Compat != want.Compat || c2.Level != want.Level || c2.LengthSize != want.LengthSize ||
			!equalSets(c2.SPS, want.SPS) || !equalSets(c2.PPS, want.PPS) || !bytes.Equal(c2.Ext, want.Ext) {
			t.Fatalf("round trip %+v became %+v", want, c2)
		}
	})
}

func equalSets(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func FuzzAMF0(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseMetadata(b)
		vals, err := DecodeAMF0(b)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v is no sentinel", err)
			}
			return
		}
		// Encoding is deterministic, so a decoded value encodes to bytes
		// that decode and encode to themselves.
		enc, err := EncodeAMF0(vals...)
		if err != nil {
			t.Fatalf("EncodeAMF0(%v) = %v", vals, err)
		}
		vals2, err := DecodeAMF0(enc)
		if err != nil {
			t.Fatalf("DecodeAMF0(EncodeAMF0()) = %v", err)
		}
		enc2, err := EncodeAMF0(vals2...)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding differs: %x vs %x (%v)", enc, enc2, err)
		}
	})
}
