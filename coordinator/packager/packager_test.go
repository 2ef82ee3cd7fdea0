package packager

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/manifest"
	"github.com/livegrid/livegrid/internal/queue"
)

// TestContiguousPublishing feeds source segments in several orders: a
// segment is published only once every one before it is, so numbering
// follows source order whatever the completion order.
func TestContiguousPublishing(t *testing.T) {
	tests := []struct {
		name  string
		order []uint64
		// visible is the number of segments in the playlist after each
		// Publish.
		visible []int
	}{
		{"in order", []uint64{0, 1, 2}, []int{1, 2, 3}},
		{"K+1 before K", []uint64{1, 0, 2}, []int{0, 2, 3}},
		{"reversed", []uint64{2, 1, 0}, []int{0, 0, 3}},
		{"last first", []uint64{0, 2, 1}, []int{1, 1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.start("cam", "s1")
			for i, k := range tt.order {
				h.publish(result("cam", "s1", k, at(k), 1))
				pl, ok := h.playlist("cam", "240p")
				if got := len(pl.uris); got != tt.visible[i] || ok != (tt.visible[i] > 0) {
					t.Fatalf("after publishing %d: %d segments listed (found %v), want %d", k, got, ok, tt.visible[i])
				}
			}
			pl, _ := h.playlist("cam", "240p")
			if want := []string{"00000000.m4s", "00000001.m4s", "00000002.m4s"}; !slices.Equal(pl.uris, want) || len(pl.discBefore) != 0 {
				t.Fatalf("playlist %v (discontinuities before %v), want %v", pl.uris, pl.discBefore, want)
			}
			for k := range uint64(3) {
				for _, rend := range []string{"240p", "aac"} {
					key := fmt.Sprintf("live/cam/s1/%s/%s", rend, manifest.SegmentName(k))
					if got, _ := h.store.object(key); got != fmt.Sprintf("s1/%d/%s/0", k, rend) {
						t.Errorf("%s holds %q", key, got)
					}
				}
			}
			if got, _ := h.store.object("live/cam/s1/240p/init.mp4"); got != string(init240p) {
				t.Error("session folder lacks the video init segment")
			}
			if m := h.p.Metrics(); m.SegmentsPublished != 3 || m.SourceSegments != 3 || m.Gaps != 0 || m.LiveStreams != 1 {
				t.Errorf("metrics %+v", m)
			}
		})
	}
}

// TestSeveralOutputSegments: a source segment longer than the target
// gives several output segments, numbered by start time.
func TestSeveralOutputSegments(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	r := result("cam", "s1", 0, 0, 3)
	for i := range r.Renditions {
		segs := r.Renditions[i].Segments
		segs[0], segs[2] = segs[2], segs[0] // handed over out of order
	}
	h.publish(r)
	h.publish(result("cam", "s1", 1, at(3), 1))
	pl, _ := h.playlist("cam", "240p")
	if len(pl.uris) != 4 {
		t.Fatalf("playlist %v", pl.uris)
	}
	for seq, want := range []string{"s1/0/240p/0", "s1/0/240p/1", "s1/0/240p/2", "s1/1/240p/0"} {
		if got, _ := h.store.object("live/cam/s1/240p/" + manifest.SegmentName(uint64(seq))); got != want {
			t.Errorf("segment %d holds %q, want %q", seq, got, want)
		}
	}
}

// TestGap: a segment declared lost is skipped and the next published one
// starts a discontinuity, in HLS and as a new DASH period, whether the
// gap or the next result comes first.
func TestGap(t *testing.T) {
	tests := []struct {
		name string
		feed func(h *harness)
	}{
		{"gap then next", func(h *harness) {
			h.gap("cam", "s1", 1)
			h.publish(result("cam", "s1", 2, at(2), 1))
		}},
		{"next then gap", func(h *harness) {
			h.publish(result("cam", "s1", 2, at(2), 1))
			h.gap("cam", "s1", 1)
		}},
		{"bad result", func(h *harness) {
			bad := result("cam", "s1", 1, at(1), 1)
			bad.Renditions[1].Segments = nil
			if err := h.p.Publish(bad); !errors.Is(err, ErrBadResult) {
				t.Fatalf("bad result: %v", err)
			}
			h.publish(result("cam", "s1", 2, at(2), 1))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.start("cam", "s1")
			h.publish(result("cam", "s1", 0, at(0), 1))
			tt.feed(h)
			pl, _ := h.playlist("cam", "240p")
			if !slices.Equal(pl.uris, []string{"00000000.m4s", "00000001.m4s"}) || !slices.Equal(pl.discBefore, []string{"00000001.m4s"}) {
				t.Fatalf("playlist %v with discontinuities before %v\n%s", pl.uris, pl.discBefore, pl.raw)
			}
			if got, _ := h.store.object("live/cam/s1/aac/00000001.m4s"); got != "s1/2/aac/0" {
				t.Errorf("segment 1 holds %q", got)
			}
			if got := h.mpd("cam").summary(); !slices.Equal(got, []string{"0@PT0S:0+1", "1@PT4S:1+1"}) {
				t.Errorf("MPD periods %v", got)
			}
			if m := h.p.Metrics(); m.Gaps != 1 || m.Discontinuities != 1 || m.SegmentsPublished != 2 {
				t.Errorf("metrics %+v", m)
			}
		})
	}
}

