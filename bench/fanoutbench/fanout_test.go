package fanoutbench

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/bench"
	"github.com/livegrid/livegrid/internal/flv"
)

// TestSummarize checks the report's arithmetic on made-up viewers.
func TestSummarize(t *testing.T) {
	t0 := time.Unix(1000, 0)
	end := t0.Add(20 * time.Second)
	snap := func(id int, bytes int64, ttfk time.Duration, held bool) viewerSnapshot {
		return viewerSnapshot{ID: id, Started: true, StartedAt: t0.Add(time.Duration(id) * time.Second), Bytes: bytes,
			Connected: held, Held: held, HasTTFK: ttfk > 0, TTFK: ttfk, LastData: end.Add(-100 * time.Millisecond)}
	}
	vs := []viewerSnapshot{
		snap(3, 3_000_000, 400*time.Millisecond, true),
		snap(0, 2_000_000, 100*time.Millisecond, true),
		snap(1, 2_500_000, 200*time.Millisecond, true),
		snap(2, 1_000_000, 0, false), // never got a keyframe, lost
	}
	vs[2].Stalls, vs[2].StallTime, vs[2].Drops = 1, 3*time.Second, 2
	vs[3].Rendition, vs[1].Rendition = "360p", "180p"
	// Viewer 0's FLV gap is still open at the end: one more stall.
	vs[1].LastData = end.Add(-2500 * time.Millisecond)
	m := measure{asked: 5, protocol: ProtocolFLV, stallGap: 2 * time.Second, start: t0, window: 10 * time.Second, end: end,
		startBytes: map[int]int64{0: 1_000_000, 1: 500_000, 2: 1_000_000, 3: 1_000_000},
		viewers:    vs, errors: map[string]int{"http_404": 2, "read": 1}, requests: 9}
	res, per := m.summarize()
	if res.Viewers != 5 || res.ViewersStarted != 4 || res.ViewersHeld != 3 || res.HeldShare != 0.6 {
		t.Errorf("viewers: %+v", res)
	}
	// Window bytes: 1 MB + 2 MB + 0 + 2 MB over 10 s.
	if res.WindowBytes != 5_000_000 || res.BandwidthBytesPerS != 500_000 || res.Bytes != 8_500_000 {
		t.Errorf("bandwidth: window %d bytes, %g B/s, total %d", res.WindowBytes, res.BandwidthBytesPerS, res.Bytes)
	}
	// Per viewer: 100k, 200k, 0, 200k B/s → min 0, nearest-rank p50 (rank 2 of 4) 100k.
	if vb := res.ViewerBandwidth; vb.Min != 0 || vb.P50 != 100_000 || vb.Max != 200_000 || vb.Mean != 125_000 {
		t.Errorf("per-viewer bandwidth %+v", vb)
	}
	// TTFK of three viewers: 0.1, 0.2, 0.4 → p50 0.2, p95 = p99 = max 0.4.
	if d := res.TTFK; d.Count != 3 || d.P50 != 0.2 || d.P95 != 0.4 || d.P99 != 0.4 || res.TTFKMinS != 0.1 || res.ViewersWithoutKeyframe != 1 {
		t.Errorf("ttfk %+v min %g without %d", d, res.TTFKMinS, res.ViewersWithoutKeyframe)
	}
	if res.Stalls != 2 || res.StalledViewers != 2 || res.StallS != 5.5 || res.Drops != 2 || res.ViewersDropped != 1 {
		t.Errorf("stalls %d (%d viewers, %gs), drops %d (%d viewers)", res.Stalls, res.StalledViewers, res.StallS, res.Drops, res.ViewersDropped)
	}
	if res.Errors != 3 || res.Requests != 9 || res.Renditions["360p"] != 1 || res.Renditions["180p"] != 1 {
		t.Errorf("errors %d %v, requests %d, renditions %v", res.Errors, res.ErrorKinds, res.Requests, res.Renditions)
	}
	if len(per) != 4 || per[0].ID != 0 || per[3].ID != 3 || per[2].TTFKS != nil || *per[1].TTFKS != 0.2 || per[3].StartS != 3 {
		t.Errorf("per-viewer results %+v", per)
	}
	// An HLS viewer overdue at the end adds the time since it fell due.
	m = measure{asked: 1, protocol: ProtocolHLS, window: time.Second, end: end,
		viewers: []viewerSnapshot{{ID: 0, Stalls: 1, StallTime: time.Second, StalledSince: end.Add(-1500 * time.Millisecond)}}}
	if res, _ := m.summarize(); res.Stalls != 1 || res.StallS != 2.5 {
		t.Errorf("HLS stall %d, %gs; want 1, 2.5s", res.Stalls, res.StallS)
	}
}

