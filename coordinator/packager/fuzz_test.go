package packager

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzParsePath checks that the origin's path parser never panics, that
// what it accepts writes back to the same path with safe names, and that
// the handler answers any such path with a status, never a panic. The
// seeds under testdata/fuzz/ are every route, traversal attempts and
// escapes.
func FuzzParsePath(f *testing.F) {
	f.Fuzz(func(t *testing.T, path string) {
		rt, err := parsePath(path)
		if err != nil {
			if !errors.Is(err, errBadPath) && !errors.Is(err, errNoRoute) && !errors.Is(err, errTooLong) {
				t.Fatalf("parsePath(%q): unexpected error %v", path, err)
			}
			return
		}
		if got := rt.path(); got != path {
			t.Fatalf("parsePath(%q) = %+v, which writes back as %q", path, rt, got)
		}
		if !validName(rt.stream) || rt.kind >= routeMedia && !validName(rt.rendition) {
			t.Fatalf("parsePath(%q) accepted names %q %q", path, rt.stream, rt.rendition)
		}
		for _, seg := range strings.Split(path, "/")[1:] {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "%\\") {
				t.Fatalf("parsePath(%q) accepted segment %q", path, seg)
			}
		}

		// The handler serves it (404 here: no stream is live).
		p, err := New(Config{Store: newMemStore()})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		o := &Origin{Packager: p, Store: newMemStore()}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path, r.RequestURI = path, path
		w := httptest.NewRecorder()
		o.ServeHTTP(w, r)
		if w.Code != http.StatusNotFound {
			t.Fatalf("GET %q: %d", path, w.Code)
		}
	})
}
