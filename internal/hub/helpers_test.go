package hub

import (
	"context"
	"errors"
	"testing"

	"github.com/livegrid/livegrid/internal/flv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Synthetic tags: bodies that flv.ParseVideo and flv.ParseAudio read as
// H.264 and AAC.
func metaTag(ts uint32, width float64) flv.Tag {
	b, err := flv.EncodeMetadata(flv.ECMAArray{{Key: "width", Value: width}})
	if err != nil {
		panic(err)
	}
	return flv.Tag{Type: flv.TagScript, Timestamp: ts, Data: b}
}

func avcHeader(ts uint32, v byte) flv.Tag {
	return flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, v}}
}

func keyframe(ts uint32, size int) flv.Tag {
	return flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: append([]byte{0x17, 1, 0, 0, 0}, make([]byte, size)...)}
}

func interFrame(ts uint32, size int) flv.Tag {
	return flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: append([]byte{0x27, 1, 0, 0, 0}, make([]byte, size)...)}
}

func aacHeader(ts uint32) flv.Tag {
	return flv.Tag{Type: flv.TagAudio, Timestamp: ts, Data: []byte{0xaf, 0, 0x12, 0x10}}
}

func aacFrame(ts uint32) flv.Tag {
	return flv.Tag{Type: flv.TagAudio, Timestamp: ts, Data: []byte{0xaf, 1, 0x21, 0x10, 0x04}}
}

// label names a tag for comparisons: "meta", "avc-hdr", "aac-hdr", "key",
// "inter", "aac", with its timestamp.
func label(t flv.Tag) string {
	switch classify(t) {
	case kindHeader:
		switch t.Type {
		case flv.TagScript:
			return "meta@" + itoa(t.Timestamp)
		case flv.TagVideo:
			return "avc-hdr@" + itoa(t.Timestamp)
		default:
			return "aac-hdr@" + itoa(t.Timestamp)
		}
	case kindKeyframe:
		return "key@" + itoa(t.Timestamp)
	}
	if t.Type == flv.TagVideo {
		return "inter@" + itoa(t.Timestamp)
	}
	if t.Type == flv.TagAudio {
		return "aac@" + itoa(t.Timestamp)
	}
	return "script@" + itoa(t.Timestamp)
}

func itoa(v uint32) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

// drain returns the tags a reader has queued now, and the error that
// follows them if the reader has ended.
func drain(t *testing.T, r *Reader) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var got []string
	for {
		tag, err := r.Next(ctx)
		if errors.Is(err, context.Canceled) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, label(tag))
	}
}

func mustPublish(t *testing.T, h *Hub, name string) *Stream {
	t.Helper()
	s, err := h.Publish(name, Publisher{RemoteAddr: "192.0.2.1:5000"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func write(t *testing.T, s *Stream, tags ...flv.Tag) {
	t.Helper()
	for _, tag := range tags {
		if err := s.WriteTag(tag); err != nil {
			t.Fatal(err)
		}
	}
}
