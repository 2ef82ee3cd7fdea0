//go:build cgo

package coordinator_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/internal/testmedia"
)

// apiStream is what GET /api/v1/streams/{stream} answers.
type apiStream struct {
	Stream        string    `json:"stream"`
	StartTime     time.Time `json:"start_time"`
	DurationS     float64   `json:"duration_s"`
	Viewers       int       `json:"viewers"`
	VisitorsTotal int64     `json:"visitors_total"`
	PlaysTotal    int64     `json:"plays_total"`
	BytesOut      int64     `json:"bytes_out"`
	BandwidthBps  int64     `json:"bandwidth_bps"`
	ByProtocol    struct {
		FLV  int `json:"flv"`
		RTMP int `json:"rtmp"`
		HLS  int `json:"hls"`
		DASH int `json:"dash"`
	} `json:"by_protocol"`
	ClientIPs []string `json:"client_ips"`
	Live      bool     `json:"live"`
	Ladder    string   `json:"ladder"`
	Publisher *struct {
		RemoteAddr string `json:"remote_addr"`
		BytesIn    uint64 `json:"bytes_in"`
		Video      bool   `json:"video"`
	} `json:"publisher"`
}

// apiGet does one API request and decodes its JSON answer into v (nil:
// only the status and body are returned).
func apiGet(t *testing.T, method, url string, v any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, url, err, body)
		}
	}
	return resp.StatusCode, string(body)
}

