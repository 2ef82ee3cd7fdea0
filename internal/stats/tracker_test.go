package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable clock for the Tracker.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustStream(t *testing.T, tr *Tracker, name string) StreamStats {
	t.Helper()
	s, ok := tr.Stream(name)
	if !ok {
		t.Fatalf("stream %q not tracked; have %+v", name, tr.Snapshot())
	}
	return s
}

func TestSessions(t *testing.T) {
	c := newClock()
	tr := NewTracker(Config{Now: c.now})
	a := tr.Open("cam", FLV, "10.0.0.2")
	b := tr.Open("cam", FLV, "10.0.0.1")
	r := tr.Open("cam", RTMP, "10.0.0.2")
	a.Add(1000)
	b.Add(500)
	r.Add(250)
	r.Add(-5) // ignored

	s := mustStream(t, tr, "cam")
	want := ByProtocol{FLV: 2, RTMP: 1}
	if s.Viewers != 3 || s.ByProtocol != want || s.PlaysTotal != 3 || s.BytesOut != 1750 {
		t.Fatalf("stats = %+v", s)
	}
	// Visitors are clients: the RTMP viewer shares an address with a.
	if s.VisitorsTotal != 2 {
		t.Errorf("visitors = %d, want 2", s.VisitorsTotal)
	}
	if !slices.Equal(s.ClientIPs, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Errorf("client_ips = %v", s.ClientIPs)
	}
	if a.Bytes() != 1000 {
		t.Errorf("session bytes = %d", a.Bytes())
	}

	a.Close()
	a.Close() // idempotent
	a.Add(1 << 20)
	c.advance(time.Minute)
	s = mustStream(t, tr, "cam")
	if s.Viewers != 2 || s.ByProtocol != (ByProtocol{FLV: 1, RTMP: 1}) || s.BytesOut != 1750 || s.PlaysTotal != 3 {
		t.Fatalf("after close: %+v", s)
	}
	if s.DurationS != 60 || !s.StartTime.Equal(c.now().Add(-time.Minute)) {
		t.Errorf("start %v duration %v", s.StartTime, s.DurationS)
	}
	b.Close()
	r.Close()
	if s = mustStream(t, tr, "cam"); s.Viewers != 0 || s.ClientIPs == nil || len(s.ClientIPs) != 0 {
		t.Fatalf("all closed: %+v", s)
	}

	var nilSession *Session
	nilSession.Add(1)
	nilSession.Close()
}

// TestHTTPWindow plays HLS and DASH clients' requests at set times and
// checks viewers, plays and protocols after each.
func TestHTTPWindow(t *testing.T) {
	type req struct {
		at      time.Duration // since the start
		proto   Protocol
		ip, ua  string
		session string
		bytes   int64
	}
	type want struct {
		viewers, plays, visitors int
		by                       ByProtocol
	}
	tests := []struct {
		name string
		reqs []req
		at   time.Duration // when to look
		want want
	}{{
		name: "one client polling is one viewer",
		reqs: []req{{0, HLS, "1.1.1.1", "ua", "", 100}, {2 * time.Second, HLS, "1.1.1.1", "ua", "", 100}, {4 * time.Second, "", "1.1.1.1", "ua", "", 1000}},
		at:   10 * time.Second,
		want: want{1, 1, 1, ByProtocol{HLS: 1}},
	}, {
		name: "a client is a viewer until the window has passed",
		reqs: []req{{0, HLS, "1.1.1.1", "ua", "", 100}},
		at:   10*time.Second + time.Millisecond,
		want: want{0, 1, 1, ByProtocol{}},
	}, {
		name: "a client coming back after the window is a new play, not a new visitor",
		reqs: []req{{0, HLS, "1.1.1.1", "ua", "", 100}, {30 * time.Second, HLS, "1.1.1.1", "ua", "", 100}},
		at:   31 * time.Second,
		want: want{1, 2, 1, ByProtocol{HLS: 1}},
	}, {
		name: "segments count for the client's last manifest",
		reqs: []req{
			{0, DASH, "1.1.1.1", "ua", "", 100}, {time.Second, "", "1.1.1.1", "ua", "", 1000},
			{0, "", "2.2.2.2", "ua", "", 1000}, // no manifest yet: HLS
			{0, HLS, "3.3.3.3", "ua", "", 100}, {time.Second, DASH, "3.3.3.3", "ua", "", 100}, {2 * time.Second, "", "3.3.3.3", "ua", "", 1000},
		},
		at:   3 * time.Second,
		want: want{3, 3, 3, ByProtocol{HLS: 1, DASH: 2}},
	}, {
		name: "user agents and sessions tell clients apart behind one address",
		reqs: []req{
			{0, HLS, "1.1.1.1", "safari", "", 1}, {0, HLS, "1.1.1.1", "chrome", "", 1},
			{0, HLS, "1.1.1.1", "chrome", "tab2", 1}, {time.Second, HLS, "1.1.1.1", "chrome", "tab2", 1},
		},
		at:   time.Second,
		want: want{3, 3, 3, ByProtocol{HLS: 3}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			start := c.now()
			tr := NewTracker(Config{Now: c.now})
			reqs := slices.Clone(tt.reqs)
			slices.SortStableFunc(reqs, func(a, b req) int { return int(a.at - b.at) })
			var bytes int64
			for _, r := range reqs {
				c.set(start.Add(r.at))
				tr.Observe("s", r.proto, Client{IP: r.ip, UserAgent: r.ua, Session: r.session}, r.bytes)
				bytes += r.bytes
			}
			c.set(start.Add(tt.at))
			s := mustStream(t, tr, "s")
			got := want{s.Viewers, int(s.PlaysTotal), int(s.VisitorsTotal), s.ByProtocol}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if s.BytesOut != bytes {
				t.Errorf("bytes_out = %d, want %d", s.BytesOut, bytes)
			}
		})
	}
}

