package segmenter

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
)

// FuzzSegmenter feeds tag sequences decoded from the fuzz bytes: each
// step is an op byte, a signed 16-bit timestamp step and, for raw bodies,
// a length byte and the body. The seeds under testdata/fuzz/ are a
// regular stream, a timestamp reset and a stream without keyframes.
func FuzzSegmenter(f *testing.F) {
	meta, err := flv.EncodeMetadata(flv.ECMAArray{{Key: "width", Value: 320}, {Key: "framerate", Value: 25}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxBytes = 4096
		var segs []Segment
		s := New(Config{Target: time.Second, MaxDuration: 3 * time.Second, MaxBytes: maxBytes}, func(seg Segment) error {
			segs = append(segs, seg)
			return nil
		})
		var ts uint32
		for len(b) >= 3 {
			op := b[0]
			step := int16(binary.BigEndian.Uint16(b[1:]))
			b = b[3:]
			if op&0x80 != 0 {
				ts = uint32(uint16(step)) << 16
			} else {
				ts = uint32(int64(ts) + int64(step))
			}
			var tag flv.Tag
			switch op & 0x0f {
			case 0:
				tag = keyframe(ts, byte(step))
			case 1, 2, 3:
				tag = inter(ts)
			case 4, 5:
				tag = aac(ts)
			case 6:
				tag = config(avcConfig)
				if op&0x10 != 0 {
					tag = config(avcConfig2)
				}
			case 7:
				tag = config(aacConfig)
				if op&0x10 != 0 {
					tag = config(aacConfig2)
				}
			case 8:
				tag = flv.Tag{Type: flv.TagScript, Timestamp: ts, Data: meta}
			case 9, 10:
				if len(b) < 1 {
					return
				}
				n := min(int(b[0]), len(b)-1)
				tag = flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: b[1 : 1+n]}
				if op&0x0f == 10 {
					tag.Type = flv.TagType(op>>4) + flv.TagAudio
				}
				b = b[1+n:]
			case 11:
				s.Discontinuity()
				continue
			case 12:
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
				continue
			default:
				tag = flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: make([]byte, 600)}
				tag.Data[0] = 0x27
			}
			if err := s.WriteTag(tag); err != nil {
				t.Fatalf("WriteTag(%+v) = %v", tag, err)
			}
			if s.buffered() > maxBytes || len(s.pending) > maxPending {
				t.Fatalf("%d bytes and %d tags buffered", s.buffered(), len(s.pending))
			}
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		for i, seg := range segs {
			checkSegment(t, seg)
			if seg.Seq != uint64(i) {
				t.Fatalf("segment %d has seq %d", i, seg.Seq)
			}
		}
	})
}

func checkSegment(t *testing.T, seg Segment) {
	t.Helper()
	if seg.Duration <= 0 || seg.Duration != seg.End-seg.Start || seg.Start < 0 || seg.Keyframes < 1 {
		t.Fatalf("segment %d: %v-%v, duration %v, %d keyframes", seg.Seq, seg.Start, seg.End, seg.Duration, seg.Keyframes)
	}
	r := flv.NewReader(bytes.NewReader(seg.Data))
	var first *flv.VideoInfo
	for {
		tag, err := r.ReadTag()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("segment %d: %v", seg.Seq, err)
		}
		if tag.Type != flv.TagVideo || first != nil {
			continue
		}
		if info, err := flv.ParseVideo(tag.Data); err == nil && !info.SequenceHeader {
			first = &info
		}
	}
	if first == nil || !first.Keyframe {
		t.Fatalf("segment %d does not start with a keyframe", seg.Seq)
	}
}