// fetchAs GETs url as a player with that User-Agent; it returns the
// status and body.
func fetchAs(t *testing.T, ua, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", ua)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStreamsAPI publishes a stream, watches it over HTTP-FLV and as an
// HLS and a DASH client, and reads the viewers back from the management
// API and /metrics.
func TestStreamsAPI(t *testing.T) {
	testmedia.Require(t, "ffmpeg")
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) }) // after the node's cleanup
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 40, Format: "flv"})
	n := startNode(t, fastLadder, nil)
	api := n.base + "/api/v1/streams"

	var list struct {
		Streams []apiStream `json:"streams"`
	}
	if code, body := apiGet(t, http.MethodGet, api, &list); code != http.StatusOK || list.Streams == nil || len(list.Streams) != 0 {
		t.Fatalf("before publishing: %d %s", code, body)
	}

	published := time.Now()
	n.publish(t, clip, "apitest")

	// An HTTP-FLV viewer, reading until the test stops it.
	flvCtx, stopFLV := context.WithCancel(context.Background())
	defer stopFLV()
	flvStarted, flvDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flvDone)
		for first := true; flvCtx.Err() == nil; time.Sleep(100 * time.Millisecond) {
			req, _ := http.NewRequestWithContext(flvCtx, http.MethodGet, n.base+"/live/apitest.flv", nil)
			req.Header.Set("User-Agent", "flv-viewer")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			head := make([]byte, 3)
			if _, err := io.ReadFull(resp.Body, head); err == nil && string(head) == "FLV" {
				if first {
					close(flvStarted)
					first = false
				}
				_, _ = io.Copy(io.Discard, resp.Body) // until stopFLV
			}
			resp.Body.Close()
		}
	}()
	defer func() { stopFLV(); <-flvDone }()
	select {
	case <-flvStarted:
	case <-time.After(20 * time.Second):
		t.Fatal("no HTTP-FLV in 20 s")
	}

	// An HLS client plays the master, a media playlist and a segment; a
	// DASH client the MPD and the same CMAF segment.
	var segment string
	deadline := time.Now().Add(60 * time.Second)
	for segment == "" {
		code, master := fetchAs(t, "hls-client", n.base+"/live/apitest/index.m3u8")
		if code == http.StatusOK {
			for _, u := range mediaPlaylistURLs(n.base+"/live/apitest/", master) {
				if c, body := fetchAs(t, "hls-client", u); c == http.StatusOK {
					if mp := parseMedia(t, body); len(mp.segs) > 0 {
						segment = u[:strings.LastIndex(u, "/")+1] + mp.segs[len(mp.segs)-1].uri
						break
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HLS segment in 60 s; master %d:\n%s", code, master)
		}
		time.Sleep(200 * time.Millisecond)
	}
	play := func() {
		t.Helper()
		for _, f := range []struct{ ua, url string }{
			{"hls-client", n.base + "/live/apitest/index.m3u8"},
			{"hls-client", segment},
			{"dash-client", n.base + "/live/apitest/index.mpd"},
			{"dash-client", segment},
		} {
			if code, body := fetchAs(t, f.ua, f.url); code != http.StatusOK {
				t.Fatalf("%s GET %s: %d %s", f.ua, f.url, code, body)
			}
		}
	}

	check := func(s apiStream) []string {
		var bad []string
		fail := func(msg string) { bad = append(bad, msg) }
		if s.Stream != "apitest" || !s.Live || s.Publisher == nil || s.Publisher.BytesIn == 0 || !s.Publisher.Video {
			fail("not a live stream with its publisher")
		}
		if !strings.HasSuffix(s.Ladder, "ladder.yaml") {
			fail("ladder " + s.Ladder)
		}
		if s.Viewers != 3 || s.ByProtocol.FLV != 1 || s.ByProtocol.HLS != 1 || s.ByProtocol.DASH != 1 || s.ByProtocol.RTMP != 0 {
			fail("viewers")
		}
		if s.PlaysTotal != 3 || s.VisitorsTotal != 3 {
			fail("plays or visitors")
		}
		if s.BytesOut <= 0 || s.BandwidthBps <= 0 {
			fail("bytes")
		}
		if !slices.Equal(s.ClientIPs, []string{"127.0.0.1"}) {
			fail("client_ips")
		}
		if s.StartTime.Before(published.Add(-time.Second)) || s.StartTime.After(time.Now()) || s.DurationS <= 0 {
			fail("start or duration")
		}
		return bad
	}
	// The HLS and DASH clients count for 10 s after their last request;
	// on a loaded machine a check may come later, so play and check again.
	var last apiStream
	var bad []string
	for try := 0; try < 5; try++ {
		play()
		list.Streams = nil
		code, body := apiGet(t, http.MethodGet, api, &list)
		if code != http.StatusOK || len(list.Streams) != 1 {
			t.Fatalf("GET %s: %d %s", api, code, body)
		}
		last = list.Streams[0]
		if bad = check(last); len(bad) == 0 {
			t.Logf("GET /api/v1/streams: %s", body)
			break
		}
	}
	if len(bad) > 0 {
		t.Fatalf("stream %+v: %v", last, bad)
	}

	// One stream, and the errors.
	var one apiStream
	if code, body := apiGet(t, http.MethodGet, api+"/apitest", &one); code != http.StatusOK || one.Stream != "apitest" || one.ByProtocol.FLV != 1 || one.BytesOut < last.BytesOut {
		t.Errorf("GET one stream: %d %s", code, body)
	}
	var apiErr struct {
		Error string `json:"error"`
	}
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/api/v1/streams/nope", http.StatusNotFound},
		{http.MethodGet, "/api/v1/nothing", http.StatusNotFound},
		{http.MethodGet, "/api/v1/streams/apitest/more", http.StatusNotFound},
		{http.MethodPost, "/api/v1/streams", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/api/v1/streams/apitest", http.StatusMethodNotAllowed},
	} {
		apiErr.Error = ""
		if code, body := apiGet(t, c.method, n.base+c.path, &apiErr); code != c.code || apiErr.Error == "" {
			t.Errorf("%s %s: %d %s, want %d with an error", c.method, c.path, code, body, c.code)
		}
	}

	// Prometheus: the node's own viewers.
	_, metrics := get(t, n.base+"/metrics")
	if !strings.Contains(metrics, `livegrid_viewers{protocol="flv",stream="apitest"} 1`) ||
		!strings.Contains(metrics, `livegrid_viewer_plays_total{stream="apitest"}`) {
		t.Errorf("/metrics has no viewers of apitest:\n%s", grepLines(metrics, "livegrid_viewer"))
	}

	// The FLV viewer leaves.
	stopFLV()
	<-flvDone
	deadline = time.Now().Add(15 * time.Second)
	for {
		one = apiStream{}
		apiGet(t, http.MethodGet, api+"/apitest", &one)
		if one.ByProtocol.FLV == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FLV viewer still counted after leaving: %+v", one)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if one.PlaysTotal < 3 || one.BytesOut < last.BytesOut {
		t.Errorf("totals went down: %+v", one)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
