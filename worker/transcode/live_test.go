package transcode

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livegrid/livegrid/coordinator/segmenter"
	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/testmedia"
	"github.com/livegrid/livegrid/profiles"
)

// liveSource is one source segment as the coordinator hands it to a worker.
type liveSource struct {
	seq        uint64
	data       []byte
	start, end int64 // 90 kHz
	frames     int   // video frames in it
}

func (s liveSource) segment() LiveSegment {
	return LiveSegment{Seq: s.seq, Source: Source{Data: s.data, Format: "flv"}, End: s.end}
}

// cutLive cuts an FLV clip into source segments with the coordinator's own
// segmenter, exactly as a published stream is cut.
func cutLive(t testing.TB, path string, target time.Duration) []liveSource {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []liveSource
	seg := segmenter.New(segmenter.Config{Target: target}, func(s segmenter.Segment) error {
		out = append(out, liveSource{seq: s.Seq, data: bytes.Clone(s.Data), start: ticks(s.Start), end: ticks(s.End)})
		return nil
	})
	rd := flv.NewReader(f)
	if _, err := rd.Header(); err != nil {
		t.Fatal(err)
	}
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
	for i := range out {
		p := filepath.Join(t.TempDir(), "src.flv")
		if err := os.WriteFile(p, out[i].data, 0o644); err != nil {
			t.Fatal(err)
		}
		out[i].frames = len(testmedia.Frames(t, p, "v:0"))
	}
	return out
}

func ticks(d time.Duration) int64 { return int64(d/time.Microsecond) * 9 / 100 }

