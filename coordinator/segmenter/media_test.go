package segmenter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// sourceTags makes a 320x180 H.264 + AAC FLV with ffmpeg and reads its
// tags.
func sourceTags(t *testing.T, gopFrames int, seconds float64) (string, []flv.Tag) {
	t.Helper()
	path := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, FPS: 30, GOP: gopFrames, Seconds: seconds, Format: "flv"})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, readTags(t, b)
}

func readTags(t *testing.T, b []byte) []flv.Tag {
	t.Helper()
	r := flv.NewReader(bytes.NewReader(b))
	var tags []flv.Tag
	for {
		tag, err := r.ReadTag()
		if err == io.EOF {
			return tags
		}
		if err != nil {
			t.Fatalf("read tag %d: %v", len(tags), err)
		}
		tags = append(tags, tag)
	}
}

// segmentTags sorts a segment's tags into what a worker sees.
type segmentTags struct {
	meta, videoConfig, audioConfig bool
	firstVideo                     *flv.VideoInfo
	firstVideoTS                   uint32
	videoFrames, keyframes         int
	audioTS                        []uint32
}

func inspect(t *testing.T, seg Segment) segmentTags {
	t.Helper()
	var st segmentTags
	for _, tag := range readTags(t, seg.Data) {
		switch tag.Type {
		case flv.TagScript:
			if _, err := flv.ParseMetadata(tag.Data); err == nil {
				st.meta = true
			}
		case flv.TagVideo:
			info, err := flv.ParseVideo(tag.Data)
			if err != nil {
				t.Fatalf("segment %d: %v", seg.Seq, err)
			}
			switch {
			case info.SequenceHeader:
				st.videoConfig = st.firstVideo == nil
			case info.EndOfSequence:
			default:
				if st.firstVideo == nil {
					st.firstVideo, st.firstVideoTS = &info, tag.Timestamp
				}
				st.videoFrames++
				if info.Keyframe {
					st.keyframes++
				}
			}
		case flv.TagAudio:
			info, err := flv.ParseAudio(tag.Data)
			if err != nil {
				t.Fatalf("segment %d: %v", seg.Seq, err)
			}
			if info.SequenceHeader {
				st.audioConfig = len(st.audioTS) == 0
				continue
			}
			st.audioTS = append(st.audioTS, tag.Timestamp)
		}
	}
	return st
}

func run(t *testing.T, cfg Config, feed func(s *Segmenter) error) ([]Segment, *Segmenter) {
	t.Helper()
	var segs []Segment
	s := New(cfg, func(seg Segment) error {
		segs = append(segs, seg)
		return nil
	})
	if err := feed(s); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	return segs, s
}

func feedAll(tags []flv.Tag, shift int64) func(s *Segmenter) error {
	return func(s *Segmenter) error {
		for _, tag := range tags {
			tag.Timestamp = uint32(int64(tag.Timestamp) + shift)
			if err := s.WriteTag(tag); err != nil {
				return err
			}
		}
		return nil
	}
}

func countAudio(tags []flv.Tag) int {
	n := 0
	for _, tag := range tags {
		if info, err := flv.ParseAudio(tag.Data); tag.Type == flv.TagAudio && err == nil && !info.SequenceHeader {
			n++
		}
	}
	return n
}

func writeSegment(t *testing.T, seg Segment) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("seg%d.flv", seg.Seq))
	if err := os.WriteFile(path, seg.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func near(a, b time.Duration) bool { return (a - b).Abs() <= 20*time.Millisecond }

func TestSegmentsFromFFmpeg(t *testing.T) {
	tests := []struct {
		name      string
		gopFrames int
		seconds   float64
		want      time.Duration // duration of every segment but the last
		segments  int
		keyframes int // per segment
	}{
		{"GOP 1 s makes 2 s segments of two GOPs", 30, 8, 2 * time.Second, 4, 2},
		{"GOP 2 s makes 2 s segments", 60, 8, 2 * time.Second, 4, 1},
		{"GOP 4 s makes 4 s segments", 120, 12, 4 * time.Second, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, tags := sourceTags(t, tt.gopFrames, tt.seconds)
			segs, s := run(t, Config{FirstSeq: 7}, feedAll(tags, 0))
			if len(segs) != tt.segments {
				t.Fatalf("%d segments, want %d", len(segs), tt.segments)
			}
			var frames, audio int
			for i, seg := range segs {
				st := inspect(t, seg)
				if seg.Seq != uint64(7+i) || seg.Discontinuity {
					t.Errorf("segment %d: seq %d, discontinuity %v", i, seg.Seq, seg.Discontinuity)
				}
				if !st.meta || !st.videoConfig || !st.audioConfig {
					t.Errorf("segment %d does not start with metadata and sequence headers: %+v", i, st)
				}
				if st.firstVideo == nil || !st.firstVideo.Keyframe {
					t.Fatalf("segment %d does not start with a keyframe", i)
				}
				if start := time.Duration(int64(st.firstVideoTS)+int64(st.firstVideo.CompositionTime)) * time.Millisecond; start != seg.Start {
					t.Errorf("segment %d: Start %v, but its keyframe plays at %v", i, seg.Start, start)
				}
				if st.keyframes != tt.keyframes || seg.Keyframes != tt.keyframes {
					t.Errorf("segment %d: %d keyframes, Keyframes %d, want %d", i, st.keyframes, seg.Keyframes, tt.keyframes)
				}
				if seg.Duration != seg.End-seg.Start || !near(seg.Duration, tt.want) {
					t.Errorf("segment %d: %v-%v, duration %v, want %v", i, seg.Start, seg.End, seg.Duration, tt.want)
				}
				if i > 0 && seg.Start != segs[i-1].End {
					t.Errorf("segment %d starts at %v, previous ends at %v", i, seg.Start, segs[i-1].End)
				}
				for _, ts := range st.audioTS {
					at := time.Duration(ts) * time.Millisecond
					if (i > 0 && at < seg.Start) || (i < len(segs)-1 && at >= seg.End) {
						t.Errorf("segment %d (%v-%v) holds audio at %v", i, seg.Start, seg.End, at)
					}
				}
				audio += len(st.audioTS)
				decoded := testmedia.Frames(t, writeSegment(t, seg), "v:0")
				if len(decoded) != st.videoFrames || !decoded[0].Key {
					t.Errorf("segment %d: ffprobe decodes %d frames (first key: %v), tags hold %d", i, len(decoded), decoded[0].Key, st.videoFrames)
				}
				frames += len(decoded)
			}
			if want := len(testmedia.Frames(t, path, "v:0")); frames != want {
				t.Errorf("segments decode to %d frames, the source to %d", frames, want)
			}
			if want := countAudio(tags); audio != want {
				t.Errorf("segments hold %d audio frames, the source %d", audio, want)
			}
			if st := s.Stats(); st.Segments != uint64(tt.segments) || st.ForcedCuts != 0 || st.DroppedTags != 0 || st.Discontinuities != 0 {
				t.Errorf("Stats() = %+v", st)
			}
		})
	}
}

