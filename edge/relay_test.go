package edge

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/manifest"
)

// TestServeObjectAsServeContent checks that a whole-body answer, written
// without http.ServeContent, has the status, headers and body that
// ServeContent gives it.
func TestServeObjectAsServeContent(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	seg := segment(3, 70_000)
	playlist := []byte("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n00000001.m4s\n")
	tests := []struct {
		name, method, target string
		origin               http.Header
		body                 []byte
	}{
		{"segment", "GET", "/live/s/v/00000001.m4s", http.Header{
			"Content-Type": {"video/iso.segment"}, "Cache-Control": {"public, max-age=31536000, immutable"},
			"Last-Modified": {"Wed, 01 Jan 2030 00:00:00 GMT"}, "Age": {"3"},
		}, seg},
		{"head", "HEAD", "/live/s/v/00000001.m4s", http.Header{"Content-Type": {"video/iso.segment"}}, seg},
		{"type from the name", "GET", "/live/s/v/init.mp4", http.Header{"ETag": {`"v1"`}}, seg},
		{"old date format", "GET", "/live/s/v/00000002.m4s", http.Header{"Last-Modified": {"Sunday, 06-Nov-94 08:49:37 GMT"}}, seg},
		{"epoch", "GET", "/live/s/v/00000003.m4s", http.Header{"Last-Modified": {"Thu, 01 Jan 1970 00:00:00 GMT"}}, seg},
		{"content encoding", "GET", "/live/s/v/00000004.m4s", http.Header{"Content-Encoding": {"gzip"}}, seg},
		{"sniffed type", "GET", "/live/s/v/data.bin", http.Header{}, []byte("<html>not a segment</html>")},
		{"empty", "GET", "/live/s/v/00000005.m4s", http.Header{}, []byte{}},
		{"playlist", "GET", "/live/s/v/index.m3u8", http.Header{"Cache-Control": {"max-age=1"}}, playlist},
		{"signed playlist", "GET", "/live/s/v/index.m3u8?token=abc&expires=99", http.Header{}, playlist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, nil)
			o := newObject(req.URL.Path, http.StatusOK, tt.origin, tt.body, now.Add(-5*time.Second), defaultFreshness())
			rl := &relay{now: func() time.Time { return now }}
			got := httptest.NewRecorder()
			rl.serveObject(got, req, o)
			if tt.name == "signed playlist" && bytes.Equal(got.Body.Bytes(), tt.body) {
				t.Error("the viewer's token is not in the playlist's links")
			}
			want := httptest.NewRecorder()
			serveContentAnswer(want, req, o, now)
			if got.Code != want.Code || !reflect.DeepEqual(got.Header(), want.Header()) || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Errorf("got %d %v (%d bytes)\nwant %d %v (%d bytes)", got.Code, got.Header(), got.Body.Len(),
					want.Code, want.Header(), want.Body.Len())
			}
		})
	}
}

// serveContentAnswer is how serveObject answered before it wrote whole
// bodies itself: every 200 through http.ServeContent.
func serveContentAnswer(w http.ResponseWriter, r *http.Request, o *object, now time.Time) {
	h := w.Header()
	for k, vs := range o.header {
		h[k] = append([]string(nil), vs...)
	}
	if h.Get("Content-Type") == "" {
		if ct := contentTypeFor(r.URL.Path); ct != "" {
			h.Set("Content-Type", ct)
		}
	}
	h.Set("Age", o.ageAt(now))
	body := o.body
	if strings.HasSuffix(r.URL.Path, ".m3u8") {
		body = manifest.AddQueryHLS(body, manifest.LinkQuery(r.URL.Query()))
	}
	if len(body) != len(o.body) {
		h.Del("ETag")
	}
	http.ServeContent(w, r, "", o.modTime, bytes.NewReader(body))
}