// liveLadder is two veryfast rungs: cheap, but with the rate control of the
// real ladders, whose convergence the session is for.
func liveLadder(t testing.TB) *profiles.Ladder {
	t.Helper()
	l, err := profiles.Parse([]byte(`
name: live
gop: 2s
audio: {codec: aac, bitrate: 96k, sample_rate: 48000, channels: 2}
rungs:
  - {name: 360p, height: 360, bitrate: 800k, preset: veryfast}
  - {name: 180p, height: 180, bitrate: 200k, preset: veryfast}
`), "live.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// renditionOf returns the named rendition of a result.
func renditionOf(t *testing.T, res *SegmentResult, name string) RenditionResult {
	t.Helper()
	for _, r := range res.Renditions {
		if r.Name == name {
			return r
		}
	}
	var names []string
	for _, r := range res.Renditions {
		names = append(names, r.Name)
	}
	t.Fatalf("no rendition %s in %v", name, names)
	return RenditionResult{}
}

// joined writes a rendition's init and media segments of several results as
// one fragmented MP4 file, as a player would append them.
func joined(t *testing.T, results []*SegmentResult, name string) string {
	t.Helper()
	var b []byte
	for i, res := range results {
		r := renditionOf(t, res, name)
		if i == 0 {
			b = append(b, r.Init...)
		}
		for _, s := range r.Segments {
			b = append(b, s.Data...)
		}
	}
	p := filepath.Join(t.TempDir(), name+".mp4")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLiveSession(t *testing.T) {
	tests := []struct {
		name    string
		clip    testmedia.Clip
		encoder string // audio
	}{
		{"aac copied", testmedia.Clip{Width: 640, Height: 360, Seconds: 10, Format: "flv"}, "copy"},
		{"mp3 transcoded", testmedia.Clip{Width: 640, Height: 360, Seconds: 10, Format: "flv", ACodec: "libmp3lame"}, "aac"},
	}
	eng := New(Options{Log: quietLog()})
	ladder := liveLadder(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := testmedia.Make(t, tt.clip)
			srcFrames := testmedia.Frames(t, src, "v:0")
			segs := cutLive(t, src, 2*time.Second)
			if len(segs) != 5 {
				t.Fatalf("segmenter cut %d segments, want 5", len(segs))
			}
			sess := eng.OpenLive(ladder, LiveOptions{SegmentDuration: 2 * time.Second})
			defer sess.Close()
			var results []*SegmentResult
			for _, s := range segs {
				res, err := sess.Transcode(t.Context(), s.segment())
				if err != nil {
					t.Fatalf("segment %d: %v", s.seq, err)
				}
				results = append(results, res)
			}
			for ri, rung := range ladder.Rungs {
				init := renditionOf(t, results[0], rung.Name).Init
				var bytes int
				for k, res := range results {
					r := renditionOf(t, res, rung.Name)
					if string(r.Init) != string(init) {
						t.Errorf("%s: segment %d has another init segment", rung.Name, k)
					}
					if len(r.Segments) != 1 {
						t.Fatalf("%s: source segment %d gave %d segments, want 1", rung.Name, k, len(r.Segments))
					}
					ms, err := cmaf.ParseMediaSegment(r.Segments[0].Data)
					if err != nil {
						t.Fatal(err)
					}
					if int64(ms.BaseDecodeTime) != segs[k].start || !ms.Samples[0].Keyframe || ms.Samples[0].CTSOffset != 0 {
						t.Errorf("%s segment %d: tfdt %d (source %d), first sample key=%v cts=%d",
							rung.Name, k, ms.BaseDecodeTime, segs[k].start, ms.Samples[0].Keyframe, ms.Samples[0].CTSOffset)
					}
					if len(ms.Samples) != segs[k].frames {
						t.Errorf("%s segment %d: %d frames, source segment has %d", rung.Name, k, len(ms.Samples), segs[k].frames)
					}
					if end := int64(ms.BaseDecodeTime + ms.Duration); end != segs[k].end {
						t.Errorf("%s segment %d ends at %d, next source segment starts at %d", rung.Name, k, end, segs[k].end)
					}
					for _, s := range ms.Samples[1:] {
						if s.Keyframe {
							t.Errorf("%s segment %d: a second keyframe", rung.Name, k)
							break
						}
					}
					bytes += len(r.Segments[0].Data)
				}
				fs := testmedia.Frames(t, joined(t, results, rung.Name), "v:0")
				if len(fs) != len(srcFrames) {
					t.Errorf("%s: %d frames decoded from the joined segments, source has %d", rung.Name, len(fs), len(srcFrames))
				}
				if keys := keyTimes(fs); len(keys) != len(segs) {
					t.Errorf("%s: key frames at %v, want one per segment", rung.Name, keys)
				}
				secs := float64(segs[len(segs)-1].end-segs[0].start) / videoTimescale
				got, target := float64(bytes*8)/secs, float64(ladder.Rungs[ri].Bitrate)
				t.Logf("%s: %.0f b/s, target %.0f", rung.Name, got, target)
				if got < target*0.85 || got > target*1.15 {
					t.Errorf("%s: %.0f b/s, target %.0f (±15%%)", rung.Name, got, target)
				}
			}
			// Audio: one rendition, gap-free from segment to segment.
			var next, total uint64
			n := 0
			for k, res := range results {
				a := renditionOf(t, res, "audio")
				if a.Encoder != tt.encoder {
					t.Fatalf("audio via %s, want %s", a.Encoder, tt.encoder)
				}
				for _, s := range a.Segments {
					ms, err := cmaf.ParseMediaSegment(s.Data)
					if err != nil {
						t.Fatal(err)
					}
					if n > 0 && ms.BaseDecodeTime != next {
						t.Errorf("audio of segment %d starts at %d, previous ended at %d", k, ms.BaseDecodeTime, next)
					}
					next = ms.BaseDecodeTime + ms.Duration
					total += ms.Duration
					n++
				}
			}
			if secs := float64(total) / 48000; secs < 9.85 || secs > 10.05 {
				t.Errorf("audio lasts %.3fs, source 10s", secs)
			}
			if fs := testmedia.Frames(t, joined(t, results, "audio"), "a:0"); len(fs) < 460 {
				t.Errorf("decoded %d audio frames", len(fs))
			}
		})
	}
}

// TestLiveSessionAnyOrder feeds segments with a gap, out of order and again:
// each result must stand alone.
func TestLiveSessionAnyOrder(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 640, Height: 360, Seconds: 10, Format: "flv", ACodec: "libmp3lame"})
	segs := cutLive(t, src, 2*time.Second)
	eng := New(Options{Log: quietLog()})
	sess := eng.OpenLive(fastLadder(t), LiveOptions{})
	defer sess.Close()
	for _, k := range []int{0, 1, 3, 2, 4, 4} {
		s := segs[k]
		res, err := sess.Transcode(t.Context(), s.segment())
		if err != nil {
			t.Fatalf("segment %d: %v", k, err)
		}
		for _, name := range []string{"360p", "180p"} {
			fs := testmedia.Frames(t, joined(t, []*SegmentResult{res}, name), "v:0")
			if len(fs) != s.frames || !fs[0].Key {
				t.Errorf("segment %d %s: %d frames (source %d), first key %v", k, name, len(fs), s.frames, len(fs) > 0 && fs[0].Key)
			}
			ms, err := cmaf.ParseMediaSegment(renditionOf(t, res, name).Segments[0].Data)
			if err != nil {
				t.Fatal(err)
			}
			if int64(ms.BaseDecodeTime) != s.start {
				t.Errorf("segment %d %s: tfdt %d, source %d", k, name, ms.BaseDecodeTime, s.start)
			}
		}
		a := renditionOf(t, res, "audio")
		ms, err := cmaf.ParseMediaSegment(a.Segments[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		// Audio after a jump starts at the segment, not an encoder's
		// priming frame before it.
		if start := float64(ms.BaseDecodeTime) / 48000; math.Abs(start-float64(s.start)/videoTimescale) > 0.05 {
			t.Errorf("segment %d: audio starts at %.3fs, video at %.3fs", k, start, float64(s.start)/videoTimescale)
		}
	}
}

// TestLiveSessionFallback fails the pretend NVENC in the middle of the
// second segment: the session falls back to software for that segment and
// the rest, and no segment is lost.
func TestLiveSessionFallback(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 640, Height: 360, Seconds: 6, Format: "flv"})
	srcFrames := testmedia.Frames(t, src, "v:0")
	segs := cutLive(t, src, 2*time.Second)
	chain, fallbacks := pretendChain(t)
	faults := &Faults{Encode: func(c Candidate, n int) error {
		if c.Kind == profiles.EncoderNVENC && n == 75 {
			return errors.New("injected: CUDA_ERROR_LAUNCH_FAILED")
		}
		return nil
	}}
	eng := New(Options{Log: quietLog(), Chain: chain, Faults: faults})
	sess := eng.OpenLive(fastLadder(t), LiveOptions{})
	defer sess.Close()
	var results []*SegmentResult
	total := 0
	for _, s := range segs {
		res, err := sess.Transcode(t.Context(), s.segment())
		if err != nil {
			t.Fatalf("segment %d: %v", s.seq, err)
		}
		total += res.Fallbacks
		results = append(results, res)
		t.Logf("segment %d: %s, %d fallbacks", s.seq, renditionOf(t, res, "360p").Encoder, res.Fallbacks)
	}
	if total != 1 || len(*fallbacks) != 1 || (*fallbacks)[0] != "nvenc->software" || results[1].Fallbacks != 1 {
		t.Fatalf("fallbacks %d %v, want one nvenc->software in segment 1", total, *fallbacks)
	}
	for _, name := range []string{"360p", "180p"} {
		fs := testmedia.Frames(t, joined(t, results, name), "v:0")
		if len(fs) != len(srcFrames) {
			t.Errorf("%s: %d frames after the fallback, source has %d", name, len(fs), len(srcFrames))
		}
		if keys := keyTimes(fs); len(keys) != len(segs) {
			t.Errorf("%s: key frames at %v, want %d", name, keys, len(segs))
		}
	}
}

