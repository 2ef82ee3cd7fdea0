package cmafflv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// rendition is a CMAF rendition read from a fragmented MP4 file: its init
// segment and its media segments (moof+mdat each).
type rendition struct {
	init []byte
	segs [][]byte
}

// ffmpeg runs ffmpeg with a deadline generous enough for a loaded
// machine.
func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	testmedia.Require(t, "ffmpeg", "ffprobe")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fragmented are the mp4 muxer options that give CMAF fragments.
const fragmented = "cmaf+empty_moov+default_base_moof"

// makeAV has ffmpeg encode seconds of 320x240 30 fps video (2 s GOPs,
// B-frames) with vcodec and AAC audio, as two fragmented MP4 files of
// 2 s fragments, and splits them into renditions.
func makeAV(t *testing.T, vcodec []string, seconds string) (video, audio rendition) {
	t.Helper()
	dir := t.TempDir()
	v, a := filepath.Join(dir, "v.mp4"), filepath.Join(dir, "a.mp4")
	args := []string{
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", seconds, "-map", "0:v"}
	args = append(args, vcodec...)
	args = append(args, "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
		"-f", "mp4", "-movflags", fragmented+"+frag_keyframe", v,
		"-t", seconds, "-map", "1:a", "-c:a", "aac", "-b:a", "64k", "-ac", "2",
		"-f", "mp4", "-frag_duration", "2000000", "-movflags", fragmented, a)
	ffmpeg(t, args...)
	return split(t, v), split(t, a)
}

var h264 = []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "3"}

// split cuts a fragmented MP4 file into its init segment and fragments.
func split(t *testing.T, path string) rendition {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	boxes, err := cmaf.ReadBoxes(b)
	if err != nil {
		t.Fatal(err)
	}
	var r rendition
	for i, bx := range boxes {
		if bx.Type != "moof" {
			continue
		}
		if r.init == nil {
			r.init = b[:bx.Offset]
		}
		if i+1 < len(boxes) && boxes[i+1].Type == "mdat" {
			end := boxes[i+1].Offset + boxes[i+1].Size
			r.segs = append(r.segs, b[bx.Offset:end])
		}
	}
	if r.init == nil || len(r.segs) == 0 {
		t.Fatalf("%s: no fragments", path)
	}
	return r
}

// negativeOffsets rewrites a rendition the way livegrid's engine writes
// segments: no edit list, so the first keyframe's composition offset is
// 0 and B-frames get negative ones (trun v1), written by internal/cmaf.
func negativeOffsets(t *testing.T, tr *Track, r rendition) rendition {
	t.Helper()
	out := rendition{init: r.init}
	var first int32
	negative := false
	for k, seg := range r.segs {
		ss, err := tr.Samples(seg)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			first = ss[0].CTSOffset
		}
		cs := make([]cmaf.Sample, len(ss))
		for i, s := range ss {
			cs[i] = cmaf.Sample{Duration: s.Duration, CTSOffset: s.CTSOffset - first, Keyframe: s.Keyframe, Data: s.Data}
			negative = negative || cs[i].CTSOffset < 0
		}
		out.segs = append(out.segs, cmaf.AppendMediaSegment(nil, uint32(k+1), tr.TrackID, ss[0].DTS, cs))
	}
	if !negative {
		t.Fatal("no negative composition offsets: the clip has no B-frames")
	}
	return out
}