func TestDiscontinuityFromFFmpeg(t *testing.T) {
	_, tags := sourceTags(t, 30, 4)
	last := tags[len(tags)-1].Timestamp
	tests := []struct {
		name      string
		announce  bool
		shift     int64 // added to the second part's timestamps
		keepTimes bool  // the second part keeps its source timestamps
	}{
		{"announced, timestamps restart", true, 0, false},
		{"timestamps restart", false, 0, false},
		{"timestamps jump a minute", false, 60000, false},
		{"announced, timestamps go on", true, int64(last) + 500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs, s := run(t, Config{}, func(s *Segmenter) error {
				if err := feedAll(tags, 0)(s); err != nil {
					return err
				}
				if tt.announce {
					s.Discontinuity()
				}
				return feedAll(tags, tt.shift)(s)
			})
			if len(segs) != 4 {
				t.Fatalf("%d segments, want 2 from each part", len(segs))
			}
			for i, seg := range segs {
				if seg.Seq != uint64(i) || seg.Discontinuity != (i == 2) {
					t.Errorf("segment %d: seq %d, discontinuity %v", i, seg.Seq, seg.Discontinuity)
				}
				if i > 0 && seg.Start < segs[i-1].End {
					t.Errorf("segment %d starts at %v, before the previous end %v", i, seg.Start, segs[i-1].End)
				}
				st := inspect(t, seg)
				if start := time.Duration(int64(st.firstVideoTS)+int64(st.firstVideo.CompositionTime)) * time.Millisecond; start != seg.Start {
					t.Errorf("segment %d: Start %v, but its keyframe plays at %v", i, seg.Start, start)
				}
				if !near(seg.Duration, 2*time.Second) {
					t.Errorf("segment %d lasts %v", i, seg.Duration)
				}
				if n := len(testmedia.Frames(t, writeSegment(t, seg), "v:0")); n != st.videoFrames {
					t.Errorf("segment %d: ffprobe decodes %d frames, tags hold %d", i, n, st.videoFrames)
				}
			}
			gap := segs[2].Start - segs[1].End
			if tt.keepTimes {
				if want := time.Duration(int64(tags[1].Timestamp)+tt.shift)*time.Millisecond + segs[0].Start; segs[2].Start != want {
					t.Errorf("second part starts at %v, want its source time %v", segs[2].Start, want)
				}
			} else if gap < 0 || gap > 100*time.Millisecond {
				t.Errorf("second part starts %v after the first ends, want it to follow on", gap)
			}
			if st := s.Stats(); st.Discontinuities != 1 {
				t.Errorf("Stats() = %+v, want one discontinuity", st)
			}
		})
	}
}

func TestEmitError(t *testing.T) {
	_, tags := sourceTags(t, 30, 4)
	boom := errors.New("store down")
	var segs []Segment
	s := New(Config{}, func(seg Segment) error {
		if seg.Seq == 0 {
			return boom
		}
		segs = append(segs, seg)
		return nil
	})
	var errs int
	for _, tag := range tags {
		if err := s.WriteTag(tag); err != nil {
			if !errors.Is(err, boom) {
				t.Fatalf("WriteTag() = %v, want %v", err, boom)
			}
			errs++
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if errs != 1 || len(segs) != 1 || segs[0].Seq != 1 || !segs[0].Discontinuity {
		t.Fatalf("%d errors, then %d segments; want one error and segment 1 marked as a discontinuity", errs, len(segs))
	}
}
