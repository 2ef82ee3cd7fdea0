package transcode

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

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
	var baseRSS int64
	var baseHeap uint64
	for i := range 500 {
		res, err := eng.TranscodeSegment(t.Context(), Source{Data: clips[i%2], Format: "mpegts"}, ladder, SegmentOptions{End: -1})
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if len(res.Renditions) != 2 || len(res.Renditions[0].Segments) == 0 {
			t.Fatalf("segment %d: renditions %d", i, len(res.Renditions))
		}
		if (i+1)%100 == 0 {
			settle()
			t.Logf("after %d segments: RSS %.1f MiB", i+1, float64(rss(t))/(1<<20))
		}
		if i == 99 {
			baseRSS = rss(t)
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			baseHeap = ms.HeapAlloc
		}
	}
	settle()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	grow := rss(t) - baseRSS
	t.Logf("RSS after 100 segments %.1f MiB, after 500 %+.1f MiB; Go heap %+d KiB",
		float64(baseRSS)/(1<<20), float64(grow)/(1<<20), (int64(ms.HeapAlloc)-int64(baseHeap))/1024)
	// 400 leaked segments of even one small frame each would be > 20 MiB.
	if grow > 4<<20 {
		t.Errorf("RSS grew by %.1f MiB over 400 segment transcodes", float64(grow)/(1<<20))
	}
	if int64(ms.HeapAlloc)-int64(baseHeap) > 2<<20 {
		t.Errorf("Go heap grew by %d KiB", (int64(ms.HeapAlloc)-int64(baseHeap))/1024)
	}
}
