package cmafflv

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/livegrid/livegrid/internal/flv"
)

// tagTimes lists the presentation times (timestamp plus composition time)
// of the coded video frames and the timestamps of the audio frames, sorted.
func tagTimes(t *testing.T, tags []flv.Tag) (video, audio []int64) {
	t.Helper()
	for _, tag := range tags {
		switch tag.Type {
		case flv.TagVideo:
			v, err := flv.ParseVideo(tag.Data)
			if err != nil {
				t.Fatal(err)
			}
			if !v.SequenceHeader {
				video = append(video, int64(tag.Timestamp)+int64(v.CompositionTime))
			}
		case flv.TagAudio:
			a, err := flv.ParseAudio(tag.Data)
			if err != nil {
				t.Fatal(err)
			}
			if !a.SequenceHeader {
				audio = append(audio, int64(tag.Timestamp))
			}
		}
	}
	slices.Sort(video)
	slices.Sort(audio)
	return video, audio
}

// TestFFprobeH264AAC converts ffmpeg-made H.264 and AAC CMAF renditions,
// with ffmpeg's positive composition offsets and with the engine's
// negative ones (trun v1), and has ffprobe decode the FLV: every frame,
// no error, the rendition's size and the CMAF presentation times.
func TestFFprobeH264AAC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	video, audio := makeAV(t, h264, "6")
	vt := parseTrack(t, video.init)
	if vt.VideoCodec != flv.CodecH264 || vt.Width != 320 || vt.Height != 240 {
		t.Fatalf("video track %+v", vt)
	}
	at := parseTrack(t, audio.init)
	if at.AudioCodec != flv.CodecAAC || at.SampleRate != 48000 || at.Channels != 2 {
		t.Fatalf("audio track %+v", at)
	}
	for _, tt := range []struct {
		name  string
		video rendition
	}{
		{"ffmpeg offsets", video},
		{"negative offsets", negativeOffsets(t, vt, video)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := mux(t, tt.video, audio)
			if !bytes.HasPrefix(file, []byte("FLV")) {
				t.Fatalf("file starts %q", file[:3])
			}
			hdr, tags := readTags(t, file)
			if !hdr.Audio || !hdr.Video {
				t.Errorf("header %+v", hdr)
			}
			nv, na := checkTags(t, tags)
			wantV, wantA := sampleCount(t, tt.video), sampleCount(t, audio)
			if nv != wantV || na != wantA {
				t.Errorf("%d video and %d audio frames, want %d and %d", nv, na, wantV, wantA)
			}
			meta, err := flv.ParseMetadata(tags[0].Data)
			if err != nil {
				t.Fatal(err)
			}
			if meta["width"] != 320.0 || meta["height"] != 240.0 || meta["videocodecid"] != 7.0 ||
				meta["audiocodecid"] != 10.0 || meta["framerate"] != 30.0 || meta["audiosamplerate"] != 48000.0 {
				t.Errorf("onMetaData %v", meta)
			}
			tv, ta := tagTimes(t, tags)
			if want := cmafPTS(t, tt.video); !slices.Equal(tv, want) {
				t.Errorf("video presentation times in the tags\n got %v\nwant %v", tv, want)
			}
			if want := cmafPTS(t, audio); !slices.Equal(ta, want) {
				t.Errorf("audio times in the tags\n got %v\nwant %v", ta, want)
			}

			frames := probeFLV(t, file, "v:0")
			if len(frames) != wantV {
				t.Fatalf("ffprobe decoded %d video frames, want %d", len(frames), wantV)
			}
			if f := frames[0]; f.Width != 320 || f.Height != 240 || f.Key != 1 {
				t.Errorf("first frame %+v", f)
			}
			if got, want := framePTS(frames), cmafPTS(t, tt.video); !slices.Equal(got, want) {
				t.Errorf("ffprobe video pts\n got %v\nwant %v", got, want)
			}
			af := probeFLV(t, file, "a:0")
			if got, want := framePTS(af), cmafPTS(t, audio); !slices.Equal(got, want) {
				t.Errorf("ffprobe audio pts (%d frames, want %d)\n got %v\nwant %v", len(af), wantA, got, want)
			}
		})
	}
}