func (h *harness) gap(stream, session string, k uint64) {
	h.t.Helper()
	if err := h.p.Gap(stream, session, k); err != nil {
		h.t.Fatalf("gap %d: %v", k, err)
	}
}

// TestReconnectWithinGrace: a publisher that comes back within the grace
// period, as the same session or a new one, continues the presentation:
// a discontinuity, sequence numbers counting on, a new DASH period, no
// end.
func TestReconnectWithinGrace(t *testing.T) {
	tests := []struct {
		name     string
		session  string // of the second part
		firstSrc uint64 // its first source segment
		back     func(h *harness) error
	}{
		{"resume", "s1", 2, func(h *harness) error { return h.p.Resume("cam") }},
		{"new session", "s2", 0, func(h *harness) error { return h.p.Start("cam", "s2", StartOptions{}) }},
		{"start of the same session", "s1", 2, func(h *harness) error { return h.p.Start("cam", "s1", StartOptions{}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.start("cam", "s1")
			h.publish(result("cam", "s1", 0, at(0), 1))
			h.publish(result("cam", "s1", 1, at(1), 1))
			if err := h.p.End("cam", "s1", 2); err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(9 * time.Second)
			if err := tt.back(h); err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(5 * time.Second) // past the first grace period
			// Media time runs on from the end of the first part.
			h.publish(result("cam", tt.session, tt.firstSrc+1, at(3), 1))
			h.publish(result("cam", tt.session, tt.firstSrc, at(2), 1))
			h.clock.Advance(time.Minute)

			pl, _ := h.playlist("cam", "240p")
			want := []string{"00000000.m4s", "00000001.m4s", "00000002.m4s", "00000003.m4s"}
			if !slices.Equal(pl.uris, want) || !slices.Equal(pl.discBefore, []string{"00000002.m4s"}) || pl.ended {
				t.Fatalf("playlist %v, discontinuities before %v, ended %v\n%s", pl.uris, pl.discBefore, pl.ended, pl.raw)
			}
			if !slices.Equal(pl.maps, []string{"init.mp4", "init.mp4"}) {
				t.Errorf("EXT-X-MAP %v", pl.maps)
			}
			m := h.mpd("cam")
			if m.Type != "dynamic" || !slices.Equal(m.summary(), []string{"0@PT0S:0+2", "1@PT4S:2+2"}) {
				t.Errorf("MPD %s periods %v", m.Type, m.summary())
			}
			if got, _ := h.store.object("live/cam/" + tt.session + "/240p/00000002.m4s"); got != tt.session+"/"+fmt.Sprint(tt.firstSrc)+"/240p/0" {
				t.Errorf("segment 2 holds %q", got)
			}
			w := h.get(http.MethodGet, "/live/cam/240p/00000002.m4s")
			if w.Code != http.StatusOK || w.Body.String() != tt.session+"/"+fmt.Sprint(tt.firstSrc)+"/240p/0" {
				t.Errorf("origin serves segment 2: %d %q", w.Code, w.Body)
			}
			if got := h.p.Metrics(); got.LiveStreams != 1 || got.Discontinuities != 1 {
				t.Errorf("metrics %+v", got)
			}
		})
	}
}

// TestEndAfterGrace: once the grace period passes with no publisher, the
// playlists end (EXT-X-ENDLIST, static MPD), the session's VOD playlists
// are in the store, and after Linger the stream is gone.
func TestEndAfterGrace(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	for k := range uint64(3) {
		h.publish(result("cam", "s1", k, at(k), 1))
	}
	if err := h.p.End("cam", "s1", 3); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(DefaultGrace - time.Millisecond)
	if pl, _ := h.playlist("cam", "240p"); pl.ended || h.mpd("cam").Type != "dynamic" {
		t.Fatal("ended before the grace period passed")
	}
	h.clock.Advance(time.Millisecond)
	pl, _ := h.playlist("cam", "240p")
	if !pl.ended || len(pl.uris) != 3 {
		t.Fatalf("after the grace period: ended %v, %v", pl.ended, pl.uris)
	}
	if m := h.mpd("cam"); m.Type != "static" || !slices.Equal(m.summary(), []string{"0@PT0S:0+3"}) {
		t.Errorf("MPD %s %v", m.Type, m.summary())
	}
	if m := h.p.Metrics(); m.LiveStreams != 0 {
		t.Errorf("live streams %d", m.LiveStreams)
	}

	vod, ok := h.store.object("live/cam/s1/240p/vod.m3u8")
	if !ok {
		t.Fatal("no VOD playlist")
	}
	v := parseHLSMedia(t, vod)
	if !v.vod || !v.ended || len(v.uris) != 3 || !slices.Equal(v.maps, []string{"init.mp4"}) {
		t.Errorf("VOD playlist:\n%s", vod)
	}
	if master, _ := h.store.object("live/cam/s1/vod.m3u8"); !strings.Contains(master, "240p/vod.m3u8") || !strings.Contains(master, "aac/vod.m3u8") {
		t.Errorf("VOD master:\n%s", master)
	}
	if mpd, _ := h.store.object("live/cam/s1/vod.mpd"); !strings.Contains(mpd, `type="static"`) {
		t.Errorf("VOD MPD:\n%s", mpd)
	}

	h.clock.Advance(DefaultLinger)
	for _, path := range []string{"/live/cam/index.m3u8", "/live/cam/240p/index.m3u8", "/live/cam/index.mpd", "/live/cam/240p/00000000.m4s"} {
		if w := h.get(http.MethodGet, path); w.Code != http.StatusNotFound {
			t.Errorf("%s after linger: %d", path, w.Code)
		}
	}
	if err := h.p.Publish(result("cam", "s1", 3, at(3), 1)); !errors.Is(err, ErrUnknownStream) {
		t.Errorf("publish after the end: %v", err)
	}
}

// TestEndWaitsForAnnouncedSegments: a segment still being transcoded when
// the publisher left is published after the grace period, before the
// playlists end; one that never comes is given up MaxHold later.
func TestEndWaitsForAnnouncedSegments(t *testing.T) {
	for _, arrives := range []bool{true, false} {
		t.Run(fmt.Sprintf("arrives=%v", arrives), func(t *testing.T) {
			h := newHarness(t, nil)
			h.start("cam", "s1")
			h.publish(result("cam", "s1", 0, at(0), 1))
			if err := h.p.End("cam", "s1", 2); err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(DefaultGrace + time.Second)
			if pl, _ := h.playlist("cam", "240p"); pl.ended {
				t.Fatal("ended with segment 1 outstanding")
			}
			if arrives {
				h.publish(result("cam", "s1", 1, at(1), 1))
			} else {
				h.clock.Advance(DefaultMaxHold)
			}
			pl, _ := h.playlist("cam", "240p")
			if want := map[bool]int{true: 2, false: 1}[arrives]; !pl.ended || len(pl.uris) != want {
				t.Fatalf("ended %v with %v, want %d segments", pl.ended, pl.uris, want)
			}
			if m := h.p.Metrics(); m.ForcedGaps != map[bool]uint64{true: 0, false: 1}[arrives] {
				t.Errorf("metrics %+v", m)
			}
		})
	}
}

// TestMaxHold: a segment held behind a missing one for MaxHold makes the
// packager declare the missing one lost.
func TestMaxHold(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxHold = 5 * time.Second })
	h.start("cam", "s1")
	h.publish(result("cam", "s1", 0, at(0), 1))
	h.publish(result("cam", "s1", 2, at(2), 1))
	h.clock.Advance(4 * time.Second)
	h.publish(result("cam", "s1", 3, at(3), 1))
	if pl, _ := h.playlist("cam", "240p"); len(pl.uris) != 1 {
		t.Fatalf("published %v while waiting for segment 1", pl.uris)
	}
	h.clock.Advance(time.Second)
	pl, _ := h.playlist("cam", "240p")
	if len(pl.uris) != 3 || !slices.Equal(pl.discBefore, []string{"00000001.m4s"}) {
		t.Fatalf("playlist %v discontinuities before %v", pl.uris, pl.discBefore)
	}
	if err := h.p.Publish(result("cam", "s1", 1, at(1), 1)); !errors.Is(err, ErrStale) {
		t.Errorf("late segment 1: %v", err)
	}
	if m := h.p.Metrics(); m.ForcedGaps != 1 || m.Gaps != 1 || m.StaleResults != 1 {
		t.Errorf("metrics %+v", m)
	}
}