// TestLiveSessionSoftwareFailure: a software encoder failing is reported,
// and the session starts cold and works with the next segment.
func TestLiveSessionSoftwareFailure(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 6, Format: "flv"})
	segs := cutLive(t, src, 2*time.Second)
	// Frame 70 of an encoder: in the second segment of a warm session,
	// never reached by the cold encoders the third segment gets.
	faults := &Faults{Encode: func(c Candidate, n int) error {
		if n == 70 {
			return errors.New("injected")
		}
		return nil
	}}
	eng := New(Options{Log: quietLog(), Chain: &Chain{Log: quietLog(), Probe: fakeProbe("libx264")}, Faults: faults})
	sess := eng.OpenLive(fastLadder(t), LiveOptions{})
	defer sess.Close()
	if _, err := sess.Transcode(t.Context(), segs[0].segment()); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Transcode(t.Context(), segs[1].segment()); !errors.Is(err, ErrEncoderFailed) {
		t.Fatalf("err = %v, want ErrEncoderFailed", err)
	}
	res, err := sess.Transcode(t.Context(), segs[2].segment())
	if err != nil {
		t.Fatal(err)
	}
	if fs := testmedia.Frames(t, joined(t, []*SegmentResult{res}, "180p"), "v:0"); len(fs) != segs[2].frames {
		t.Errorf("%d frames after the failure, source segment has %d", len(fs), segs[2].frames)
	}
	sess.Close()
	if _, err := sess.Transcode(t.Context(), segs[2].segment()); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("after Close: %v, want ErrSessionClosed", err)
	}
}

// TestLiveSessionLongGOP: a broadcaster's 6 s GOP makes one 6 s source
// segment, which the session still cuts into 2 s output segments.
func TestLiveSessionLongGOP(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 6, GOP: 180, Format: "flv"})
	segs := cutLive(t, src, 2*time.Second)
	if len(segs) != 1 {
		t.Fatalf("segmenter cut %d segments, want 1", len(segs))
	}
	eng := New(Options{Log: quietLog()})
	sess := eng.OpenLive(fastLadder(t), LiveOptions{})
	defer sess.Close()
	res, err := sess.Transcode(t.Context(), segs[0].segment())
	if err != nil {
		t.Fatal(err)
	}
	r := renditionOf(t, res, "180p")
	if len(r.Segments) != 3 {
		t.Fatalf("%d output segments, want 3", len(r.Segments))
	}
	for k, s := range r.Segments {
		ms, err := cmaf.ParseMediaSegment(s.Data)
		if err != nil {
			t.Fatal(err)
		}
		if want := segs[0].start + int64(k)*2*videoTimescale; math.Abs(float64(int64(ms.BaseDecodeTime)-want)) > 3000 || !ms.Samples[0].Keyframe {
			t.Errorf("segment %d: tfdt %d (want about %d), first sample key %v", k, ms.BaseDecodeTime, want, ms.Samples[0].Keyframe)
		}
	}
	if fs := testmedia.Frames(t, joined(t, []*SegmentResult{res}, "180p"), "v:0"); len(fs) != segs[0].frames {
		t.Errorf("%d frames, source has %d", len(fs), segs[0].frames)
	}
	if a := renditionOf(t, res, "audio"); len(a.Segments) != 3 {
		t.Errorf("%d audio segments, want 3 (one per video segment)", len(a.Segments))
	}
}
