package transcode

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/testmedia"
)

// rss is the process's resident set in bytes.
func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm")
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// settle collects Go garbage and returns free memory of both heaps to the
// OS, so what remains is what is really held.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
	ReleaseMemory()
}

// TestMemoryFlatOver500Segments proves every libav object of a segment
// transcode has an owner that frees it: 500 segments in a row, half with
// AAC copied and half with MP3 transcoded to AAC, and memory stays flat.
func TestMemoryFlatOver500Segments(t *testing.T) {
	clips := [][]byte{}
	for _, c := range []testmedia.Clip{
		{Width: 320, Height: 180, Seconds: 0.5, GOP: 15, Format: "mpegts"},
		{Width: 320, Height: 180, Seconds: 0.5, GOP: 15, Format: "mpegts", ACodec: "libmp3lame"},
	} {
		b, err := os.ReadFile(testmedia.Make(t, c))
		if err != nil {
			t.Fatal(err)
		}
		clips = append(clips, b)
	}
	eng := New(Options{Log: quietLog()})
	ladder := fastLadder(t)
	// RSS after 100, 300 and 500 segments: glibc's per-thread arenas settle
	// over the first few hundred, so the steady state is judged on the last
	// 200; the first 400 bound the total.
	at := map[int]int64{}
	var heap100 uint64
	for i := range 500 {
		res, err := eng.TranscodeSegment(t.Context(), Source{Data: clips[i%2], Format: "mpegts"}, ladder, SegmentOptions{End: -1})
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if len(res.Renditions) != 2 || len(res.Renditions[0].Segments) == 0 {
			t.Fatalf("segment %d: renditions %d", i, len(res.Renditions))
		}
		if n := i + 1; n == 100 || n == 300 || n == 500 {
			settle()
			at[n] = rss(t)
			t.Logf("after %d segments: RSS %.1f MiB", n, float64(at[n])/(1<<20))
			if n == 100 {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heap100 = ms.HeapAlloc
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	// A leaked chunk of packets per segment grows RSS by about 4 MiB per
	// 100 segments (checked by leaking one on purpose), 8 MiB over these
	// 200; glibc's arenas alone have moved up to 3.2 MiB on a loaded machine.
	if grow := at[500] - at[300]; grow > 5<<20 {
		t.Errorf("RSS grew by %.1f MiB over the last 200 segment transcodes", mib(grow))
	}
	if grow := at[500] - at[100]; grow > 10<<20 {
		t.Errorf("RSS grew by %.1f MiB over 400 segment transcodes", mib(grow))
	}
	if d := int64(ms.HeapAlloc) - int64(heap100); d > 2<<20 {
		t.Errorf("Go heap grew by %d KiB", d/1024)
	}
}

// TestLiveSessionMemoryFlat runs 300 segments through one live session, the
// stream's timeline starting over every 60 (so the audio track is reopened
// then, and kept warm in between): the warm pipeline must not hold on to
// anything per segment.
func TestLiveSessionMemoryFlat(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 30, GOP: 15, Format: "flv", ACodec: "libmp3lame"})
	segs := cutLive(t, src, 500*time.Millisecond)
	eng := New(Options{Log: quietLog()})
	sess := eng.OpenLive(fastLadder(t), LiveOptions{SegmentDuration: 500 * time.Millisecond})
	defer sess.Close()
	at := map[int]int64{}
	var heap100 uint64
	for i := range 300 {
		s := segs[i%len(segs)]
		seg := s.segment()
		seg.Seq = uint64(i)
		res, err := sess.Transcode(t.Context(), seg)
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if len(res.Renditions) != 2 || len(res.Renditions[0].Segments) != 1 {
			t.Fatalf("segment %d: %d renditions", i, len(res.Renditions))
		}
		if n := i + 1; n%100 == 0 {
			settle()
			at[n] = rss(t)
			t.Logf("after %d segments: RSS %.1f MiB", n, float64(at[n])/(1<<20))
			if n == 100 {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heap100 = ms.HeapAlloc
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if grow := at[300] - at[100]; grow > 3<<20 {
		t.Errorf("RSS grew by %.1f MiB over the last 200 segments", float64(grow)/(1<<20))
	}
	if d := int64(ms.HeapAlloc) - int64(heap100); d > 2<<20 {
		t.Errorf("Go heap grew by %d KiB", d/1024)
	}
}