func parseTrack(t *testing.T, init []byte) *Track {
	t.Helper()
	tr, err := ParseInit(init)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// mux converts paired video and audio segments (either rendition may be
// empty) into an FLV file.
func mux(t *testing.T, video, audio rendition) []byte {
	t.Helper()
	var vt, at *Track
	if video.init != nil {
		vt = parseTrack(t, video.init)
	}
	if audio.init != nil {
		at = parseTrack(t, audio.init)
	}
	m, err := NewMuxer(vt, at, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := flv.NewWriter(&buf, m.Header())
	if err != nil {
		t.Fatal(err)
	}
	write := func(tags []flv.Tag) {
		for _, tag := range tags {
			if err := w.WriteTag(tag); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k := range max(len(video.segs), len(audio.segs)) {
		var vs, as []Sample
		if k < len(video.segs) {
			if vs, err = vt.Samples(video.segs[k]); err != nil {
				t.Fatal(err)
			}
		}
		if k < len(audio.segs) {
			if as, err = at.Samples(audio.segs[k]); err != nil {
				t.Fatal(err)
			}
		}
		write(m.Write(vs, as))
	}
	write(m.Flush())
	return buf.Bytes()
}

// cmafPTS lists the presentation times, in ms rounded down, of every
// sample of a rendition, sorted.
func cmafPTS(t *testing.T, r rendition) []int64 {
	t.Helper()
	tr := parseTrack(t, r.init)
	var pts []int64
	for _, seg := range r.segs {
		ss, err := tr.Samples(seg)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			p := int64(s.DTS) + int64(s.CTSOffset)
			pts = append(pts, p*1000/int64(tr.Timescale))
		}
	}
	slices.Sort(pts)
	return pts
}

// probedFrame is one frame ffprobe decoded.
type probedFrame struct {
	PTS    int64 `json:"pts"`
	Width  int   `json:"width"`
	Height int   `json:"height"`
	Key    int   `json:"key_frame"`
}

// probeFLV has ffprobe decode every frame of one stream of an FLV file;
// anything it says on stderr at level error is a failure.
func probeFLV(t *testing.T, file []byte, stream string) []probedFrame {
	t.Helper()
	testmedia.Require(t, "ffprobe")
	path := filepath.Join(t.TempDir(), "out.flv")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", stream,
		"-show_entries", "frame=pts,width,height,key_frame", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe %s: %v\n%s", stream, err, stderr.Bytes())
	}
	var doc struct {
		Frames []probedFrame `json:"frames"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Frames
}

func framePTS(fs []probedFrame) []int64 {
	pts := make([]int64, len(fs))
	for i, f := range fs {
		pts[i] = f.PTS
	}
	slices.Sort(pts)
	return pts
}

// readTags reads every tag of an FLV file.
func readTags(t *testing.T, file []byte) (flv.Header, []flv.Tag) {
	t.Helper()
	r := flv.NewReader(bytes.NewReader(file))
	h, err := r.Header()
	if err != nil {
		t.Fatal(err)
	}
	var tags []flv.Tag
	for {
		tag, err := r.ReadTag()
		if errors.Is(err, io.EOF) {
			return h, tags
		}
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tag)
	}
}

// checkTags checks the structure every FLV from a Muxer has: onMetaData
// first, each track's sequence header before its first frame, video
// starting at a keyframe, decode times that never go back (per track and
// overall) and composition times that are never negative. It returns the
// number of coded video and audio frames.
func checkTags(t *testing.T, tags []flv.Tag) (video, audio int) {
	t.Helper()
	if len(tags) == 0 || tags[0].Type != flv.TagScript {
		t.Fatalf("first tag is not script data")
	}
	if _, err := flv.ParseMetadata(tags[0].Data); err != nil {
		t.Fatal(err)
	}
	var last uint32
	var seqV, seqA bool
	for i, tag := range tags {
		if tag.Timestamp < last {
			t.Fatalf("tag %d (%s) at %d ms after one at %d ms", i, tag.Type, tag.Timestamp, last)
		}
		last = tag.Timestamp
		switch tag.Type {
		case flv.TagVideo:
			v, err := flv.ParseVideo(tag.Data)
			if err != nil {
				t.Fatalf("tag %d: %v", i, err)
			}
			if v.SequenceHeader {
				seqV = true
				continue
			}
			if !seqV {
				t.Fatalf("video frame %d before the sequence header", i)
			}
			if video == 0 && !v.Keyframe {
				t.Fatalf("first video frame is not a keyframe")
			}
			if v.CompositionTime < 0 {
				t.Fatalf("tag %d: composition time %d", i, v.CompositionTime)
			}
			video++
		case flv.TagAudio:
			a, err := flv.ParseAudio(tag.Data)
			if err != nil {
				t.Fatalf("tag %d: %v", i, err)
			}
			if a.SequenceHeader {
				seqA = true
				continue
			}
			if !seqA {
				t.Fatalf("audio frame %d before the sequence header", i)
			}
			audio++
		}
	}
	return video, audio
}

func sampleCount(t *testing.T, r rendition) int {
	t.Helper()
	tr := parseTrack(t, r.init)
	n := 0
	for _, seg := range r.segs {
		ss, err := tr.Samples(seg)
		if err != nil {
			t.Fatal(err)
		}
		n += len(ss)
	}
	return n
}