// TestWindow: the live window slides over the last Window segments, the
// MPD with it; the target duration never changes, and once a long
// segment has raised it, it stays up after that segment leaves.
func TestWindow(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	start := time.Duration(0)
	for k := range uint64(14) {
		r := result("cam", "s1", k, start, 1)
		if k == 8 {
			for i := range r.Renditions {
				s := &r.Renditions[i].Segments[0]
				s.Duration = s.Duration * 7 / 4 // 3.5 s
			}
		}
		start += time.Duration(r.Renditions[0].Segments[0].Duration) * time.Second / videoTS
		h.publish(r)
		pl, _ := h.playlist("cam", "240p")
		wantTarget := 2
		if k >= 8 {
			wantTarget = 4
		}
		if pl.target != wantTarget {
			t.Fatalf("after %d: target %d, want %d", k, pl.target, wantTarget)
		}
		n := min(int(k)+1, DefaultWindow)
		if len(pl.uris) != n || pl.seq != int(k)+1-n || pl.uris[n-1] != manifest.SegmentName(k) {
			t.Fatalf("after %d: media sequence %d, %v", k, pl.seq, pl.uris)
		}
		m := h.mpd("cam")
		if got, want := m.summary(), []string{fmt.Sprintf("0@PT0S:%d+%d", pl.seq, n)}; !slices.Equal(got, want) {
			t.Fatalf("after %d: MPD %v, want %v", k, got, want)
		}
	}
}

