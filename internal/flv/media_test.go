package flv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/livegrid/livegrid/internal/testmedia"
)

// ffmpegFLV returns a 4 s 320x180 H.264 + AAC FLV made by ffmpeg, with a
// keyframe every 2 s.
func ffmpegFLV(t *testing.T) []byte {
	t.Helper()
	path := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 4, Format: "flv"})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, b []byte) (Header, []Tag) {
	t.Helper()
	r := NewReader(bytes.NewReader(b))
	h, err := r.Header()
	if err != nil {
		t.Fatal(err)
	}
	var tags []Tag
	for {
		tag, err := r.ReadTag()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadTag after %d tags: %v", len(tags), err)
		}
		tags = append(tags, tag)
	}
	if r.Offset() != int64(len(b)) {
		t.Fatalf("read %d of %d bytes", r.Offset(), len(b))
	}
	return h, tags
}

func TestReadFFmpegFLV(t *testing.T) {
	src := ffmpegFLV(t)
	h, tags := readAll(t, src)
	if !h.Audio || !h.Video {
		t.Errorf("Header() = %+v, want audio and video", h)
	}

	if tags[0].Type != TagScript {
		t.Fatalf("first tag is %s, want script", tags[0].Type)
	}
	meta, err := ParseMetadata(tags[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]float64{"width": 320, "height": 180, "framerate": 30, "videocodecid": 7, "audiocodecid": 10} {
		if meta[key] != want {
			t.Errorf("onMetaData %s = %v, want %v", key, meta[key], want)
		}
	}

	var video, audio, keyframes int
	var keyTimes []uint32
	for _, tag := range tags[1:] {
		switch tag.Type {
		case TagVideo:
			info, err := ParseVideo(tag.Data)
			if err != nil {
				t.Fatalf("ParseVideo at %d ms: %v", tag.Timestamp, err)
			}
			if info.Codec != CodecH264 {
				t.Fatalf("video codec %v", info.Codec)
			}
			if info.SequenceHeader {
				c, err := ParseAVCConfig(info.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if len(c.SPS) != 1 || len(c.PPS) != 1 || c.LengthSize != 4 {
					t.Fatalf("avcC has %d SPS, %d PPS, length size %d", len(c.SPS), len(c.PPS), c.LengthSize)
				}
				if c.SPS[0][0]&0x1f != 7 || c.PPS[0][0]&0x1f != 8 || c.Profile != c.SPS[0][1] {
					t.Errorf("avcC SPS %x PPS %x profile %d", c.SPS[0][:4], c.PPS[0], c.Profile)
				}
				if !bytes.Equal(c.Marshal(), info.Payload) {
					t.Errorf("Marshal() = %x, want %x", c.Marshal(), info.Payload)
				}
				continue
			}
			if info.EndOfSequence { // ffmpeg ends the stream with one
				if len(info.Payload) != 0 {
					t.Errorf("end of sequence with %d bytes", len(info.Payload))
				}
				continue
			}
			video++
			if info.Keyframe {
				keyframes++
				keyTimes = append(keyTimes, tag.Timestamp)
				if info.CompositionTime <= 0 {
					t.Errorf("keyframe at %d ms has composition time %d, want B-frame delay", tag.Timestamp, info.CompositionTime)
				}
			}
			if n := nalLength(info.Payload); n <= 0 || n > len(info.Payload)-4 {
				t.Errorf("frame at %d ms: first NAL length %d of %d bytes", tag.Timestamp, n, len(info.Payload))
			}
		case TagAudio:
			info, err := ParseAudio(tag.Data)
			if err != nil {
				t.Fatalf("ParseAudio at %d ms: %v", tag.Timestamp, err)
			}
			if info.Codec != CodecAAC {
				t.Fatalf("audio codec %v", info.Codec)
			}
			if info.SequenceHeader {
				if info.SampleRate != 48000 || info.Channels != 2 {
					t.Errorf("AAC sequence header: %d Hz, %d channels", info.SampleRate, info.Channels)
				}
				continue
			}
			audio++
		}
	}
	frames := testmedia.Frames(t, writeFile(t, src), "v:0")
	var probeKeys int
	for _, f := range frames {
		if f.Key {
			probeKeys++
		}
	}
	if video != len(frames) || keyframes != probeKeys {
		t.Errorf("read %d video frames, %d keyframes; ffprobe decodes %d, %d", video, keyframes, len(frames), probeKeys)
	}
	if len(keyTimes) != 2 || keyTimes[0] != 0 || keyTimes[1] != 2000 {
		t.Errorf("keyframes at %v ms, want [0 2000]", keyTimes)
	}
	if audio < 180 { // 4 s of 1024-sample frames at 48 kHz
		t.Errorf("read %d AAC frames", audio)
	}
}

func nalLength(p []byte) int {
	if len(p) < 4 {
		return -1
	}
	return int(p[0])<<24 | int(p[1])<<16 | int(p[2])<<8 | int(p[3])
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.flv")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWriterRoundTrip(t *testing.T) {
	src := ffmpegFLV(t)
	h, tags := readAll(t, src)
	var out bytes.Buffer
	w, err := NewWriter(&out, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		if err := w.WriteTag(tag); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out.Bytes(), src) {
		t.Errorf("rewritten file differs from ffmpeg's (%d vs %d bytes)", out.Len(), len(src))
	}
	path := writeFile(t, out.Bytes())
	for _, stream := range []string{"v:0", "a:0"} {
		var want int
		for _, tag := range tags {
			if (stream == "v:0" && tag.Type == TagVideo) || (stream == "a:0" && tag.Type == TagAudio) {
				want++
			}
		}
		want-- // the sequence header is no frame
		if stream == "v:0" {
			want-- // nor is the end of sequence
		}
		if got := len(testmedia.Frames(t, path, stream)); got != want {
			t.Errorf("ffprobe decodes %d %s frames from the written file, want %d", got, stream, want)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	tests := []struct {
		name string
		tag  Tag
		want error
	}{
		{"type over 5 bits", Tag{Type: 40}, ErrUnsupported},
		{"stream id over 24 bits", Tag{Type: TagVideo, StreamID: 1 << 24}, ErrTooLarge},
		{"body over 16 MiB", Tag{Type: TagVideo, Data: make([]byte, 1<<24)}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWriter(io.Discard, Header{Video: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteTag(tt.tag); !errors.Is(err, tt.want) {
				t.Errorf("WriteTag() = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := NewWriter(failWriter{}, Header{}); err == nil {
		t.Error("NewWriter on a failing writer succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
