package stats

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/hub"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path   string
		stream string
		proto  Protocol
		ok     bool
	}{
		{"/live/cam.flv", "cam", FLV, true},
		{"/live/cam/720p.flv", "cam", FLV, true},
		{"/live/cam/index.m3u8", "cam", HLS, true},
		{"/live/cam/720p/index.m3u8", "cam", HLS, true},
		{"/live/cam/index.mpd", "cam", DASH, true},
		{"/live/cam/720p/00000001.m4s", "cam", "", true},
		{"/live/cam/720p/init.mp4", "cam", "", true},
		{"/live/cam/720p/x.flv", "cam", "", true},
		{"/live/cam", "", "", false},
		{"/live/.hidden.flv", "", "", false},
		{"/live/cam/../x/index.m3u8", "", "", false},
		{"/live//index.m3u8", "", "", false},
		{"/live/a/b/c/d.m4s", "", "", false},
		{"/live/bad name.flv", "", "", false},
		{"/other/cam.flv", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			s, p, ok := ParsePath("/live/", tt.path)
			if s != tt.stream || p != tt.proto || ok != tt.ok {
				t.Errorf("ParsePath = %q %q %v, want %q %q %v", s, p, ok, tt.stream, tt.proto, tt.ok)
			}
		})
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/live/a.flv", "/live/a/index.m3u8", "/live/a/b/00000001.m4s", "/live/../a.flv"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		s, p, ok := ParsePath("/live/", path)
		if !ok {
			return
		}
		if !strings.HasPrefix(path, "/live/"+s) || hub.ValidateName(s) != nil {
			t.Fatalf("%q: stream %q", path, s)
		}
		if p != "" && !slices.Contains(Protocols, p) {
			t.Fatalf("%q: protocol %q", path, p)
		}
	})
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		remote, xff, want string
	}{
		{"192.0.2.1:5000", "", "192.0.2.1"},
		{"192.0.2.1:5000", "203.0.113.9", "192.0.2.1"}, // untrusted peer: header ignored
		{"10.0.0.1:5000", "203.0.113.9", "203.0.113.9"},
		{"10.0.0.1:5000", "198.51.100.1, 203.0.113.9, 10.0.0.7", "203.0.113.9"},
		{"[::ffff:10.0.0.1]:5000", "203.0.113.9", "203.0.113.9"},
		{"[2001:db8::1]:5000", "", "2001:db8::1"},
		{"pipe", "", "pipe"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/live/a.flv", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := ClientIP(r, trusted); got != tt.want {
			t.Errorf("%s %q: %q, want %q", tt.remote, tt.xff, got, tt.want)
		}
	}
}

// TestMiddleware serves fake FLV, playlists and segments through the
// middleware over real HTTP and checks what the Tracker counted.
func TestMiddleware(t *testing.T) {
	tr := NewTracker(Config{})
	flvStarted := make(chan struct{})
	release := make(chan struct{})
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, ".flv"):
			w.Header().Set("Content-Type", "video/x-flv")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("FLV\x01\x05\x00\x00\x00\x09"))
			http.NewResponseController(w).Flush()
			close(flvStarted)
			<-release
			_, _ = w.Write(make([]byte, 1000))
		case strings.Contains(r.URL.Path, "missing"):
			http.NotFound(w, r)
		case strings.HasSuffix(r.URL.Path, ".m4s"):
			_, _ = w.Write(make([]byte, 5000))
		default:
			_, _ = w.Write([]byte("#EXTM3U\n"))
		}
	})
	srv := httptest.NewServer(tr.Middleware(origin, HTTPOptions{}))
	defer srv.Close()

	get := func(path, ua string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("User-Agent", ua)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	// An HTTP-FLV viewer, counted while its response is open.
	flvDone := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Get(srv.URL + "/live/cam.flv")
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		flvDone <- err
	}()
	select {
	case <-flvStarted:
	case <-time.After(10 * time.Second):
		t.Fatal("FLV response did not start")
	}

	get("/live/cam/index.m3u8", "hls-player")
	get("/live/cam/180p/index.m3u8", "hls-player")
	get("/live/cam/180p/00000001.m4s", "hls-player")
	get("/live/cam/index.mpd", "dash-player")
	get("/live/cam/180p/00000001.m4s", "dash-player")
	get("/live/missing/index.m3u8", "hls-player") // 404: not a stream
	get("/healthz", "probe")                      // outside the prefix

	s := mustStream(t, tr, "cam")
	if s.Viewers != 3 || s.ByProtocol != (ByProtocol{FLV: 1, HLS: 1, DASH: 1}) || s.PlaysTotal != 3 || s.VisitorsTotal != 3 {
		t.Errorf("while watching: %+v", s)
	}
	if want := int64(9 + 8*3 + 5000*2); s.BytesOut != want {
		t.Errorf("bytes_out = %d, want %d", s.BytesOut, want)
	}
	if !slices.Equal(s.ClientIPs, []string{"127.0.0.1"}) {
		t.Errorf("client_ips = %v", s.ClientIPs)
	}
	if _, ok := tr.Stream("missing"); ok {
		t.Error("a 404 stream is tracked")
	}

	close(release)
	if err := <-flvDone; err != nil {
		t.Fatal(err)
	}
	// The handler has returned once the client read the whole body.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s = mustStream(t, tr, "cam")
		if s.ByProtocol.FLV == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FLV viewer still counted: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.BytesOut != int64(9+1000+8*3+5000*2) || s.Viewers != 2 {
		t.Errorf("after the FLV viewer left: %+v", s)
	}
}
