package segmenter

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
)

// Hand-made tags: the segmenter reads only their headers.
var (
	avcConfig  = []byte{0x17, 0, 0, 0, 0, 1, 0x42, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0, 0x1e, 1, 0, 2, 0x68, 0xce}
	avcConfig2 = []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x28, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x28, 1, 0, 2, 0x68, 0xee}
	aacConfig  = []byte{0xaf, 0, 0x11, 0x90}
	aacConfig2 = []byte{0xaf, 0, 0x11, 0x88}
)

func keyframe(ts uint32, ct byte) flv.Tag {
	return flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: []byte{0x17, 1, 0, 0, ct, 0, 0, 0, 1, 0x65}}
}

func inter(ts uint32) flv.Tag {
	return flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41}}
}

func aac(ts uint32) flv.Tag {
	return flv.Tag{Type: flv.TagAudio, Timestamp: ts, Data: []byte{0xaf, 1, 0x21}}
}

func config(data []byte) flv.Tag {
	typ := flv.TagVideo
	if data[0]>>4 == 10 {
		typ = flv.TagAudio
	}
	return flv.Tag{Type: typ, Data: data}
}

// stream makes video at 25 fps (40 ms) with a keyframe every gop frames
// from start to end, and no audio.
func stream(start, end uint32, gop int) []flv.Tag {
	tags := []flv.Tag{config(avcConfig)}
	for i, ts := 0, start; ts < end; i, ts = i+1, ts+40 {
		if i%gop == 0 {
			tags = append(tags, keyframe(ts, 0))
		} else {
			tags = append(tags, inter(ts))
		}
	}
	return tags
}