// TestEnhancedCodecs converts HEVC and AV1 renditions into enhanced-RTMP
// tags and reads them back. FFmpeg 5.1 cannot demux enhanced FLV, so
// the check is the tags themselves: FourCC, the decoder configuration as
// the init segment has it, every frame and its presentation time.
func TestEnhancedCodecs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	for _, tt := range []struct {
		name  string
		codec flv.VideoCodec
		args  []string
	}{
		{"hevc", flv.CodecHEVC, []string{"-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-x265-params", "log-level=error"}},
		{"av1", flv.CodecAV1, []string{"-c:v", "libsvtav1", "-preset", "12"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			video, audio := makeAV(t, tt.args, "2")
			vt := parseTrack(t, video.init)
			if vt.VideoCodec != tt.codec {
				t.Fatalf("codec %v, want %v", vt.VideoCodec, tt.codec)
			}
			file := mux(t, video, audio)
			_, tags := readTags(t, file)
			nv, _ := checkTags(t, tags)
			if want := sampleCount(t, video); nv != want {
				t.Errorf("%d video frames, want %d", nv, want)
			}
			for _, tag := range tags {
				if tag.Type != flv.TagVideo {
					continue
				}
				v, err := flv.ParseVideo(tag.Data)
				if err != nil {
					t.Fatal(err)
				}
				if !v.Enhanced || v.Codec != tt.codec {
					t.Fatalf("video tag %+v", v)
				}
				if v.SequenceHeader && !bytes.Equal(v.Payload, vt.Config) {
					t.Fatalf("sequence header payload differs from the init's configuration")
				}
			}
			tv, _ := tagTimes(t, tags)
			if want := cmafPTS(t, video); !slices.Equal(tv, want) {
				t.Errorf("presentation times\n got %v\nwant %v", tv, want)
			}
		})
	}
}

// fakeTracks are an H.264 track at 90 kHz and an AAC one at 48 kHz for
// timeline tests that need no real media.
func fakeTracks() (video, audio *Track) {
	video = &Track{Video: true, VideoCodec: flv.CodecH264, Config: []byte{1, 0x64, 0, 0x1f, 0xff, 0xe0, 0}}
	video.Timescale, video.Width, video.Height, video.Handler = 90000, 64, 48, "vide"
	audio = &Track{AudioCodec: flv.CodecAAC, Config: []byte{0x11, 0x90}}
	audio.Timescale, audio.SampleRate, audio.Channels, audio.Handler = 48000, 48000, 2, "soun"
	return video, audio
}

// videoSeg is n frames of 30 fps video from ms start in decode order
// I P B B ..., with composition offsets relative to the I frame
// (negative for B frames) as the engine writes them.
func videoSeg(startMS int64, n int) []Sample {
	const d = 3000 // 90 kHz ticks per frame
	pattern := []int32{0, 2 * d, -d, -d}
	var out []Sample
	for i := range n {
		out = append(out, Sample{
			DTS: uint64(startMS*90 + int64(i)*d), Duration: d, CTSOffset: pattern[i%len(pattern)],
			Keyframe: i == 0, Data: []byte{0, 0, 0, 1, 0x65},
		})
	}
	return out
}

// audioSeg is n AAC frames from ms start.
func audioSeg(startMS int64, n int) []Sample {
	var out []Sample
	for i := range n {
		out = append(out, Sample{DTS: uint64(startMS*48 + int64(i)*1024), Duration: 1024, Keyframe: true, Data: []byte{0x21}})
	}
	return out
}

