//go:build cgo

package coordinator_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// TestStandaloneReconnect publishes 6 s, drops for 2 s (inside the grace),
// publishes 6 s more, and checks that the stream goes on: a discontinuity
// between the parts, media sequence numbers counting on, the master still
// valid and decodable across both parts; then, once the publisher has been
// gone longer than the grace, the playlists end.
func TestStandaloneReconnect(t *testing.T) {
	testmedia.Require(t, "ffmpeg", "ffprobe")
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after the node's cleanup
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 6, Format: "flv"})
	const grace = 8 * time.Second
	n := startNode(t, fastLadder, func(c *config.Config) { c.Packager.Grace = grace })
	dir := n.base + "/live/rc/"

	// Part 1.
	p1 := n.publish(t, clip, "rc")
	p1.wait(t)
	left1 := time.Now()
	// Let part 1's segments be listed (the last one after the publisher left).
	var media string
	var part1 mediaPlaylist
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, master := get(t, dir+"index.m3u8")
		if code == http.StatusOK {
			if us := mediaPlaylistURLs(dir, master); len(us) > 0 {
				media = us[0]
				if c, body := get(t, media); c == http.StatusOK {
					part1 = parseMedia(t, body)
					if len(part1.segs) >= 3 {
						break
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("part 1 not listed in 30 s: %+v", part1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("part 1: %d segments, seq %d..%d", len(part1.segs), part1.segs[0].seq, part1.segs[len(part1.segs)-1].seq)
	if part1.ended {
		t.Fatal("playlist ended inside the grace period")
	}

	// Reconnect ~2 s after the publisher left.
	time.Sleep(time.Until(left1.Add(2 * time.Second)))
	p2 := n.publish(t, clip, "rc")
	p2.wait(t)
	left2 := time.Now()

	// Wait for the discontinuity and part 2's segments.
	var all mediaPlaylist
	var body string
	deadline = time.Now().Add(30 * time.Second)
	for {
		var code int
		code, body = get(t, media)
		if code == http.StatusOK {
			all = parseMedia(t, body)
			after := 0
			seenDisc := false
			for _, s := range all.segs {
				if s.seq > part1.segs[len(part1.segs)-1].seq {
					seenDisc = seenDisc || s.disc
					after++
				}
			}
			if seenDisc && after >= 3 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("part 2 not listed with a discontinuity in 30 s; last %d:\n%s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("media playlist after the reconnect:\n%s", body)
	if all.ended {
		t.Fatal("playlist ended although the publisher came back inside the grace")
	}
	last1 := part1.segs[len(part1.segs)-1].seq
	var prev uint64
	discs := 0
	for i, s := range all.segs {
		if i > 0 && s.seq != prev+1 {
			t.Errorf("sequence numbers not contiguous: %d after %d", s.seq, prev)
		}
		prev = s.seq
		if !strings.HasSuffix(s.uri, fmt.Sprintf("%08d.m4s", s.seq)) {
			t.Errorf("segment URI %q", s.uri)
		}
		if s.disc {
			discs++
			if s.seq != last1+1 {
				t.Errorf("discontinuity on seq %d, want %d (the first of part 2)", s.seq, last1+1)
			}
		}
	}
	if discs != 1 {
		t.Errorf("%d discontinuities, want 1", discs)
	}
	if all.segs[0].seq > part1.segs[0].seq {
		t.Logf("window slid: starts at %d", all.segs[0].seq)
	}
	if all.segs[len(all.segs)-1].seq <= last1 {
		t.Errorf("sequence numbers reset: last %d, part 1 ended at %d", all.segs[len(all.segs)-1].seq, last1)
	}

	if code, mpd := get(t, dir+"index.mpd"); code != http.StatusOK || !strings.Contains(mpd, `type="dynamic"`) {
		t.Errorf("MPD while in grace: %d\n%s", code, mpd)
	} else {
		t.Logf("periods in the live MPD: %d", strings.Count(mpd, "<Period"))
	}
	// Media time runs on across the reconnect (one timeline).
	for _, s := range all.segs {
		if s.disc && !s.pdt.IsZero() {
			var before time.Time
			for _, q := range all.segs {
				if q.seq == s.seq-1 {
					before = q.pdt
				}
			}
			if !before.IsZero() && !s.pdt.After(before) {
				t.Errorf("PROGRAM-DATE-TIME went back at the discontinuity: %v after %v", s.pdt, before)
			}
		}
	}

	// The master is still valid and lists both rungs; ffprobe decodes both parts.
	code, master := get(t, dir+"index.m3u8")
	if code != http.StatusOK || !strings.HasPrefix(master, "#EXTM3U") ||
		!strings.Contains(master, "180p") || !strings.Contains(master, "144p") {
		t.Fatalf("master after the reconnect: %d\n%s", code, master)
	}
	frames := countFramesFromStart(t, dir+"index.m3u8")
	t.Logf("ffprobe decoded %d video frames through the master (one part is 180)", frames)
	if frames < 300 {
		t.Errorf("decoded %d frames through the master, want both parts (~360)", frames)
	}

	// Past the grace: EXT-X-ENDLIST and a static MPD.
	deadline = time.Now().Add(grace + 30*time.Second)
	for {
		code, body = get(t, media)
		if code == http.StatusOK && parseMedia(t, body).ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no EXT-X-ENDLIST %v after the publisher left; last %d:\n%s", time.Since(left2), code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("EXT-X-ENDLIST %v after the second publisher left (grace %v)", time.Since(left2).Round(100*time.Millisecond), grace)
	if time.Since(left2) < grace-time.Second {
		t.Errorf("ended before the grace was over")
	}
	code, mpd := get(t, dir+"index.mpd")
	if code != http.StatusOK || !strings.Contains(mpd, `type="static"`) {
		t.Errorf("MPD after the end: %d\n%s", code, mpd)
	}
	if f := countFrames(t, dir+"index.m3u8"); f < 300 {
		t.Errorf("ended playlist: decoded %d frames, want ~360", f)
	}
}