func TestBandwidth(t *testing.T) {
	c := newClock()
	tr := NewTracker(Config{Now: c.now, BandwidthWindow: 5 * time.Second})
	s := tr.Open("s", FLV, "1.1.1.1")
	defer s.Close()
	// 1000 bytes a second; a snapshot every second, as a reporter takes.
	for i := 1; i <= 12; i++ {
		c.advance(time.Second)
		s.Add(1000)
		got := mustStream(t, tr, "s").BandwidthBps
		want := int64(8000)
		if i < 5 {
			want = int64(i) * 8000 / 5 // younger than the window: averaged over it
		}
		if got != want {
			t.Errorf("second %d: bandwidth %d bps, want %d", i, got, want)
		}
	}
	// Snapshots far apart average over the span since the last one.
	c.advance(10 * time.Second)
	s.Add(20000)
	if got := mustStream(t, tr, "s").BandwidthBps; got != 16000 {
		t.Errorf("after 10 s: %d bps, want 16000", got)
	}
	// Silence drops to zero once the window has passed.
	c.advance(3 * time.Second)
	mustStream(t, tr, "s")
	c.advance(3 * time.Second)
	if got := mustStream(t, tr, "s").BandwidthBps; got != 0 {
		t.Errorf("silent: %d bps, want 0", got)
	}
}

func TestCaps(t *testing.T) {
	t.Run("clients per stream", func(t *testing.T) {
		c := newClock()
		tr := NewTracker(Config{Now: c.now, MaxClients: 2, HTTPWindow: 10 * time.Second})
		for i := range 3 {
			tr.ObserveHTTP("s", HLS, fmt.Sprintf("10.0.0.%d", i), "ua", 100)
		}
		s := mustStream(t, tr, "s")
		if s.Viewers != 2 || s.BytesOut != 300 || s.PlaysTotal != 2 {
			t.Fatalf("over the cap: %+v", s)
		}
		// Expired clients make room.
		c.advance(11 * time.Second)
		tr.ObserveHTTP("s", HLS, "10.0.0.9", "ua", 100)
		if s := mustStream(t, tr, "s"); s.Viewers != 1 || s.PlaysTotal != 3 || !slices.Equal(s.ClientIPs, []string{"10.0.0.9"}) {
			t.Fatalf("after expiry: %+v", s)
		}
		if n := len(tr.streams["s"].clients); n != 1 {
			t.Errorf("%d clients kept, want 1", n)
		}
	})
	t.Run("streams", func(t *testing.T) {
		c := newClock()
		tr := NewTracker(Config{Now: c.now, MaxStreams: 1})
		a := tr.Open("a", FLV, "1.1.1.1")
		defer a.Close()
		b := tr.Open("b", FLV, "1.1.1.1")
		b.Add(100) // detached: counts nothing
		b.Close()
		tr.ObserveHTTP("c", HLS, "1.1.1.1", "ua", 100)
		if got := tr.Snapshot(); len(got) != 1 || got[0].Stream != "a" {
			t.Fatalf("snapshot = %+v", got)
		}
	})
	t.Run("addresses listed", func(t *testing.T) {
		tr := NewTracker(Config{MaxClientIPs: 2})
		for _, ip := range []string{"10.0.0.3", "10.0.0.1", "10.0.0.2"} {
			tr.ObserveHTTP("s", HLS, ip, "ua", 1)
		}
		if s := mustStream(t, tr, "s"); s.Viewers != 3 || !slices.Equal(s.ClientIPs, []string{"10.0.0.1", "10.0.0.2"}) {
			t.Fatalf("%+v", s)
		}
	})
}

