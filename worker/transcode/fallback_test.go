package transcode

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/testmedia"
	"github.com/livegrid/livegrid/profiles"
)

// pretendChain is a chain whose "NVENC" is really libx264, so a failure
// injected into it can be recovered from by real encoding on this machine.
func pretendChain(t *testing.T) (*Chain, *[]string) {
	var mu sync.Mutex
	var fallbacks []string
	c := &Chain{
		Log: quietLog(),
		Candidates: func(codec profiles.Codec) []Candidate {
			return []Candidate{
				{Kind: profiles.EncoderNVENC, Codec: codec, Encoder: "libx264"},
				{Kind: profiles.EncoderSoftware, Codec: codec, Encoder: "libx264"},
			}
		},
		Probe: func(Candidate) error { return nil },
		OnFallback: func(from Candidate, to *Candidate, reason string) {
			mu.Lock()
			defer mu.Unlock()
			fallbacks = append(fallbacks, string(from.Kind)+"->"+string(to.Kind))
		},
	}
	return c, &fallbacks
}

func TestFallbackMidStream(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 640, Height: 360, Seconds: 6})
	srcFrames := testmedia.Frames(t, src, "v:0")
	chain, fallbacks := pretendChain(t)
	faults := &Faults{Encode: func(c Candidate, n int) error {
		if c.Kind == profiles.EncoderNVENC && n == 75 { // in the middle of the second segment
			return errors.New("injected: CUDA_ERROR_LAUNCH_FAILED")
		}
		return nil
	}}
	eng := New(Options{Log: quietLog(), Chain: chain, Faults: faults})
	sum, dir := transcodeDir(t, eng, src, fastLadder(t), 2*time.Second)
	if sum.Fallbacks != 1 || len(*fallbacks) != 1 || (*fallbacks)[0] != "nvenc->software" {
		t.Fatalf("fallbacks = %d %v, want one nvenc->software", sum.Fallbacks, *fallbacks)
	}
	if sum.Segments != 3 {
		t.Fatalf("segments = %d, want 3", sum.Segments)
	}
	// Nothing lost, nothing doubled: every rung has every source frame once.
	for _, r := range []string{"360p", "180p"} {
		fs := testmedia.Frames(t, filepath.Join(dir, r, "index.m3u8"), "v:0")
		if len(fs) != len(srcFrames) {
			t.Errorf("%s: %d frames after the fallback, source has %d", r, len(fs), len(srcFrames))
		}
		if keys := keyTimes(fs); len(keys) != 3 {
			t.Errorf("%s: key frames at %v, want 3", r, keys)
		}
	}
	// The chain now prefers software until NVENC's cooldown is over.
	if c, err := chain.Select(profiles.CodecH264, nil); err != nil || c.Kind != profiles.EncoderSoftware {
		t.Errorf("after the failure Select = %v, %v; want software", c, err)
	}
}

func TestFallbackOnOpen(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 640, Height: 360, Seconds: 2})
	chain, fallbacks := pretendChain(t)
	faults := &Faults{Open: func(c Candidate) error {
		if c.Kind == profiles.EncoderNVENC {
			return errors.New("injected: out of NVENC sessions")
		}
		return nil
	}}
	eng := New(Options{Log: quietLog(), Chain: chain, Faults: faults})
	res, err := eng.TranscodeSegment(t.Context(), Source{URL: src}, fastLadder(t), SegmentOptions{End: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Fallbacks != 1 || len(*fallbacks) != 1 {
		t.Fatalf("fallbacks = %d %v, want 1", res.Fallbacks, *fallbacks)
	}
	for _, r := range res.Renditions {
		if len(r.Segments) == 0 {
			t.Errorf("%s: no segments", r.Name)
		}
	}
}

func TestSoftwareFailureIsReported(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 640, Height: 360, Seconds: 2})
	faults := &Faults{Encode: func(c Candidate, n int) error {
		if n == 10 {
			return errors.New("injected")
		}
		return nil
	}}
	chain := &Chain{Log: quietLog(), Probe: fakeProbe("libx264")}
	eng := New(Options{Log: quietLog(), Chain: chain, Faults: faults})
	_, err := eng.TranscodeSegment(t.Context(), Source{URL: src}, fastLadder(t), SegmentOptions{End: -1})
	if !errors.Is(err, ErrEncoderFailed) {
		t.Fatalf("err = %v, want ErrEncoderFailed", err)
	}
	// A software failure is the input's or the settings': libx264 stays usable.
	if c, err := chain.Select(profiles.CodecH264, nil); err != nil || c.Encoder != "libx264" {
		t.Fatalf("Select after a software failure = %v, %v", c, err)
	}
}