// TestDiscontinuitySequence: as discontinuities leave the window,
// EXT-X-DISCONTINUITY-SEQUENCE counts them and DASH period ids and
// starts stay put.
func TestDiscontinuitySequence(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Window = 3 })
	h.start("cam", "s1")
	for k := range uint64(8) {
		if k == 2 || k == 4 {
			h.gap("cam", "s1", k)
			continue
		}
		h.publish(result("cam", "s1", k, at(k), 1))
	}
	// Published: 0:K0 1:K1 2:K3(disc) 3:K5(disc) 4:K6 5:K7; window 3..5.
	pl, _ := h.playlist("cam", "240p")
	if pl.seq != 3 || pl.discSeq != 1 || !slices.Equal(pl.discBefore, []string{"00000003.m4s"}) {
		t.Fatalf("media sequence %d discontinuity sequence %d, discontinuities before %v\n%s", pl.seq, pl.discSeq, pl.discBefore, pl.raw)
	}
	if got := h.mpd("cam").summary(); !slices.Equal(got, []string{"2@PT10S:3+3"}) {
		t.Errorf("MPD %v", got)
	}
	h.publish(result("cam", "s1", 8, at(8), 1))
	pl, _ = h.playlist("cam", "240p")
	if pl.seq != 4 || pl.discSeq != 2 || len(pl.discBefore) != 0 {
		t.Fatalf("media sequence %d discontinuity sequence %d\n%s", pl.seq, pl.discSeq, pl.raw)
	}
	// The period that began at K5 (10 s) keeps its id and start.
	if got := h.mpd("cam").summary(); !slices.Equal(got, []string{"2@PT10S:4+3"}) {
		t.Errorf("MPD %v", got)
	}
}