// TestMuxerTimeline checks the timeline rules on synthetic samples:
// negative composition offsets move video decode times earlier (clamped
// at 0 at the very start), tags interleave and are held back until the
// other track catches up, a timeline that goes back continues forward,
// and a new init segment gets its sequence header after the tags held
// for the old one.
func TestMuxerTimeline(t *testing.T) {
	vt, at := fakeTracks()
	m, err := NewMuxer(vt, at, Meta{VideoBitrate: 500_000})
	if err != nil {
		t.Fatal(err)
	}
	var tags []flv.Tag
	tags = append(tags, m.Write(videoSeg(0, 60), audioSeg(0, 94))...)
	held := len(m.pending)
	if held == 0 {
		t.Errorf("nothing held back after the first segment")
	}
	tags = append(tags, m.Write(videoSeg(2000, 60), audioSeg(2005, 93))...)
	// The publisher's new timeline starts at 0 again.
	tags = append(tags, m.Write(videoSeg(0, 60), audioSeg(0, 94))...)
	vt2, _ := fakeTracks()
	vt2.Config = []byte{1, 0x4d, 0, 0x1e, 0xff, 0xe0, 0}
	m.SetTracks(vt2, nil)
	tags = append(tags, m.Write(videoSeg(6000, 60), audioSeg(6000, 94))...)
	tags = append(tags, m.Flush()...)

	nv, na := checkTags(t, tags)
	if nv != 240 || na != 94+93+94+94 {
		t.Errorf("%d video, %d audio frames", nv, na)
	}
	var seqs []int
	var firstVideo []uint32
	for i, tag := range tags {
		if tag.Type != flv.TagVideo {
			continue
		}
		v, _ := flv.ParseVideo(tag.Data)
		if v.SequenceHeader {
			seqs = append(seqs, i)
			continue
		}
		if len(firstVideo) < 4 {
			firstVideo = append(firstVideo, tag.Timestamp, uint32(v.CompositionTime))
		}
	}
	// The deepest offset, 34 ms in whole ms, moves video earlier: the I
	// frame decodes at 0 (clamped from -34), the P frame at 0 too (from
	// -1) and presents at 100.
	if want := []uint32{0, 0, 0, 100}; !slices.Equal(firstVideo, want) {
		t.Errorf("first frames (ts, cts) %v, want %v", firstVideo, want)
	}
	if len(seqs) != 2 {
		t.Fatalf("%d video sequence headers, want 2", len(seqs))
	}
	v, _ := flv.ParseVideo(tags[seqs[1]].Data)
	if !bytes.Equal(v.Payload, vt2.Config) {
		t.Errorf("second sequence header %x", v.Payload)
	}
	next, _ := flv.ParseVideo(tags[seqs[1]+1].Data)
	if !next.Keyframe || tags[seqs[1]-1].Timestamp > tags[seqs[1]].Timestamp {
		t.Errorf("second sequence header is not followed by a keyframe or precedes older tags")
	}
	// The rewound segment continued after 4 s instead of going back.
	if ts := tags[len(tags)-1].Timestamp; ts < 8000 {
		t.Errorf("last tag at %d ms", ts)
	}
}

// TestMuxerStartsAtKeyframe: frames before the first keyframe are
// dropped, and a segment without one sends no video.
func TestMuxerStartsAtKeyframe(t *testing.T) {
	vt, _ := fakeTracks()
	m, err := NewMuxer(vt, nil, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	noKey := videoSeg(0, 10)
	noKey[0].Keyframe = false
	if tags := m.Write(noKey, nil); len(tags) != 0 {
		t.Errorf("%d tags from a segment without a keyframe", len(tags))
	}
	tags := m.Write(append(noKey[:2:2], videoSeg(1000, 4)...), nil)
	nv, _ := checkTags(t, tags)
	if nv != 4 {
		t.Errorf("%d frames, want 4", nv)
	}
}

func TestNewMuxerRefuses(t *testing.T) {
	vt, at := fakeTracks()
	for _, tt := range []struct {
		name         string
		video, audio *Track
	}{
		{"no track", nil, nil},
		{"audio as video", at, nil},
		{"video as audio", nil, vt},
	} {
		if _, err := NewMuxer(tt.video, tt.audio, Meta{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// TestParseInitRefuses: bytes that are no usable init segment give
// ErrMalformed or ErrUnsupportedCodec, never a Track.
func TestParseInitRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"junk", []byte("not an mp4 file at all")},
		{"truncated box", []byte{0, 0, 0, 40, 'm', 'o', 'o', 'v', 0}},
	} {
		if _, err := ParseInit(tt.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