func TestEdgeProcess(t *testing.T) {
	first := bench.ProcSample{CPU: 10 * time.Second, RSSBytes: 100 << 20}
	last := bench.ProcSample{CPU: 15 * time.Second, RSSBytes: 120 << 20}
	points := []TimelinePoint{{TS: 1, EdgeRSSBytes: 500 << 20}, {TS: 5, EdgeRSSBytes: 130 << 20}, {TS: 6, EdgeRSSBytes: 110 << 20}}
	e := edgeProcess(42, first, last, nil, points, 4, 10*time.Second, 100, 50e6, baseline{cores: 0.1, length: 3 * time.Second})
	// The point at 1 s is before the window: its 500 MiB does not count.
	// Viewers cost 0.5 − 0.1 cores: 4 per 1000, and 1 per Gbit/s at 50 MB/s.
	if e.CPUCores != 0.5 || e.CPUCoresBefore != 0.1 || e.BaselineS != 3 || diff(e.CPUCoresPer1000Viewers, 4) > 1e-9 || diff(e.CPUCoresPerGbps, 1) > 1e-9 || e.RSSPeakBytes != 130<<20 || e.RSSMeanBytes != 120<<20 ||
		e.RSSBytesPerViewer != (30<<20)/100 || e.RSSBeforeBytes != 100<<20 {
		t.Errorf("edge %+v", e)
	}
	if e := edgeProcess(42, first, last, errors.New("gone"), nil, 0, time.Second, 1, 0, baseline{}); e.Error != "gone" || e.CPUCores != 0 {
		t.Errorf("edge that vanished: %+v", e)
	}
}

func TestErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{statusError{404}, "http_404"},
		{fmt.Errorf("x: %w", errEnded), "ended"},
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("x: %w", bench.ErrPlaylist), "parse"},
		{fmt.Errorf("x: %w", flv.ErrMalformed), "parse"},
		{io.ErrUnexpectedEOF, "read"},
	} {
		if got := errorKind(tc.err); got != tc.want {
			t.Errorf("errorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	_, err := http.Get("http://127.0.0.1:1/")
	if got := errorKind(err); got != "connect" {
		t.Errorf("errorKind(refused) = %q", got)
	}
}

func TestPickVariant(t *testing.T) {
	m := &bench.MasterPlaylist{Variants: []bench.Variant{{Name: "720p", Bandwidth: 3e6}, {Name: "360p", Bandwidth: 8e5}, {Name: "480p", Bandwidth: 15e5}}}
	for _, tc := range []struct {
		pick string
		id   int
		want string
	}{{PickRoundRobin, 0, "720p"}, {PickRoundRobin, 4, "360p"}, {PickLowest, 7, "360p"}, {"480p", 0, "480p"}} {
		v, err := pickVariant(m, tc.pick, tc.id)
		if err != nil || v.Name != tc.want {
			t.Errorf("pickVariant(%s, %d) = %s, %v; want %s", tc.pick, tc.id, v.Name, err, tc.want)
		}
	}
	if _, err := pickVariant(m, "1080p", 0); err == nil {
		t.Error("a missing rendition was picked")
	}
}

func TestConfigCheck(t *testing.T) {
	good := Config{URL: "http://h:1", Stream: "s", Viewers: 1, Duration: time.Second}
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
		want  string
	}{
		{"url", func(c *Config) { c.URL = "ftp://x" }, "'edge'"},
		{"stream", func(c *Config) { c.Stream = "a/b" }, "'stream'"},
		{"viewers", func(c *Config) { c.Viewers = 0 }, "'viewers'"},
		{"protocol", func(c *Config) { c.Protocol = "rtmp" }, "'protocol'"},
		{"duration", func(c *Config) { c.Duration = 0 }, "'duration'"},
		{"ramp", func(c *Config) { c.Ramp = -time.Second }, "'ramp'"},
	} {
		c := good
		tc.tweak(&c)
		if err := c.check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", tc.name, err, tc.want)
		}
	}
	c := good
	if err := c.check(); err != nil || c.Protocol != ProtocolFLV || c.StallGap != 2*time.Second || c.Rendition != PickRoundRobin {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

// flvServer streams a made-up FLV: a keyframe after keyDelay, then a tag
// every 20 ms (a keyframe every 25), with one pause of pause after 500
// ms. It counts the bytes it writes.
type flvServer struct {
	keyDelay, pause time.Duration
	written         atomic.Int64
}

func (s *flvServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/live/demo.flv" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "video/x-flv")
	cw := &countWriter{w: w, n: &s.written}
	fw, err := flv.NewWriter(cw, flv.Header{Audio: true, Video: true})
	if err != nil {
		return
	}
	rc := http.NewResponseController(w)
	send := func(t flv.Tag) bool {
		if fw.WriteTag(t) != nil || rc.Flush() != nil {
			return false
		}
		return true
	}
	audio := append([]byte{0xaf, 0x01}, make([]byte, 200)...)
	key := append([]byte{0x17, 0x01, 0, 0, 0}, make([]byte, 2000)...)
	inter := append([]byte{0x27, 0x01, 0, 0, 0}, make([]byte, 500)...)
	if !send(flv.Tag{Type: flv.TagAudio, Data: audio}) {
		return
	}
	start := time.Now()
	paused := false
	for i := 0; ; i++ {
		d := 20 * time.Millisecond
		if i == 0 {
			d = s.keyDelay
		}
		if !paused && s.pause > 0 && time.Since(start) > 500*time.Millisecond {
			d, paused = s.pause, true
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(d):
		}
		body := inter
		if i%25 == 0 {
			body = key
		}
		ts := uint32(time.Since(start).Milliseconds())
		if !send(flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: body}) || !send(flv.Tag{Type: flv.TagAudio, Timestamp: ts, Data: audio}) {
			return
		}
	}
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n.Add(int64(k))
	return k, err
}

// TestFLVViewersAgainstFake runs five FLV viewers against a fake server
// whose streams pause once for longer than the stall gap.
func TestFLVViewersAgainstFake(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := &flvServer{keyDelay: 80 * time.Millisecond, pause: 700 * time.Millisecond}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var updates []bench.ProgressUpdate
	rep, err := Run(context.Background(), Config{URL: ts.URL, Stream: "demo", Viewers: 5, Protocol: ProtocolFLV,
		Ramp: 200 * time.Millisecond, Duration: 2 * time.Second, StallGap: 300 * time.Millisecond, SampleEvery: 250 * time.Millisecond,
		Progress: func(u bench.ProgressUpdate) { updates = append(updates, u) }})
	if err != nil {
		t.Fatal(err)
	}
	res := rep.Result
	if res.ViewersHeld != 5 || res.Errors != 0 || res.Drops != 0 {
		t.Errorf("held %d, errors %v, drops %d; want 5, none, none", res.ViewersHeld, res.ErrorKinds, res.Drops)
	}
	// Every viewer saw the pause: exactly one stall each, at least as long
	// as the pause less the stall gap's slack.
	if res.Stalls != 5 || res.StalledViewers != 5 || res.StallS < 5*0.6 {
		t.Errorf("stalls %d on %d viewers, %.2fs; want 5 on 5, ≥ 3s", res.Stalls, res.StalledViewers, res.StallS)
	}
	// The first keyframe comes 80 ms after the headers.
	if d := res.TTFK; d.Count != 5 || res.TTFKMinS < 0.08 || d.P99 > 5 {
		t.Errorf("ttfk %+v, min %g; want five, from 0.08s", d, res.TTFKMinS)
	}
	// The client read at most what the server wrote, and most of it.
	if written := srv.written.Load(); res.Bytes <= 0 || res.Bytes > written || float64(res.Bytes) < 0.5*float64(written) {
		t.Errorf("read %d bytes, server wrote %d", res.Bytes, written)
	}
	sum := 0.0
	for _, v := range rep.Viewers {
		sum += v.BandwidthBytesPerS
	}
	if res.BandwidthBytesPerS <= 0 || diff(sum, res.BandwidthBytesPerS) > 1e-6*res.BandwidthBytesPerS {
		t.Errorf("aggregate %g B/s, viewers sum to %g", res.BandwidthBytesPerS, sum)
	}
	if res.WindowS < 1.9 || res.WindowStartS < 0.19 || len(rep.Timeline) < 4 {
		t.Errorf("window %gs from %gs, %d timeline points", res.WindowS, res.WindowStartS, len(rep.Timeline))
	}
	if rep.Client.MaxSampleGapS < 0.25 {
		t.Errorf("samples at most %gs apart, want at least the 0.25s step", rep.Client.MaxSampleGapS)
	}
	if len(updates) < 2 || !updates[len(updates)-1].Final {
		t.Errorf("progress updates %+v", updates)
	}
}

// hlsServer is a fake origin: a two-variant playlist with audio, one
// segment of one second listed per second (a window of four), except that
// segment 3 and later come two seconds late.
type hlsServer struct {
	t0 time.Time
}

func (s *hlsServer) listed(now time.Time) int {
	n := int(now.Sub(s.t0) / time.Second) // segments 0..n-1 are out
	if n > 3 {
		n = max(3, n-2)
	}
	return n
}

func (s *hlsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/live/demo/")
	switch {
	case p == "index.m3u8":
		io.WriteString(w, "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"audio\",DEFAULT=YES,URI=\"audio/index.m3u8\"\n"+
			"#EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO=\"a\"\nhi/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=200000,AUDIO=\"a\"\nlo/index.m3u8\n")
	case strings.HasSuffix(p, "/index.m3u8"):
		n := s.listed(time.Now())
		first := max(0, n-4)
		var b strings.Builder
		fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-MAP:URI=\"init.mp4\"\n", first)
		for k := first; k < n; k++ {
			fmt.Fprintf(&b, "#EXTINF:1.000,\n%08d.m4s\n", k)
		}
		io.WriteString(w, b.String())
	case strings.HasSuffix(p, "/init.mp4"):
		w.Write(make([]byte, 500))
	case strings.HasSuffix(p, ".m4s"):
		w.Write(make([]byte, 10000))
	default:
		http.NotFound(w, r)
	}
}