// TestInitChange: a rendition whose init segment changes (an encoder
// fallback) gets a discontinuity and a new init name, the live window
// starts over there, and the session's VOD playlist names each init.
func TestInitChange(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	for k := range uint64(5) {
		r := result("cam", "s1", k, at(k), 1)
		if k >= 3 {
			r.Renditions[0].Init = init120p
		}
		h.publish(r)
	}
	pl, _ := h.playlist("cam", "240p")
	if !slices.Equal(pl.uris, []string{"00000003.m4s", "00000004.m4s"}) || !slices.Equal(pl.maps, []string{"init-00000003.mp4"}) {
		t.Fatalf("playlist %v maps %v\n%s", pl.uris, pl.maps, pl.raw)
	}
	if a, _ := h.playlist("cam", "aac"); !slices.Equal(a.maps, []string{"init.mp4"}) || len(a.uris) != 2 {
		t.Errorf("audio playlist %v maps %v", a.uris, a.maps)
	}
	for path, want := range map[string]string{
		"/live/cam/240p/init.mp4":          string(init240p),
		"/live/cam/240p/init-00000003.mp4": string(init120p),
		"/live/cam/aac/init.mp4":           string(initAAC),
	} {
		if w := h.get(http.MethodGet, path); w.Code != http.StatusOK || w.Body.String() != want {
			t.Errorf("%s: %d", path, w.Code)
		}
	}
	if w := h.get(http.MethodGet, "/live/cam/aac/init-00000003.mp4"); w.Code != http.StatusNotFound {
		t.Errorf("audio init-00000003.mp4: %d", w.Code)
	}
	if m := h.mpd("cam"); !slices.Equal(m.summary(), []string{"1@PT6S:3+2"}) || m.Periods[0].Sets[0].Reps[0].Template.Init != "240p/init-00000003.mp4" {
		t.Errorf("MPD %v init %q", m.summary(), m.Periods[0].Sets[0].Reps[0].Template.Init)
	}
	if err := h.p.End("cam", "s1", 5); err != nil {
		t.Fatal(err)
	}
	vod, _ := h.store.object("live/cam/s1/240p/vod.m3u8")
	if v := parseHLSMedia(t, vod); len(v.uris) != 5 || !slices.Equal(v.maps, []string{"init.mp4", "init-00000003.mp4"}) {
		t.Errorf("VOD playlist:\n%s", vod)
	}
	if got, _ := h.store.object("live/cam/s1/240p/init-00000003.mp4"); got != string(init120p) {
		t.Error("session folder lacks the second init segment")
	}
	if _, ok := h.store.object("live/cam/s1/vod.mpd"); ok {
		t.Error("vod.mpd written across an init change")
	}
	if m := h.p.Metrics(); m.InitChanges != 1 || m.Discontinuities != 1 {
		t.Errorf("metrics %+v", m)
	}
}

// TestNumberingAcrossPresentations: a stream that ends and starts again
// counts on, so segment and init URLs never name two different files.
func TestNumberingAcrossPresentations(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	h.publish(result("cam", "s1", 0, at(0), 2))
	if err := h.p.End("cam", "s1", 1); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(DefaultGrace)
	if err := h.p.Start("cam", "s2", StartOptions{FirstSourceSeq: 7}); err != nil {
		t.Fatal(err)
	}
	if w := h.get(http.MethodGet, "/live/cam/index.m3u8"); w.Code != http.StatusNotFound {
		t.Errorf("a new presentation with nothing published: %d", w.Code)
	}
	h.publish(result("cam", "s2", 7, 0, 1))
	pl, _ := h.playlist("cam", "240p")
	if !slices.Equal(pl.uris, []string{"00000002.m4s"}) || !slices.Equal(pl.maps, []string{"init-00000002.mp4"}) || len(pl.discBefore) != 0 {
		t.Fatalf("playlist %v maps %v\n%s", pl.uris, pl.maps, pl.raw)
	}
	if n, _ := h.p.NextSeq("cam"); n != 3 {
		t.Errorf("next seq %d", n)
	}
	if w := h.get(http.MethodGet, "/live/cam/240p/00000000.m4s"); w.Code != http.StatusNotFound {
		t.Errorf("a segment of the previous presentation: %d", w.Code)
	}

	// A restarted coordinator is told where to count from.
	h2 := newHarness(t, nil)
	if err := h2.p.Start("cam", "s3", StartOptions{FirstSeq: 500}); err != nil {
		t.Fatal(err)
	}
	h2.publish(result("cam", "s3", 0, 0, 1))
	if pl, _ := h2.playlist("cam", "240p"); !slices.Equal(pl.uris, []string{"00000500.m4s"}) || pl.seq != 500 {
		t.Errorf("playlist %v", pl.uris)
	}
}

