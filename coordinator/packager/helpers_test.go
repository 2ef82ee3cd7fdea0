package packager

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/internal/media"
	"github.com/livegrid/livegrid/internal/store/fsstore"
	"github.com/livegrid/livegrid/internal/store/object"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	_ objectStore  = (*fsstore.Store)(nil)
	_ objectReader = (*fsstore.Store)(nil)
	_ objectStore  = (*memStore)(nil)
)

// fakeClock runs timers only when the test advances it, in the test's
// goroutine.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c             *fakeClock
	at            time.Time
	f             func()
	stopped, done bool
}

func newFakeClock(now time.Time) *fakeClock { return &fakeClock{now: now} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped && !t.done
	t.stopped = true
	return was
}

// Advance moves the clock on by d, running due timers in time order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.stopped && !t.done && !t.at.After(target) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = target
			c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool { return t.stopped || t.done })
			c.mu.Unlock()
			return
		}
		if next.at.After(c.now) {
			c.now = next.at
		}
		next.done = true
		c.mu.Unlock()
		next.f()
	}
}

// memStore is an in-memory object store; failPut, when set, can refuse
// a Put.
type memStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	types   map[string]string
	failPut func(key string) error
}

func newMemStore() *memStore {
	return &memStore{objects: map[string][]byte{}, types: map[string]string{}}
}

func (s *memStore) Put(_ context.Context, key string, data []byte, contentType string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPut != nil {
		if err := s.failPut(key); err != nil {
			return err
		}
	}
	s.objects[key] = slices.Clone(data)
	s.types[key] = contentType
	return nil
}

func (s *memStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[key]
	if !ok {
		return nil, fmt.Errorf("memstore: get %q: %w", key, object.ErrNotFound)
	}
	return b, nil
}

func (s *memStore) object(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[key]
	return string(b), ok
}

// Test media: a 240p video rendition and an AAC one whose init segments
// ffmpeg made; their timescales are 15360 and 48000.
const (
	videoTS = 15360
	audioTS = 48000
)

var (
	initOnce                    sync.Once
	init240p, init120p, initAAC []byte
)

