package cmafflv

import (
	"io"
	"testing"

	"github.com/livegrid/livegrid/internal/flv"
)

// FuzzConvert feeds an init segment and a media segment through
// ParseInit, Samples and a Muxer: nothing may panic, every sample's data
// must lie inside the segment, and the tags must write. When the init
// segment does not parse, the media segment is read as track 1 of a
// stand-in H.264 track, so it is fuzzed either way. The seeds under
// testdata/fuzz/ are real ffmpeg and engine segments (H.264 with both
// kinds of composition offsets, HEVC, AV1, AAC) and broken ones.
func FuzzConvert(f *testing.F) {
	f.Fuzz(func(t *testing.T, init, seg []byte) {
		tr, err := ParseInit(init)
		if err != nil {
			tr, _ = fakeTracks()
			tr.TrackID = 1
		}
		samples, err := tr.Samples(seg)
		if err != nil {
			return
		}
		total := 0
		for _, s := range samples {
			total += len(s.Data)
		}
		if total > len(seg) {
			t.Fatalf("%d bytes of samples from a %d-byte segment", total, len(seg))
		}
		var m *Muxer
		if tr.Video {
			m, err = NewMuxer(tr, nil, Meta{})
		} else {
			m, err = NewMuxer(nil, tr, Meta{})
		}
		if err != nil {
			t.Fatal(err)
		}
		w, err := flv.NewWriter(io.Discard, m.Header())
		if err != nil {
			t.Fatal(err)
		}
		var tags []flv.Tag
		if tr.Video {
			tags = append(m.Write(samples, nil), m.Write(samples, nil)...)
		} else {
			tags = append(m.Write(nil, samples), m.Write(nil, samples)...)
		}
		for _, tag := range append(tags, m.Flush()...) {
			if err := w.WriteTag(tag); err != nil {
				t.Fatal(err)
			}
		}
	})
}