// TestRefusals: what the packager ignores or refuses, and why.
func TestRefusals(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	h.publish(result("cam", "s1", 0, at(0), 1))
	h.publish(result("cam", "s1", 2, at(2), 1))
	missingAudio := result("cam", "s1", 1, at(1), 1)
	missingAudio.Renditions = missingAudio.Renditions[:1]
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"duplicate of a published segment", func() error { return h.p.Publish(result("cam", "s1", 0, at(0), 1)) }, ErrStale},
		{"duplicate of a held segment", func() error { return h.p.Publish(result("cam", "s1", 2, at(2), 1)) }, ErrStale},
		{"gap of a published segment", func() error { return h.p.Gap("cam", "s1", 0) }, ErrStale},
		{"unknown stream", func() error { return h.p.Publish(result("nope", "s1", 1, at(1), 1)) }, ErrUnknownStream},
		{"unknown session", func() error { return h.p.Publish(result("cam", "s9", 1, at(1), 1)) }, ErrUnknownSession},
		{"end of an unknown session", func() error { return h.p.End("cam", "s9", 1) }, ErrUnknownSession},
		{"resume of a live stream", func() error { return h.p.Resume("cam") }, nil},
		{"bad name", func() error { return h.p.Start("../x", "s1", StartOptions{}) }, errAny},
		{"rendition missing", func() error { return h.p.Publish(missingAudio) }, ErrBadResult},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if tt.want == errAny && err == nil || tt.want != errAny && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	// The result missing a rendition became a gap: segment 2 follows.
	pl, _ := h.playlist("cam", "240p")
	if len(pl.uris) != 2 || !slices.Equal(pl.discBefore, []string{"00000001.m4s"}) {
		t.Errorf("playlist %v discontinuities before %v", pl.uris, pl.discBefore)
	}
}

var errAny = errors.New("any error")

// TestStoreFailure: a segment whose media cannot be stored is skipped as
// a gap and the stream goes on.
func TestStoreFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.store.failPut = func(key string) error {
		if strings.HasSuffix(key, "/aac/00000001.m4s") {
			return errors.New("disk full")
		}
		return nil
	}
	h.start("cam", "s1")
	h.publish(result("cam", "s1", 0, at(0), 1))
	if err := h.p.Publish(result("cam", "s1", 1, at(1), 1)); !errors.Is(err, ErrStore) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("publish with a failing store: %v", err)
	}
	h.store.failPut = nil
	h.publish(result("cam", "s1", 2, at(2), 1))
	pl, _ := h.playlist("cam", "240p")
	if len(pl.uris) != 2 || !slices.Equal(pl.discBefore, []string{"00000001.m4s"}) {
		t.Fatalf("playlist %v discontinuities before %v", pl.uris, pl.discBefore)
	}
	if got, _ := h.store.object("live/cam/s1/240p/00000001.m4s"); got != "s1/2/240p/0" {
		t.Errorf("segment 1 holds %q", got)
	}
	if m := h.p.Metrics(); m.StoreErrors != 1 || m.Gaps != 1 {
		t.Errorf("metrics %+v", m)
	}
}

