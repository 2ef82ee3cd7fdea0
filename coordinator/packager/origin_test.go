package packager

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestOrigin checks status codes, content types, cache headers and CORS
// for every kind of path.
func TestOrigin(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	h.publish(result("cam", "s1", 0, at(0), 1))
	h.publish(result("cam", "s1", 1, at(1), 1))
	h.start("idle", "s1") // started, nothing published yet

	const (
		playlist  = "max-age=1"
		immutable = "public, max-age=31536000, immutable"
	)
	tests := []struct {
		method, path string
		code         int
		ctype, cache string
		body         string // when set, the body
	}{
		{"GET", "/live/cam/index.m3u8", 200, typeHLS, playlist, ""},
		{"GET", "/live/cam/index.mpd", 200, typeDASH, playlist, ""},
		{"GET", "/live/cam/240p/index.m3u8", 200, typeHLS, playlist, ""},
		{"GET", "/live/cam/aac/index.m3u8", 200, typeHLS, playlist, ""},
		{"GET", "/live/cam/240p/init.mp4", 200, "video/mp4", immutable, string(init240p)},
		{"GET", "/live/cam/aac/init.mp4", 200, "audio/mp4", immutable, string(initAAC)},
		{"GET", "/live/cam/240p/00000001.m4s", 200, "video/iso.segment", immutable, "s1/1/240p/0"},
		{"GET", "/live/cam/aac/00000000.m4s", 200, "audio/mp4", immutable, "s1/0/aac/0"},
		{"HEAD", "/live/cam/240p/00000000.m4s", 200, "video/iso.segment", immutable, ""},
		{"GET", "/live/cam/240p/index.m3u8?_HLS_msn=3&t=1", 200, typeHLS, playlist, ""},
		// Not there.
		{"GET", "/live/cam/240p/00000002.m4s", 404, "", "no-cache", ""},
		{"GET", "/live/cam/1080p/index.m3u8", 404, "", "no-cache", ""},
		{"GET", "/live/cam/1080p/00000000.m4s", 404, "", "no-cache", ""},
		{"GET", "/live/cam/240p/init-00000001.mp4", 404, "", "no-cache", ""},
		{"GET", "/live/nope/index.m3u8", 404, "", "no-cache", ""},
		{"GET", "/live/idle/index.m3u8", 404, "", "no-cache", ""},
		{"GET", "/live/cam/240p/000000001.m4s", 404, "", "no-cache", ""},
		{"GET", "/live/cam/240p/1.m4s", 404, "", "no-cache", ""},
		{"GET", "/live/cam/240p/index.mpd", 404, "", "no-cache", ""},
		{"GET", "/live/cam.flv", 404, "", "no-cache", ""},
		{"GET", "/live/cam/240p/x/00000000.m4s", 404, "", "no-cache", ""},
		{"GET", "/vod/cam/index.m3u8", 404, "", "no-cache", ""},
		// Refused.
		{"GET", "/live/../cam/index.m3u8", 400, "", "no-cache", ""},
		{"GET", "/live/cam/../../etc/passwd", 400, "", "no-cache", ""},
		{"GET", "/live/cam/%2e%2e/index.m3u8", 400, "", "no-cache", ""},
		{"GET", "/live/cam/240p%2f..%2f..%2fx/index.m3u8", 400, "", "no-cache", ""},
		{"GET", "/live/cam/240p\\..\\x/index.m3u8", 400, "", "no-cache", ""},
		{"GET", "/live//index.m3u8", 400, "", "no-cache", ""},
		{"GET", "/live/.hidden/index.m3u8", 400, "", "no-cache", ""},
		{"GET", "/live/cam/240p/", 400, "", "no-cache", ""},
		{"GET", "/live/" + strings.Repeat("a", 600) + "/index.m3u8", 414, "", "no-cache", ""},
		{"GET", "/live/cam/index.m3u8?token=" + strings.Repeat("t", 3000), 414, "", "no-cache", ""},
		{"POST", "/live/cam/index.m3u8", 405, "", "no-cache", ""},
		{"DELETE", "/live/cam/240p/00000000.m4s", 405, "", "no-cache", ""},
	}
	for _, tt := range tests {
		name := tt.method + " " + tt.path
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			w := h.get(tt.method, tt.path)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			hd := w.Header()
			if hd.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(hd.Get("Access-Control-Expose-Headers"), "Content-Range") {
				t.Errorf("CORS headers %v", hd)
			}
			if hd.Get("Cache-Control") != tt.cache {
				t.Errorf("Cache-Control %q, want %q", hd.Get("Cache-Control"), tt.cache)
			}
			if tt.ctype != "" && hd.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q, want %q", hd.Get("Content-Type"), tt.ctype)
			}
			if tt.body != "" && w.Body.String() != tt.body {
				t.Errorf("body %q, want %q", w.Body, tt.body)
			}
			if tt.code == 405 && hd.Get("Allow") != allowMethods {
				t.Errorf("Allow %q", hd.Get("Allow"))
			}
		})
	}
}