func TestStreamLifetime(t *testing.T) {
	c := newClock()
	published := c.now().Add(-time.Hour)
	live := map[string]bool{"live": true}
	tr := NewTracker(Config{Now: c.now, StreamIdle: time.Minute, Live: func(name string) (time.Time, bool) {
		return published, live[name]
	}})
	tr.ObserveHTTP("live", HLS, "1.1.1.1", "ua", 1)
	tr.ObserveHTTP("ended", HLS, "1.1.1.1", "ua", 1)
	s := mustStream(t, tr, "live")
	if !s.StartTime.Equal(published) || s.DurationS != 3600 {
		t.Errorf("live stream: start %v duration %v", s.StartTime, s.DurationS)
	}
	if s := mustStream(t, tr, "ended"); !s.StartTime.Equal(c.now()) {
		t.Errorf("ended stream: start %v, want its first viewer", s.StartTime)
	}
	c.advance(30 * time.Second)
	if n := len(tr.Snapshot()); n != 2 {
		t.Fatalf("%d streams kept within the idle time, want 2", n)
	}
	c.advance(45 * time.Second)
	got := tr.Snapshot()
	if len(got) != 1 || got[0].Stream != "live" || got[0].PlaysTotal != 1 {
		t.Fatalf("after idle: %+v", got)
	}
	// A stream with a viewer stays however long it is idle.
	s1 := tr.Open("ended", RTMP, "1.1.1.1")
	c.advance(time.Hour)
	if _, ok := tr.Stream("ended"); !ok {
		t.Fatal("stream with an open session forgotten")
	}
	s1.Close()
	c.advance(2 * time.Minute)
	if _, ok := tr.Stream("ended"); ok {
		t.Fatal("idle stream kept")
	}
}

// TestConcurrent runs sessions and requests from many goroutines under
// the race detector and checks the byte total.
func TestConcurrent(t *testing.T) {
	tr := NewTracker(Config{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := tr.Open("s", FLV, fmt.Sprintf("10.0.0.%d", i))
			for range 1000 {
				s.Add(10)
				tr.ObserveHTTP("s", "", fmt.Sprintf("10.0.1.%d", i), "ua", 1)
			}
			_ = tr.Snapshot()
			s.Close()
		}()
	}
	wg.Wait()
	s := mustStream(t, tr, "s")
	if s.BytesOut != 8*1000*11 || s.ByProtocol != (ByProtocol{HLS: 8}) || s.PlaysTotal != 16 {
		t.Fatalf("%+v", s)
	}
}

func TestVisitors(t *testing.T) {
	hashes := func(from, n int) *visitors {
		v := &visitors{}
		for i := from; i < from+n; i++ {
			v.add(clientHash(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), "ua", ""))
		}
		return v
	}
	within := func(t *testing.T, got int64, want int) {
		t.Helper()
		if math.Abs(float64(got)-float64(want)) > 0.05*float64(want) {
			t.Errorf("count %d, want %d ± 5%%", got, want)
		}
	}
	tests := []struct {
		name      string
		a, b      *visitors
		want      int
		exactWant bool
	}{
		{"small sets are exact", hashes(0, 100), hashes(50, 100), 150, true},
		{"at the exact limit", hashes(0, exactMax), hashes(0, exactMax), exactMax, true},
		{"small into large", hashes(0, 10), hashes(0, 20000), 20000, false},
		{"large sets estimate their union", hashes(0, 60000), hashes(30000, 60000), 90000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Through JSON, as between nodes.
			var a, b visitors
			for _, x := range []struct {
				in  *visitors
				out *visitors
			}{{tt.a, &a}, {tt.b, &b}} {
				j, err := json.Marshal(x.in)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(j, x.out); err != nil {
					t.Fatal(err)
				}
				if x.out.count() != x.in.count() {
					t.Fatalf("round trip: %d, want %d", x.out.count(), x.in.count())
				}
			}
			a.merge(&b)
			if tt.exactWant {
				if got := a.count(); got != int64(tt.want) {
					t.Errorf("count %d, want %d", got, tt.want)
				}
				return
			}
			within(t, a.count(), tt.want)
		})
	}
	for _, bad := range []string{`{"hll":"AAAA"}`, `{"exact":"AAA="}`, `{"exact":"!!"}`, `[]`} {
		var v visitors
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
