package transcode

import (
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/testmedia"
)

// TestInputFromURL reads the source over HTTP, as a pull from an origin does.
func TestInputFromURL(t *testing.T) {
	src := testmedia.Make(t, testmedia.Clip{Width: 640, Height: 360, Seconds: 4, Format: "flv"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, src)
	}))
	defer srv.Close()
	eng := New(Options{Log: quietLog()})
	sum, _ := transcodeDir(t, eng, srv.URL+"/clip.flv", fastLadder(t), 2*time.Second)
	if sum.Segments != 2 || sum.Frames == 0 {
		t.Fatalf("segments %d frames %d", sum.Segments, sum.Frames)
	}
}

// TestInputFromMemory feeds segment bytes through custom IO, as a worker does.
func TestInputFromMemory(t *testing.T) {
	path := testmedia.Make(t, testmedia.Clip{Width: 640, Height: 360, Seconds: 4, Format: "flv", GOP: 120})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// FLV carries B-frame delay as composition time: the first frame is not at 0.
	first := uint64(math.Round(testmedia.Frames(t, path, "v:0")[0].PTS * 90000))
	end := first + 4*90000
	eng := New(Options{Log: quietLog()})
	res, err := eng.TranscodeSegment(t.Context(), Source{Data: b, Format: "flv"}, fastLadder(t), SegmentOptions{SegmentDuration: 2 * time.Second, End: int64(end)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Renditions {
		if r.Kind != "video" {
			continue
		}
		// One 4 s source GOP, cut into two 2 s output segments ending at End.
		if len(r.Segments) != 2 {
			t.Fatalf("%s: %d segments, want 2", r.Name, len(r.Segments))
		}
		last := r.Segments[1]
		if r.Segments[0].Start != first {
			t.Errorf("%s: starts at %d, source at %d", r.Name, r.Segments[0].Start, first)
		}
		if got := last.Start + last.Duration; got != end {
			t.Errorf("%s: ends at %d, want End %d", r.Name, got, end)
		}
	}
}