// TestOriginPreflight answers a CORS preflight for a player on another
// site asking to send Range.
func TestOriginPreflight(t *testing.T) {
	h := newHarness(t, nil)
	r := httptest.NewRequest(http.MethodOptions, "/live/cam/240p/00000000.m4s", nil)
	r.Header.Set("Origin", "https://player.example")
	r.Header.Set("Access-Control-Request-Method", "GET")
	r.Header.Set("Access-Control-Request-Headers", "range, x-playback-session-id")
	w := httptest.NewRecorder()
	h.origin.ServeHTTP(w, r)
	hd := w.Header()
	if w.Code != http.StatusNoContent || hd.Get("Access-Control-Allow-Origin") != "*" ||
		hd.Get("Access-Control-Allow-Methods") != allowMethods || hd.Get("Access-Control-Allow-Headers") != "range, x-playback-session-id" ||
		hd.Get("Access-Control-Max-Age") == "" {
		t.Errorf("preflight: %d %v", w.Code, hd)
	}
	// A header list that is not one is not echoed.
	r.Header.Set("Access-Control-Request-Headers", "range\r\nSet-Cookie: x")
	w = httptest.NewRecorder()
	h.origin.ServeHTTP(w, r)
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Headers") != "" {
		t.Errorf("preflight with a bad header list: %d %v", w.Code, w.Header())
	}
}

// TestOriginRange serves part of a segment, as players probing sizes ask.
func TestOriginRange(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	h.publish(result("cam", "s1", 0, at(0), 1))
	r := httptest.NewRequest(http.MethodGet, "/live/cam/240p/00000000.m4s", nil)
	r.Header.Set("Range", "bytes=0-3")
	w := httptest.NewRecorder()
	h.origin.ServeHTTP(w, r)
	if w.Code != http.StatusPartialContent || w.Body.String() != "s1/0" || w.Header().Get("Content-Range") != "bytes 0-3/11" {
		t.Errorf("range: %d %q %v", w.Code, w.Body, w.Header())
	}
}

// TestOriginStoreErrors: a segment the store lost is 404; a store that
// fails is 503, so an edge tries another origin.
func TestOriginStoreErrors(t *testing.T) {
	h := newHarness(t, nil)
	h.start("cam", "s1")
	h.publish(result("cam", "s1", 0, at(0), 1))
	tests := []struct {
		name string
		get  func(key string) ([]byte, error)
		code int
	}{
		{"lost", func(key string) ([]byte, error) { return h.store.Get(t.Context(), "missing/"+key) }, http.StatusNotFound},
		{"down", func(string) ([]byte, error) { return nil, errors.New("connection refused") }, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &Origin{Packager: h.p, Store: storeFunc(tt.get)}
			w := httptest.NewRecorder()
			o.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/live/cam/240p/00000000.m4s", nil))
			if w.Code != tt.code || w.Header().Get("Cache-Control") != "no-cache" {
				t.Errorf("status %d %v", w.Code, w.Header())
			}
		})
	}
}

// storeFunc is an objectReader made of a function.
type storeFunc func(key string) ([]byte, error)

func (f storeFunc) Get(_ context.Context, key string) ([]byte, error) { return f(key) }

// TestParsePath covers the parser's accepted forms and their round trip.
func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		want route
		err  error
	}{
		{"/live/cam/index.m3u8", route{kind: routeMaster, stream: "cam"}, nil},
		{"/live/cam/index.mpd", route{kind: routeMPD, stream: "cam"}, nil},
		{"/live/cam/720p/index.m3u8", route{kind: routeMedia, stream: "cam", rendition: "720p"}, nil},
		{"/live/cam/720p/init.mp4", route{kind: routeInit, stream: "cam", rendition: "720p", file: "init.mp4"}, nil},
		{"/live/cam/720p/init-00000042.mp4", route{kind: routeInit, stream: "cam", rendition: "720p", file: "init-00000042.mp4"}, nil},
		{"/live/cam/720p/00000042.m4s", route{kind: routeSegment, stream: "cam", rendition: "720p", seq: 42}, nil},
		{"/live/cam/720p/123456789.m4s", route{kind: routeSegment, stream: "cam", rendition: "720p", seq: 123456789}, nil},
		{"/live/cam/720p/18446744073709551615.m4s", route{kind: routeSegment, stream: "cam", rendition: "720p", seq: 1<<64 - 1}, nil},
		{"/live/cam/720p/18446744073709551616.m4s", route{}, errNoRoute},
		{"/live/cam/720p/init-42.mp4", route{}, errNoRoute},
		{"/live/cam/720p/0000004a.m4s", route{}, errNoRoute},
		{"/live/cam/720p/+0000042.m4s", route{}, errNoRoute},
		{"/live/a b/index.m3u8", route{}, errBadPath},
		{"/live/cam/é/index.m3u8", route{}, errBadPath},
		{"/live/cam/720p/\x00.m4s", route{}, errBadPath},
		{"/live/cam/./index.m3u8", route{}, errBadPath},
		{"/live/", route{}, errBadPath},
		{"/live", route{}, errNoRoute},
		{"/", route{}, errNoRoute},
		{"", route{}, errNoRoute},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := parsePath(tt.path)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("parsePath = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
			if err == nil && got.path() != tt.path {
				t.Errorf("path() = %q", got.path())
			}
		})
	}
}
