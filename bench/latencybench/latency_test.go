package latencybench

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/bench"
)

// sentAt is a fake wall clock for marks: frame sent at t0 + ms.
var t0 = time.Unix(1_700_000_000, 0)

func sentAt(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// bframeMarks is 30 fps with B-frames, in decode order: I0 P3 B1 B2 P6 ...
// as x264 sends them (DTS 0, 33, 67, ...; PTS = DTS + composition time).
func bframeMarks() *marks {
	m := newMarks()
	order := []int{0, 3, 1, 2, 6, 4, 5, 9, 7, 8} // presentation index of each decoded frame
	for i, p := range order {
		dts := uint32(i * 100 / 3)
		pts := int64(p*100/3) + 67 // the composition delay of two B-frames
		m.add(frameMark{DTS: dts, PTS: pts, Key: i == 0, Sent: sentAt(int(dts))})
	}
	return m
}

func TestMarks(t *testing.T) {
	m := bframeMarks()
	if f, ok := m.dts(33); !ok || f.PTS != 167 {
		t.Errorf("dts(33) = %+v, %v; want the P frame at PTS 167", f, ok)
	}
	if _, ok := m.dts(34); ok {
		t.Error("dts(34) matched: FLV timestamps match exactly or not at all")
	}
	for _, tc := range []struct {
		ms      float64
		wantPTS int64
		ok      bool
	}{
		{67, 67, true},     // the keyframe
		{100, 100, true},   // B-frame sent third
		{110, 100, true},   // within half a frame
		{130, 133, true},   // nearer the next
		{384, 0, false},    // 17 ms past the last frame: beyond tol 16.7
		{-500, 0, false},   // before everything
		{9999, 0, false},   // after everything
		{366, 367, true},   // the last frame (PTS 9×33+67)
		{233.9, 233, true}, // fractional tfdt
	} {
		f, ok := m.nearestPTS(tc.ms, 500.0/30)
		if ok != tc.ok || (ok && f.PTS != tc.wantPTS) {
			t.Errorf("nearestPTS(%g) = %d, %v; want %d, %v", tc.ms, f.PTS, ok, tc.wantPTS, tc.ok)
		}
	}
	if f, ok := m.firstKey(); !ok || f.DTS != 0 {
		t.Errorf("firstKey = %+v, %v", f, ok)
	}
	if k := m.keyframes(1000); len(k) != 1 {
		t.Errorf("keyframes = %v", k)
	}
}

func TestCalibrator(t *testing.T) {
	first := frameMark{PTS: 67}
	var c calibrator
	c.observe(3, 1067, first, true, 16) // not segment 0: ignored
	if c.done {
		t.Fatal("calibrated on segment 3")
	}
	c.observe(0, 1067, first, true, 16)
	if !c.done || c.offsetMS != 1000 {
		t.Errorf("offset %g, want 1000", c.offsetMS)
	}
	c.observe(0, 5000, first, true, 16) // once only
	if c.offsetMS != 1000 {
		t.Errorf("recalibrated to %g", c.offsetMS)
	}
	var d calibrator
	d.observe(0, 75, first, true, 16) // 8 ms: rounding, no offset
	if !d.done || d.offsetMS != 0 {
		t.Errorf("offset %g, want 0", d.offsetMS)
	}
}

// TestSegmentMatching feeds segments to an observer: the latency is the
// download time − the send time of the frame at the segment's tfdt.
func TestSegmentMatching(t *testing.T) {
	m := newMarks()
	// Keyframes every 2 s at 30 fps, sent at their DTS; cut-off at 6 s.
	for ms := 0; ms <= 8000; ms += 2000 {
		m.add(frameMark{DTS: uint32(ms), PTS: int64(ms), Key: true, Sent: sentAt(ms)})
	}
	w := &watcher{marks: m, tolMS: 500.0 / 30, cutoffMS: 6000}
	o := &observer{protocol: ProtocolHLS, location: LocationOrigin}
	// The server's timeline runs 1400 ms ahead (an FLV timestamp base).
	w.segment(o, 0, 1400, 100, sentAt(2500), sentAt(2600))
	w.segment(o, 1, 3400, 100, sentAt(4700), sentAt(4800))
	w.segment(o, 2, 5000, 100, sentAt(6000), sentAt(6100)) // 3600 on the source: no frame
	w.segment(o, 3, 7400, 100, sentAt(8500), sentAt(8550)) // 6000: past the cut-off
	r := o.result()
	if r.TimestampOffsetMS != 1400 || r.Samples != 2 || r.Unmatched != 1 || !r.Complete {
		t.Fatalf("result %+v", r)
	}
	if s := o.samples[1]; s.Seq != 1 || s.MediaTimeS != 2 || s.LatencyS != 2.8 || s.AvailableS != 2.7 || s.Bytes != 100 {
		t.Errorf("sample %+v", s)
	}
	if r.Latency.P50 != 2.6 || r.Latency.Max != 2.8 || r.LatencyMinS != 2.6 || r.Available.P50 != 2.5 {
		t.Errorf("latency %+v min %g available %+v", r.Latency, r.LatencyMinS, r.Available)
	}

	// FLV: matched by exact DTS; a keyframe sent before the request came
	// from the GOP cache and is not a latency.
	f := &observer{protocol: ProtocolFLV, location: LocationEdge}
	req := sentAt(1000)
	w.flvKeyframe(f, 0, req, sentAt(1001))    // cached
	w.flvKeyframe(f, 2000, req, sentAt(2004)) // 4 ms
	w.flvKeyframe(f, 2001, req, sentAt(2005)) // unknown timestamp
	w.flvKeyframe(f, 4000, req, sentAt(4010)) // 10 ms
	w.flvKeyframe(f, 6000, req, sentAt(6003)) // the cut-off: complete
	r = f.result()
	if r.Samples != 2 || r.CachedKeyframes != 1 || r.Unmatched != 1 || !r.Complete || r.Latency.Max != 0.01 || r.LatencyMinS != 0.004 {
		t.Errorf("FLV result %+v", r)
	}
	if f.samples[0].Seq != -1 || f.samples[0].Location != LocationEdge {
		t.Errorf("FLV sample %+v", f.samples[0])
	}
}

func TestParseRTMP(t *testing.T) {
	for _, tc := range []struct {
		in                       string
		host, app, stream, tcURL string
	}{
		{"rtmp://origin/live", "origin:1935", "live", "", "rtmp://origin:1935/live"},
		{"rtmp://127.0.0.1:11935/live/cam1", "127.0.0.1:11935", "live", "cam1", "rtmp://127.0.0.1:11935/live"},
		{"rtmp://[::1]:1935/app/", "[::1]:1935", "app", "", "rtmp://[::1]:1935/app"},
	} {
		got, err := parseRTMP(tc.in)
		if err != nil || got.host != tc.host || got.app != tc.app || got.stream != tc.stream || got.tcURL != tc.tcURL {
			t.Errorf("parseRTMP(%q) = %+v, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"http://x/live", "rtmp:///live", "rtmp://x", "rtmp://x/a/b/c"} {
		if _, err := parseRTMP(bad); err == nil || !strings.Contains(err.Error(), "'rtmp'") {
			t.Errorf("parseRTMP(%q) err = %v", bad, err)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	c := Config{RTMP: "rtmp://h/live", HTTP: "http://h:8080/", Duration: 10 * time.Second}
	if _, err := c.check(); err != nil {
		t.Fatal(err)
	}
	if c.HTTP != "http://h:8080" || !strings.HasPrefix(c.Stream, "latency-") || c.GOP != 2*time.Second || c.FPS != 30 || c.Poll != 100*time.Millisecond {
		t.Errorf("defaults %+v", c)
	}
	for _, tc := range []struct {
		tweak func(*Config)
		want  string
	}{
		{func(c *Config) { c.HTTP = "" }, "'http'"},
		{func(c *Config) { c.Edge = "edge:8080" }, "'edge'"},
		{func(c *Config) { c.Duration = 3 * time.Second }, "'duration'"},
		{func(c *Config) { c.GOP = time.Minute }, "'gop'"},
		{func(c *Config) { c.Poll = time.Millisecond }, "'poll'"},
		{func(c *Config) { c.Stream = "a b" }, "'stream'"},
	} {
		c := Config{RTMP: "rtmp://h/live", HTTP: "http://h:8080", Duration: 10 * time.Second}
		tc.tweak(&c)
		if _, err := c.check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want one naming %s", err, tc.want)
		}
	}
}

func TestReportOutputs(t *testing.T) {
	rep := &Report{Schema: Schema, Suite: "latency", StartedAt: t0.UTC(), FinishedAt: t0.Add(time.Minute).UTC(),
		Config:  ReportConfig{RTMP: "rtmp://h:1935/live", HTTP: "http://h:8080", Edge: "http://e:8080", Stream: "lat", DurationS: 10, Width: 640, Height: 360, FPS: 30, GOPS: 2, PollS: 0.1},
		Publish: PublishInfo{VideoFrames: 300, Keyframes: 5, WallS: 10, MaxSendLagS: 0.004},
	}
	for _, p := range []string{ProtocolFLV, ProtocolHLS, ProtocolDASH} {
		o := &observer{protocol: p, location: LocationOrigin, rendition: "360p", complete: true}
		for i, l := range []float64{0.01, 2.5, 3} {
			if p != ProtocolFLV {
				l += 2
			}
			o.samples = append(o.samples, Sample{Protocol: p, Location: LocationOrigin, MediaTimeS: float64(2 * i), LatencyS: l, AvailableS: l - 0.01})
		}
		rep.Results = append(rep.Results, o.result())
		rep.Samples = append(rep.Samples, o.samples...)
	}
	rep.Results = append(rep.Results, Result{Protocol: ProtocolFLV, Location: LocationEdge, LastError: "HTTP 502", Errors: 3})
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"schema": "livegrid.bench.latency/v1"`, `"latency_s": {`, `"p95"`, `"timestamp_offset_ms"`, `"samples": [`, `"media_time_s"`, `"max_send_lag_s"`} {
		if !strings.Contains(js.String(), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	back, err := ReadReport(bytes.NewReader(js.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := back.Result(ProtocolHLS, LocationOrigin); !ok || r.Latency.P50 != 4.5 || r.Samples != 3 {
		t.Errorf("hls result read back: %+v", r)
	}
	if _, err := ReadReport(strings.NewReader(`{"schema":"x"}`)); !errors.Is(err, bench.ErrSchema) {
		t.Errorf("another schema: %v", err)
	}
	var tab bytes.Buffer
	if err := rep.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PROTOCOL", "flv p50 2.500s", "hls p50 4.500s", "edge flv no samples", "last error: HTTP 502", "5.000s"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<svg id="latency-origin-flv"`, `<svg id="latency-origin-dash"`, `<svg id="latency-edge-flv"`, `<svg id="over-time"`, "no samples"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