// TestDeliver feeds results as workers report them: media in the store
// under the worker's keys, init by key and hash.
func TestDeliver(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	deliver := func(k uint64, status queue.Status) {
		t.Helper()
		r := queue.Result{Stream: "cam", Session: "s1", Seq: k, Status: status, TaskID: queue.TaskID("cam", "s1", k)}
		if status == queue.StatusDone {
			for _, rd := range []struct {
				name, kind string
				init       []byte
				ts         uint32
			}{{"240p", "video", init240p, videoTS}, {"aac", "audio", initAAC, audioTS}} {
				res := result("cam", "s1", k, at(k), 1)
				initKey := queue.InitKey("cam", "s1", rd.name, "0123456789abcdef")
				if err := h.store.Put(t.Context(), initKey, rd.init, ""); err != nil {
					t.Fatal(err)
				}
				segKey := queue.SegmentKey("cam", "s1", rd.name, k, 0)
				if err := h.store.Put(t.Context(), segKey, []byte(fmt.Sprintf("w/%d/%s", k, rd.name)), ""); err != nil {
					t.Fatal(err)
				}
				seg := res.Renditions[0].Segments[0]
				if rd.kind == "audio" {
					seg = res.Renditions[1].Segments[0]
				}
				r.Renditions = append(r.Renditions, queue.RenditionResult{
					Name: rd.name, Kind: rd.kind, InitKey: initKey, Timescale: rd.ts,
					Segments: []queue.SegmentRef{{Key: segKey, Start: seg.Start, Duration: seg.Duration, Timescale: rd.ts}},
				})
			}
		}
		if err := h.p.Deliver(r); err != nil {
			t.Fatalf("deliver %d: %v", k, err)
		}
	}
	deliver(1, queue.StatusDone)
	deliver(0, queue.StatusDone)
	deliver(2, queue.StatusQuarantined)
	deliver(3, queue.StatusDone)
	pl, _ := h.playlist("cam", "240p")
	if len(pl.uris) != 3 || !slices.Equal(pl.discBefore, []string{"00000002.m4s"}) {
		t.Fatalf("playlist %v discontinuities before %v", pl.uris, pl.discBefore)
	}
	if got, _ := h.store.object("live/cam/s1/aac/00000002.m4s"); got != "w/3/aac" {
		t.Errorf("segment 2 holds %q", got)
	}
	if got, _ := h.store.object("live/cam/s1/240p/init.mp4"); got != string(init240p) {
		t.Error("init segment not copied to the session folder")
	}
	// The codec string came from the init segment itself.
	if w := h.get(http.MethodGet, "/live/cam/index.m3u8"); !strings.Contains(w.Body.String(), `CODECS="avc1.42c00d,mp4a.40.2"`) {
		t.Errorf("master:\n%s", w.Body)
	}
}

// TestAvailabilityStart: availabilityStartTime is the clock at the first
// publish less the media time of the end of that segment, and stays.
func TestAvailabilityStart(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	h.publish(result("cam", "s1", 0, 100*time.Second, 1))
	want := epoch.Add(-102 * time.Second).Format("2006-01-02T15:04:05.000Z")
	if got := h.mpd("cam").AvailabilityStartTime; got != want {
		t.Fatalf("availabilityStartTime %s, want %s", got, want)
	}
	h.clock.Advance(3 * time.Second)
	h.publish(result("cam", "s1", 1, 102*time.Second, 1))
	if got := h.mpd("cam").AvailabilityStartTime; got != want {
		t.Errorf("availabilityStartTime moved to %s", got)
	}
	if pl, _ := h.playlist("cam", "240p"); !strings.Contains(pl.raw, "#EXT-X-PROGRAM-DATE-TIME:"+epoch.Add(-2*time.Second).Format("2006-01-02T15:04:05.000Z07:00")) {
		t.Errorf("program date time:\n%s", pl.raw)
	}
}

// TestTimelineRewind: a reconnect whose media time goes back is still
// published, and counted.
func TestTimelineRewind(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	h.publish(result("cam", "s1", 0, at(5), 1))
	if err := h.p.End("cam", "s1", 1); err != nil {
		t.Fatal(err)
	}
	h.start("cam", "s2")
	h.publish(result("cam", "s2", 0, 0, 1))
	pl, _ := h.playlist("cam", "240p")
	if len(pl.uris) != 2 || len(pl.discBefore) != 1 {
		t.Fatalf("playlist %v", pl.uris)
	}
	if m := h.p.Metrics(); m.TimelineRewinds != 1 {
		t.Errorf("metrics %+v", m)
	}
	// A few milliseconds of audio overlap are smoothed over, not a rewind.
	r := result("cam", "s2", 1, at(1), 1)
	r.Renditions[1].Segments[0].Start -= 256
	h.publish(r)
	if m := h.p.Metrics(); m.TimelineRewinds != 1 || m.Discontinuities != 1 {
		t.Errorf("metrics %+v", m)
	}
	h.mpd("cam") // renders
}