func loadInits(t testing.TB) {
	t.Helper()
	initOnce.Do(func() {
		read := func(name string) []byte {
			b, err := os.ReadFile("testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		init240p, init120p, initAAC = read("init-240p.mp4"), read("init-120p.mp4"), read("init-aac.mp4")
	})
}

// harness is a Packager on a fake clock and a memory store, with an
// Origin to read it back through.
type harness struct {
	t      *testing.T
	clock  *fakeClock
	store  *memStore
	p      *Packager
	origin *Origin
}

var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, tune func(*Config)) *harness {
	t.Helper()
	loadInits(t)
	h := &harness{t: t, clock: newFakeClock(epoch), store: newMemStore()}
	cfg := Config{Store: h.store, Clock: h.clock}
	if tune != nil {
		tune(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	h.p = p
	h.origin = &Origin{Packager: p, Store: h.store}
	return h
}

// result makes the result of source segment k of a session: video and
// audio, parts output segments of 2 s each from start.
func result(stream, session string, k uint64, start time.Duration, parts int) Result {
	r := Result{Stream: stream, Session: session, Seq: k}
	for _, rd := range []struct {
		name, kind string
		init       []byte
		ts         uint32
		bitrate    int64
	}{
		{"240p", "video", init240p, videoTS, 400_000},
		{"aac", "audio", initAAC, audioTS, 64_000},
	} {
		o := Output{Rendition: media.Rendition{Name: rd.name, Kind: rd.kind, Bitrate: rd.bitrate, Timescale: rd.ts, Init: rd.init}}
		for j := range parts {
			s := start + time.Duration(j)*2*time.Second
			o.Segments = append(o.Segments, Segment{Segment: media.Segment{
				Start: uint64(s) * uint64(rd.ts) / uint64(time.Second), Duration: 2 * uint64(rd.ts), Timescale: rd.ts,
				Data: []byte(fmt.Sprintf("%s/%d/%s/%d", session, k, rd.name, j)),
			}})
		}
		r.Renditions = append(r.Renditions, o)
	}
	return r
}

// at is the start of source segment k when every segment is 2 s.
func at(k uint64) time.Duration { return time.Duration(k) * 2 * time.Second }

func (h *harness) start(stream, session string) {
	h.t.Helper()
	if err := h.p.Start(stream, session, StartOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) publish(r Result) {
	h.t.Helper()
	if err := h.p.Publish(r); err != nil {
		h.t.Fatalf("publish %s/%d: %v", r.Session, r.Seq, err)
	}
}

// get requests a path from the origin.
func (h *harness) get(method, path string) *httptest.ResponseRecorder {
	h.t.Helper()
	w := httptest.NewRecorder()
	h.origin.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

// playlist fetches and parses a media playlist; ok is false on 404.
func (h *harness) playlist(stream, rendition string) (hlsMedia, bool) {
	h.t.Helper()
	w := h.get(http.MethodGet, "/live/"+stream+"/"+rendition+"/index.m3u8")
	if w.Code == http.StatusNotFound {
		return hlsMedia{}, false
	}
	if w.Code != http.StatusOK {
		h.t.Fatalf("media playlist: %d %s", w.Code, w.Body)
	}
	return parseHLSMedia(h.t, w.Body.String()), true
}

func (h *harness) mpd(stream string) mpdDoc {
	h.t.Helper()
	w := h.get(http.MethodGet, "/live/"+stream+"/index.mpd")
	if w.Code != http.StatusOK {
		h.t.Fatalf("MPD: %d %s", w.Code, w.Body)
	}
	var m mpdDoc
	if err := xml.Unmarshal(w.Body.Bytes(), &m); err != nil {
		h.t.Fatalf("MPD: %v\n%s", err, w.Body)
	}
	return m
}

// hlsMedia is what the tests read from a media playlist.
type hlsMedia struct {
	target, seq, discSeq int
	uris                 []string // segment URIs in order
	discBefore           []string // URIs of segments after EXT-X-DISCONTINUITY
	maps                 []string // EXT-X-MAP URIs in order
	ended, vod           bool
	raw                  string
}

func parseHLSMedia(t testing.TB, body string) hlsMedia {
	t.Helper()
	m := hlsMedia{raw: body}
	disc := false
	for _, l := range strings.Split(body, "\n") {
		num := func(prefix string) int {
			n, err := strconv.Atoi(strings.TrimPrefix(l, prefix))
			if err != nil {
				t.Fatalf("playlist line %q: %v", l, err)
			}
			return n
		}
		switch {
		case strings.HasPrefix(l, "#EXT-X-TARGETDURATION:"):
			m.target = num("#EXT-X-TARGETDURATION:")
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
			m.seq = num("#EXT-X-MEDIA-SEQUENCE:")
		case strings.HasPrefix(l, "#EXT-X-DISCONTINUITY-SEQUENCE:"):
			m.discSeq = num("#EXT-X-DISCONTINUITY-SEQUENCE:")
		case l == "#EXT-X-DISCONTINUITY":
			disc = true
		case strings.HasPrefix(l, "#EXT-X-MAP:URI="):
			m.maps = append(m.maps, strings.Trim(strings.TrimPrefix(l, "#EXT-X-MAP:URI="), `"`))
		case l == "#EXT-X-ENDLIST":
			m.ended = true
		case l == "#EXT-X-PLAYLIST-TYPE:VOD":
			m.vod = true
		case l != "" && !strings.HasPrefix(l, "#"):
			m.uris = append(m.uris, l)
			if disc {
				m.discBefore = append(m.discBefore, l)
				disc = false
			}
		}
	}
	return m
}

// mpdDoc is what the tests read from an MPD.
type mpdDoc struct {
	Type                  string `xml:"type,attr"`
	AvailabilityStartTime string `xml:"availabilityStartTime,attr"`
	Periods               []struct {
		ID    string `xml:"id,attr"`
		Start string `xml:"start,attr"`
		Sets  []struct {
			Reps []struct {
				ID       string `xml:"id,attr"`
				Template struct {
					Init        string `xml:"initialization,attr"`
					Media       string `xml:"media,attr"`
					StartNumber int    `xml:"startNumber,attr"`
					S           []struct {
						R int `xml:"r,attr"`
					} `xml:"SegmentTimeline>S"`
				} `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

// summary lists each period as "id@start:first+count" of its first
// representation.
func (m mpdDoc) summary() []string {
	var out []string
	for _, p := range m.Periods {
		rep := p.Sets[0].Reps[0]
		n := 0
		for _, s := range rep.Template.S {
			n += 1 + s.R
		}
		out = append(out, fmt.Sprintf("%s@%s:%d+%d", p.ID, p.Start, rep.Template.StartNumber, n))
	}
	return out
}
