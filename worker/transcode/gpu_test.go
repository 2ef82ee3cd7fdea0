package transcode

import (
	"reflect"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/livegrid/livegrid/internal/testmedia"
	"github.com/livegrid/livegrid/profiles"
)

// TestRawPointers pins the go-astiav v0.16.0 layout the GPU path relies on:
// the libav pointer is the first field of CodecContext and FilterContext.
func TestRawPointers(t *testing.T) {
	for _, v := range []any{astiav.CodecContext{}, astiav.FilterContext{}} {
		f := reflect.TypeOf(v).Field(0)
		if f.Name != "c" || f.Type.Kind() != reflect.Pointer {
			t.Fatalf("%T: first field is %s %s; the GPU path needs go-astiav v0.16.0's layout", v, f.Name, f.Type)
		}
	}
	cc := astiav.AllocCodecContext(astiav.FindEncoderByName("libx264"))
	defer cc.Free()
	cc.SetWidth(1234)
	if got := codecWidth(cc); got != 1234 {
		t.Fatalf("width through the raw pointer = %d, want 1234", got)
	}
}

// TestGPUPathFallsBack runs the whole NVENC story on a machine without a
// GPU: the probe is told NVENC works, so the engine takes the GPU path; NVDEC
// cannot open, so it drops to system-memory frames; NVENC then cannot open
// either, so the chain falls to libx264. The output must still be complete.
func TestGPUPathFallsBack(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 640, Height: 360, Seconds: 2})
	var fallbacks []string
	chain := &Chain{
		Log: quietLog(),
		Probe: func(c Candidate) error {
			if c.Encoder == "h264_nvenc" || c.Encoder == "libx264" {
				return nil
			}
			return errNoDevice
		},
		OnFallback: func(from Candidate, to *Candidate, reason string) {
			fallbacks = append(fallbacks, from.Encoder+"->"+to.Encoder)
		},
	}
	eng := New(Options{Log: quietLog(), Chain: chain})
	sum, _ := transcodeDir(t, eng, src, fastLadder(t), 2*time.Second)
	if sum.Fallbacks != 2 {
		t.Errorf("fallbacks = %d, want 2 (GPU path -> system memory -> software)", sum.Fallbacks)
	}
	if len(fallbacks) != 1 || fallbacks[0] != "h264_nvenc->libx264" {
		t.Errorf("chain fallbacks = %v", fallbacks)
	}
	for _, r := range sum.Renditions {
		if r.Kind == "video" && r.Encoder != "libx264" {
			t.Errorf("%s encoded by %s", r.Name, r.Encoder)
		}
	}
	if c, _ := chain.Select(profiles.CodecH264, nil); c.Encoder != "libx264" {
		t.Errorf("chain now selects %s", c.Encoder)
	}
}