// TestConfig checks defaults and refusals.
func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // error substring; empty for none
	}{
		{"defaults", Config{Store: newMemStore()}, ""},
		{"no store", Config{}, "'store'"},
		{"negative grace", Config{Store: newMemStore(), Grace: -time.Second}, "'grace'"},
		{"huge window", Config{Store: newMemStore(), Window: 5000}, "'window'"},
		{"long target", Config{Store: newMemStore(), TargetDuration: time.Hour}, "'target_duration'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p.cfg.Window != DefaultWindow || p.cfg.Grace != DefaultGrace || p.cfg.TargetDuration != DefaultTargetDuration {
					t.Errorf("defaults %+v", p.cfg)
				}
				_ = p.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// TestWallClockTimers runs the grace and linger timers on the real clock
// and closes with a timer pending: no goroutine outlives Close.
func TestWallClockTimers(t *testing.T) {
	loadInits(t)
	st := newMemStore()
	p, err := New(Config{Store: st, Grace: 20 * time.Millisecond, Linger: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if err := p.Start(name, "s1", StartOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(result(name, "s1", 0, 0, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.End("a", "s1", 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.view("a") != nil {
		if time.Now().After(deadline) {
			t.Fatal("stream a never ended and went")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.End("b", "s1", 1); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.object("live/b/s1/vod.m3u8"); !ok {
		t.Error("Close left stream b without a VOD playlist")
	}
	if err := p.Start("c", "s1", StartOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("start after close: %v", err)
	}
}

// TestReconnectOrder: segments of the old session still being transcoded
// when the new one starts are published first; a new publisher that
// takes over a live stream ends the old session where it stood.
func TestReconnectOrder(t *testing.T) {
	t.Run("old session outstanding", func(t *testing.T) {
		h := newHarness(t, nil)
		h.start("cam", "s1")
		h.publish(result("cam", "s1", 0, at(0), 1))
		if err := h.p.End("cam", "s1", 2); err != nil {
			t.Fatal(err)
		}
		h.start("cam", "s2")
		h.publish(result("cam", "s2", 0, at(2), 1))
		if pl, _ := h.playlist("cam", "240p"); len(pl.uris) != 1 {
			t.Fatalf("new session published before the old one's last segment: %v", pl.uris)
		}
		h.publish(result("cam", "s1", 1, at(1), 1))
		pl, _ := h.playlist("cam", "240p")
		if len(pl.uris) != 3 || !slices.Equal(pl.discBefore, []string{"00000002.m4s"}) {
			t.Fatalf("playlist %v discontinuities before %v", pl.uris, pl.discBefore)
		}
		for seq, want := range []string{"live/cam/s1/240p/00000000.m4s", "live/cam/s1/240p/00000001.m4s", "live/cam/s2/240p/00000002.m4s"} {
			if _, ok := h.store.object(want); !ok {
				t.Errorf("segment %d is not at %s", seq, want)
			}
		}
	})
	t.Run("new publisher takes over", func(t *testing.T) {
		h := newHarness(t, nil)
		h.start("cam", "s1")
		h.publish(result("cam", "s1", 0, at(0), 1))
		h.publish(result("cam", "s1", 2, at(2), 1)) // held: 1 is missing
		h.start("cam", "s2")
		h.publish(result("cam", "s2", 0, at(3), 1))
		h.publish(result("cam", "s1", 1, at(1), 1))
		pl, _ := h.playlist("cam", "240p")
		if len(pl.uris) != 4 || !slices.Equal(pl.discBefore, []string{"00000003.m4s"}) {
			t.Fatalf("playlist %v discontinuities before %v", pl.uris, pl.discBefore)
		}
		if err := h.p.Publish(result("cam", "s1", 3, at(3), 1)); !errors.Is(err, ErrStale) {
			t.Errorf("a result of the replaced session beyond its end: %v", err)
		}
	})
}

// TestConcurrentPublish publishes from several goroutines in a scrambled
// order while viewers read playlists and segments.
func TestConcurrentPublish(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	const n = 24
	order := make([]uint64, n)
	for i := range order {
		order[i] = uint64((i*7 + 3) % n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				k := order[i]
				if err := h.p.Publish(result("cam", "s1", k, at(k), 1)); err != nil {
					errs <- err
				}
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, path := range []string{"/live/cam/index.m3u8", "/live/cam/240p/index.m3u8", "/live/cam/index.mpd", "/live/cam/aac/00000000.m4s"} {
				w := httptest.NewRecorder()
				h.origin.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
				if w.Code != http.StatusOK && w.Code != http.StatusNotFound {
					errs <- fmt.Errorf("%s: %d", path, w.Code)
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := h.p.Metrics(); m.SegmentsPublished != n || m.Gaps != 0 {
		t.Fatalf("metrics %+v", m)
	}
	for k := range uint64(n) {
		if got, _ := h.store.object("live/cam/s1/240p/" + manifest.SegmentName(k)); got != fmt.Sprintf("s1/%d/240p/0", k) {
			t.Errorf("segment %d holds %q", k, got)
		}
	}
}
