//go:build cgo

package worker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/livegrid/livegrid/coordinator/segmenter"
	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/testmedia"
	"github.com/livegrid/livegrid/profiles"
	"github.com/livegrid/livegrid/worker/transcode"
)

// TestEngineTranscoderLive runs a stream's segments, cut by the
// coordinator's segmenter, through the real engine: they share one warm
// session, whose init segment stays the same, and every output segment
// starts with a keyframe at its source segment's time.
func TestEngineTranscoderLive(t *testing.T) {
	path := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, FPS: 15, Seconds: 6, GOP: 15, Format: "flv"})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var segs []segmenter.Segment
	seg := segmenter.New(segmenter.Config{Target: 2 * time.Second}, func(s segmenter.Segment) error {
		s.Data = bytes.Clone(s.Data)
		segs = append(segs, s)
		return nil
	})
	rd := flv.NewReader(f)
	for {
		tag, err := rd.ReadTag()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := seg.WriteTag(tag); err != nil {
			t.Fatal(err)
		}
	}
	if err := seg.Flush(); err != nil {
		t.Fatal(err)
	}
	ladder, err := profiles.Parse([]byte("name: t\nrungs:\n  - {name: 180p, height: 180, bitrate: 200k, preset: ultrafast}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng := transcode.New(transcode.Options{Log: quietLog(), Threads: 1})
	tr := &EngineTranscoder{Engine: eng}
	defer tr.Close()
	var init []byte
	for _, s := range segs {
		out, err := tr.TranscodeSegment(context.Background(), SegmentInput{
			Data: s.Data, Format: "flv", Ladder: ladder, SegmentDuration: 2 * time.Second, End: ticks(s.End),
			Stream: "cam1", Session: "s1", Seq: s.Seq,
		})
		if err != nil {
			t.Fatalf("segment %d: %v", s.Seq, err)
		}
		if tr.Sessions() != 1 {
			t.Fatalf("%d live sessions, want 1", tr.Sessions())
		}
		v := out.Renditions[0]
		if init == nil {
			init = v.Init
		} else if !bytes.Equal(init, v.Init) {
			t.Errorf("segment %d: the init segment changed", s.Seq)
		}
		ms, err := cmaf.ParseMediaSegment(v.Segments[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		if int64(ms.BaseDecodeTime) != ticks(s.Start) || !ms.Samples[0].Keyframe {
			t.Errorf("segment %d: tfdt %d (source %d), first sample key %v", s.Seq, ms.BaseDecodeTime, ticks(s.Start), ms.Samples[0].Keyframe)
		}
		if len(out.Renditions) != 2 || out.Renditions[1].Name != "audio" {
			t.Errorf("segment %d: renditions %d", s.Seq, len(out.Renditions))
		}
	}
	if len(segs) != 3 {
		t.Fatalf("segmenter cut %d segments, want 3", len(segs))
	}
}

func ticks(d time.Duration) int64 { return int64(d/time.Microsecond) * 9 / 100 }