func feed(tags ...flv.Tag) func(*Segmenter) error {
	return func(s *Segmenter) error {
		for _, tag := range tags {
			if err := s.WriteTag(tag); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestAudioGoesWhereItPlays(t *testing.T) {
	// A keyframe at 2000 ms plays at 2066 ms, so the cut is there; audio
	// arrives both ahead of and behind the video.
	tags := []flv.Tag{config(avcConfig), config(aacConfig), keyframe(0, 66), aac(10), inter(40), aac(1990),
		aac(2070), // ahead of the keyframe, plays after the cut
		keyframe(2000, 66),
		aac(2030), aac(2050), // behind the keyframe, play before the cut
		inter(2040), aac(2080), inter(2080)}
	segs, _ := run(t, Config{}, feed(tags...))
	if len(segs) != 2 {
		t.Fatalf("%d segments, want 2", len(segs))
	}
	if segs[0].Start != 66*time.Millisecond || segs[0].End != 2066*time.Millisecond || segs[1].Start != segs[0].End {
		t.Errorf("segments %v-%v and %v-%v, want the cut at 2.066s", segs[0].Start, segs[0].End, segs[1].Start, segs[1].End)
	}
	want := [][]uint32{{10, 1990, 2030, 2050}, {2070, 2080}}
	for i, seg := range segs {
		if got := inspect(t, seg).audioTS; !slices.Equal(got, want[i]) {
			t.Errorf("segment %d holds audio at %v, want %v", i, got, want[i])
		}
	}
}

func TestTagsBeforeFirstKeyframe(t *testing.T) {
	segs, s := run(t, Config{}, feed(config(avcConfig), config(aacConfig), aac(900), inter(920), aac(980), aac(1010),
		keyframe(1000, 0), inter(1040)))
	if len(segs) != 1 || segs[0].Start != time.Second {
		t.Fatalf("segments %+v", segs)
	}
	st := inspect(t, segs[0])
	if !slices.Equal(st.audioTS, []uint32{1010}) || st.videoFrames != 2 || !st.firstVideo.Keyframe {
		t.Errorf("segment holds audio %v and %d frames", st.audioTS, st.videoFrames)
	}
	if got := s.Stats(); got.DroppedTags != 3 {
		t.Errorf("Stats() = %+v, want 3 dropped tags", got)
	}
}

func TestMaxDuration(t *testing.T) {
	tags := stream(0, 15000, 1000) // one keyframe, then 15 s of inter frames
	tags = append(tags, stream(15000, 17000, 1000)[1:]...)
	segs, s := run(t, Config{MaxDuration: 10 * time.Second}, feed(tags...))
	if len(segs) != 2 {
		t.Fatalf("%d segments, want 2", len(segs))
	}
	if segs[0].Start != 0 || segs[0].End != 10*time.Second || segs[0].Discontinuity {
		t.Errorf("forced segment %v-%v, discontinuity %v; want 0-10s", segs[0].Start, segs[0].End, segs[0].Discontinuity)
	}
	if segs[1].Start != 15*time.Second || !segs[1].Discontinuity || segs[1].Seq != 1 {
		t.Errorf("segment after the gap: %+v", segs[1])
	}
	if got := s.Stats(); got.ForcedCuts != 1 || got.DroppedTags != 125 {
		t.Errorf("Stats() = %+v, want 1 forced cut and 5 s of frames dropped", got)
	}
}

func TestNoKeyframeEver(t *testing.T) {
	var segs int
	s := New(Config{}, func(Segment) error { segs++; return nil })
	for ts := uint32(0); ts < 600_000; ts += 20 {
		tag := inter(ts)
		if ts%40 != 0 {
			tag = aac(ts)
		}
		if err := s.WriteTag(tag); err != nil {
			t.Fatal(err)
		}
		if s.buffered() > maxPending*3 {
			t.Fatalf("%d bytes buffered at %d ms with no segment open", s.buffered(), ts)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats(); segs != 0 || got.DroppedTags != 30000 {
		t.Errorf("%d segments, Stats() = %+v; want none and every tag dropped", segs, got)
	}
}

func TestAudioOnlyAfterVideoStops(t *testing.T) {
	tags := stream(0, 1000, 25)
	for ts := uint32(1000); ts < 20000; ts += 20 {
		tags = append(tags, aac(ts))
	}
	segs, s := run(t, Config{}, feed(tags...))
	if len(segs) != 1 || segs[0].End > 12*time.Second {
		t.Fatalf("segments %d, first ends at %v; want one cut by the max duration", len(segs), segs[0].End)
	}
	if s.Stats().ForcedCuts != 1 {
		t.Errorf("Stats() = %+v", s.Stats())
	}
}

func TestMaxBytes(t *testing.T) {
	big := func(tag flv.Tag) flv.Tag {
		tag.Data = append(slices.Clone(tag.Data), make([]byte, 1000)...)
		return tag
	}
	const limit = 20_000
	var segs []Segment
	s := New(Config{MaxBytes: limit}, func(seg Segment) error { segs = append(segs, seg); return nil })
	for _, tag := range stream(0, 8000, 100) { // a keyframe every 4 s
		if err := s.WriteTag(big(tag)); err != nil {
			t.Fatal(err)
		}
		if s.buffered() > limit {
			t.Fatalf("%d bytes buffered, limit %d", s.buffered(), limit)
		}
	}
	if len(segs) != 2 || s.Stats().ForcedCuts != 2 {
		t.Fatalf("%d segments, Stats() = %+v; want two forced cuts", len(segs), s.Stats())
	}
	for _, seg := range segs {
		if len(seg.Data) > limit+1100 { // the tag that passed the limit is in
			t.Errorf("segment %d is %d bytes", seg.Seq, len(seg.Data))
		}
	}
	err := s.WriteTag(flv.Tag{Type: flv.TagVideo, Data: make([]byte, limit+1)})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("WriteTag(huge) = %v, want %v", err, ErrTooLarge)
	}
}

func TestConfigChange(t *testing.T) {
	tags := []flv.Tag{config(avcConfig), config(aacConfig), keyframe(0, 0), aac(0), inter(40),
		config(avcConfig), config(aacConfig), // repeats change nothing
		keyframe(500, 0), inter(540),
		config(avcConfig2), keyframe(1000, 0), inter(1040), // a new encoder set-up cuts at once
		config(aacConfig2), aac(1060), inter(1080), keyframe(1200, 0), inter(1240)}
	segs, _ := run(t, Config{}, feed(tags...))
	var starts []time.Duration
	for _, seg := range segs {
		starts = append(starts, seg.Start)
	}
	if want := []time.Duration{0, time.Second, 1200 * time.Millisecond}; !slices.Equal(starts, want) {
		t.Fatalf("segments start at %v, want %v", starts, want)
	}
	configs := func(seg Segment) (video, audio [][]byte) {
		for _, tag := range readTags(t, seg.Data) {
			if tag.Type == flv.TagVideo && tag.Data[1] == 0 {
				video = append(video, tag.Data)
			}
			if tag.Type == flv.TagAudio && tag.Data[1] == 0 {
				audio = append(audio, tag.Data)
			}
		}
		return video, audio
	}
	wants := []struct{ video, audio [][]byte }{
		{[][]byte{avcConfig}, [][]byte{aacConfig}},
		{[][]byte{avcConfig2}, [][]byte{aacConfig, aacConfig2}}, // the audio change travels in band
		{[][]byte{avcConfig2}, [][]byte{aacConfig2}},
	}
	for i, seg := range segs {
		v, a := configs(seg)
		if !slices.EqualFunc(v, wants[i].video, slices.Equal) || !slices.EqualFunc(a, wants[i].audio, slices.Equal) {
			t.Errorf("segment %d carries video configs %x and audio %x", i, v, a)
		}
	}
}

func TestDiscontinuityBeforeAnything(t *testing.T) {
	segs, s := run(t, Config{}, func(s *Segmenter) error {
		s.Discontinuity()
		return feed(stream(5000, 7000, 25)...)(s)
	})
	if len(segs) != 1 || !segs[0].Discontinuity || segs[0].Start != 5*time.Second {
		t.Fatalf("segments %+v", segs)
	}
	if s.Stats().Discontinuities != 1 {
		t.Errorf("Stats() = %+v", s.Stats())
	}
}

func TestTimestampWrap(t *testing.T) {
	// RTMP timestamps wrap at 2^32 ms; the timeline goes on past it.
	const near = 1<<32 - 3000
	tags := stream(near, near+2960, 25)
	tags = append(tags, stream(0, 4000, 25)[1:]...)
	segs, s := run(t, Config{}, feed(tags...))
	for i := 1; i < len(segs); i++ {
		if segs[i].Start < segs[i-1].End {
			t.Errorf("segment %d starts at %v, before the previous end %v", i, segs[i].Start, segs[i-1].End)
		}
	}
	if last := segs[len(segs)-1]; last.End < time.Duration(near+6000)*time.Millisecond || s.Stats().Discontinuities != 1 {
		t.Errorf("last segment ends at %v, Stats() = %+v", last.End, s.Stats())
	}
}

func TestTimelineNeverNegative(t *testing.T) {
	// After a jump the new part starts near 0, and a small step back
	// from there must not go below it.
	segs, _ := run(t, Config{Target: 100 * time.Millisecond}, feed(keyframe(100, 0), keyframe(5_000_000, 0), keyframe(4_999_500, 0), keyframe(4_999_900, 0)))
	for _, seg := range segs {
		if seg.Start < 0 || seg.End <= seg.Start {
			t.Errorf("segment %d: %v-%v", seg.Seq, seg.Start, seg.End)
		}
	}
}