// TestHLSViewersAgainstFake runs four HLS viewers against the fake
// origin: each joins at the live edge, follows video and audio, and sees
// the late segment as one stall.
func TestHLSViewersAgainstFake(t *testing.T) {
	defer goleak.VerifyNone(t)
	ts := httptest.NewServer(&hlsServer{t0: time.Now().Add(-1500 * time.Millisecond)})
	defer ts.Close()
	rep, err := Run(context.Background(), Config{URL: ts.URL, Stream: "demo", Viewers: 4, Protocol: ProtocolHLS,
		Audio: true, Duration: 6500 * time.Millisecond, SampleEvery: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res := rep.Result
	if res.ViewersHeld != 4 || res.Errors != 0 || res.Drops != 0 {
		t.Errorf("held %d, errors %v, drops %d; want 4, none, none", res.ViewersHeld, res.ErrorKinds, res.Drops)
	}
	if res.Renditions["hi"] != 2 || res.Renditions["lo"] != 2 {
		t.Errorf("renditions %v, want two each (round robin)", res.Renditions)
	}
	// Segment 3 was listed 3 s after segment 2 instead of 1 s: one stall
	// per viewer, audio and video stalling together count once.
	if res.Stalls != 4 || res.StalledViewers != 4 {
		t.Errorf("stalls %d on %d viewers, want 4 on 4", res.Stalls, res.StalledViewers)
	}
	if d := res.TTFK; d.Count != 4 || d.P50 <= 0 || d.P99 > 5 {
		t.Errorf("ttfk %+v", d)
	}
	// Each viewer fetched whole 10000-byte segments and 500-byte inits:
	// two inits and at least four segments per track (join + 2 + the late
	// one), plus playlists.
	for _, v := range rep.Viewers {
		if v.Bytes < 2*500+8*10000 || v.SkippedSegments != 0 {
			t.Errorf("viewer %d: %d bytes, %d skipped", v.ID, v.Bytes, v.SkippedSegments)
		}
	}
	if res.Requests < 4*8 {
		t.Errorf("%d requests", res.Requests)
	}
}

// TestReportOutputs renders a report as JSON (read back), table and HTML.
func TestReportOutputs(t *testing.T) {
	ttfk := 0.25
	rep := &Report{Schema: Schema, Suite: "fanout", StartedAt: time.Unix(0, 0).UTC(), FinishedAt: time.Unix(40, 0).UTC(),
		LoadAverage: []float64{1, 2, 3},
		Config:      ReportConfig{URL: "http://edge:8080", Stream: "demo", Protocol: ProtocolHLS, Viewers: 2, DurationS: 30, RampS: 10, PID: 7, Rendition: PickLowest},
		Result: Result{Viewers: 2, ViewersStarted: 2, ViewersHeld: 2, HeldShare: 1, WindowS: 30, BandwidthBytesPerS: 250000,
			TTFK: bench.Summarize([]float64{0.25, 0.5}), TTFKMinS: 0.25, ErrorKinds: map[string]int{"http_404": 1}, Errors: 1,
			Renditions: map[string]int{"360p": 2}},
		Client:   ClientProcess{CPUCores: 0.1, MaxSampleGapS: 6.5},
		Edge:     &EdgeProcess{PID: 7, CPUCores: 0.3, RSSBeforeBytes: 100 << 20, RSSPeakBytes: 110 << 20, RSSBytesPerViewer: 5 << 20},
		Timeline: []TimelinePoint{{TS: 1, Started: 1, Held: 1, BandwidthBytesPerS: 1e5, EdgeCPUCores: 0.2, EdgeRSSBytes: 105 << 20}, {TS: 2, Started: 2, Held: 2, BandwidthBytesPerS: 2e5}},
		Viewers:  []ViewerResult{{ID: 0, TTFKS: &ttfk, Held: true}, {ID: 1, Held: true}},
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"schema": "livegrid.bench.fanout/v1"`, `"viewers_held": 2`, `"bandwidth_bytes_per_s": 250000`, `"ttfk_s": {`, `"edge_process": {`, `"rss_bytes_per_viewer"`, `"timeline": [`, `"t_s": 1`} {
		if !strings.Contains(js.String(), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	back, err := ReadReport(bytes.NewReader(js.Bytes()))
	if err != nil || back.Result.ViewersHeld != 2 || *back.Viewers[0].TTFKS != 0.25 || back.Edge.PID != 7 {
		t.Errorf("read back %+v, %v", back, err)
	}
	if _, err := ReadReport(strings.NewReader(`{"schema":"livegrid.bench.transcode/v1"}`)); !errors.Is(err, bench.ErrSchema) {
		t.Errorf("another schema: %v", err)
	}
	var tab bytes.Buffer
	if err := rep.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"VIEWERS", "2/2", "2.00 Mbit/s", "0.250s", "http_404 1", "360p 2", "server pid 7: CPU 0.30 cores", "load average 1.00 2.00 3.00", "at most 6.5s apart", "warning: the bench itself went without CPU"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	h := page.String()
	for _, want := range []string{`<svg id="ttfk"`, `<svg id="viewers"`, `<svg id="bandwidth"`, `<svg id="edge-cpu"`, `<svg id="edge-rss"`, "2 of 2 hls viewers held"} {
		if !strings.Contains(h, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	d := xml.NewDecoder(strings.NewReader(h[strings.Index(h, "<svg") : strings.Index(h, "</svg>")+6]))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("first chart is not well-formed: %v", err)
		}
	}
}

func diff(a, b float64) float64 {
	if a > b {
		return a - b
	}
	return b - a
}
