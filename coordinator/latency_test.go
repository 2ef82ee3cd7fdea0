//go:build cgo

package coordinator_test

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/internal/testmedia"
)

const latencyLadder = `name: latency
gop: 2s
audio: {codec: aac, bitrate: 96k, sample_rate: 48000, channels: 2}
rungs:
  - {name: 360p, height: 360, bitrate: 800k, preset: ultrafast, encoders: [software]}
  - {name: 180p, height: 180, bitrate: 200k, preset: ultrafast, encoders: [software]}
`

// TestLiveLatency measures, on an in-process standalone with 2 s
// segments: (a) the wall time from the publisher's start to the first
// media playlist listing a segment; (b) per segment, the wall time it is
// first listed minus the wall time its source media ended at a -re
// publisher (publish start + the segment's end on the playlist's EXTINF
// timeline). It logs the numbers and asserts only that segments are
// listed within 30 s. LIVEGRID_LATENCY_DEFAULT=1 also runs the builtin
// default ladder on a 1280x720 source.
func TestLiveLatency(t *testing.T) {
	testmedia.Require(t, "ffmpeg", "ffprobe")
	cases := []struct {
		name          string
		ladder        string
		width, height int
	}{
		{"ultrafast2-360p", latencyLadder, 640, 360},
	}
	if os.Getenv("LIVEGRID_LATENCY_DEFAULT") != "" {
		cases = append(cases, struct {
			name          string
			ladder        string
			width, height int
		}{"default-720p", "default", 1280, 720})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
			clip := testmedia.Make(t, testmedia.Clip{Width: c.width, Height: c.height, Seconds: 20, Format: "flv"})
			n := startNode(t, c.ladder, nil)
			measureLatency(t, n, clip)
		})
	}
}

func measureLatency(t *testing.T, n *liveNode, clip string) {
	dir := n.base + "/live/lat/"
	pub := n.publish(t, clip, "lat")
	listed := map[uint64]time.Time{} // seq -> first seen
	ends := map[uint64]float64{}     // seq -> media end (s) since the first segment's start
	var first time.Time              // first playlist with a segment
	var media string
	var firstSeq uint64
	var haveFirst bool
	pubDone := false
	var quietSince time.Time
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if !pubDone {
			select {
			case err := <-pub.done:
				if err != nil {
					t.Fatalf("ffmpeg publish: %v\n%s", err, pub.err.String())
				}
				pubDone = true
				quietSince = time.Now()
			default:
			}
		}
		if media == "" {
			if code, master := get(t, dir+"index.m3u8"); code == http.StatusOK {
				if us := mediaPlaylistURLs(dir, master); len(us) > 0 {
					media = us[0] // the top rung: the slowest to encode
				}
			}
		}
		if media != "" {
			if code, body := get(t, media); code == http.StatusOK {
				now := time.Now()
				mp := parseMedia(t, body)
				for _, s := range mp.segs {
					if !haveFirst {
						first, firstSeq, haveFirst = now, s.seq, true
					}
					if _, ok := listed[s.seq]; !ok {
						listed[s.seq] = now
						quietSince = now
					}
				}
				// Media ends on the EXTINF timeline from the first segment,
				// anchored on a segment already measured as the window slides.
				for i, s := range mp.segs {
					base, ok := ends[s.seq]
					if s.seq == firstSeq && !ok {
						base, ok = s.dur, true
					}
					if !ok {
						continue
					}
					for _, q := range mp.segs[i:] {
						ends[q.seq] = base + (q.startSum + q.dur) - (s.startSum + s.dur)
					}
					break
				}
			}
		}
		if pubDone && time.Since(quietSince) > 8*time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !haveFirst {
		t.Fatal("no segment listed")
	}
	toFirst := first.Sub(pub.start)
	t.Logf("(a) publish -> first segment listed: %v", toFirst.Round(time.Millisecond))
	if toFirst > 30*time.Second {
		t.Errorf("first segment listed %v after the publish started, want within 30 s", toFirst)
	}
	var lags []time.Duration
	var b strings.Builder
	for seq := firstSeq; ; seq++ {
		at, ok := listed[seq]
		end, ok2 := ends[seq]
		if !ok || !ok2 {
			break
		}
		// The first segment's media starts at the publish start (-re plays
		// from the clip's first frame).
		lag := at.Sub(pub.start.Add(time.Duration(end * float64(time.Second))))
		lags = append(lags, lag)
		b.WriteString(" " + lag.Round(10*time.Millisecond).String())
	}
	if len(lags) < 5 {
		t.Fatalf("only %d segments measured", len(lags))
	}
	t.Logf("(b) per-segment availability lag (listed - source media end):%s", b.String())
	// The last segment ends when the publisher leaves, not at a keyframe
	// it waits for; report it apart from the steady state.
	steady := slices.Clone(lags[:len(lags)-1])
	slices.Sort(steady)
	p50, mx := steady[len(steady)/2], steady[len(steady)-1]
	t.Logf("(b) availability lag over %d segments (last excluded): p50 %v, max %v; last segment %v",
		len(steady), p50.Round(10*time.Millisecond), mx.Round(10*time.Millisecond), lags[len(lags)-1].Round(10*time.Millisecond))
	for i, l := range lags {
		if l > 30*time.Second {
			t.Errorf("segment %d listed %v after its media ended, want within 30 s", firstSeq+uint64(i), l)
		}
	}
}
