package cors

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRestrict(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET")
		_, _ = w.Write([]byte("x"))
	})
	cases := []struct {
		name, origin string
		list         []string
		want         string
	}{
		{"no list keeps star", "https://a.example", nil, "*"},
		{"star in list keeps star", "https://a.example", []string{"*"}, "*"},
		{"listed origin named", "https://A.example", []string{"https://a.example"}, "https://A.example"},
		{"other origin removed", "https://evil.example", []string{"https://a.example"}, ""},
		{"no Origin header removed", "", []string{"https://a.example"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/live/s/index.m3u8", nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			Restrict(tc.list, inner).ServeHTTP(rec, req)
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != tc.want {
				t.Fatalf("Allow-Origin = %q, want %q", got, tc.want)
			}
			if tc.want == "" && rec.Header().Get("Access-Control-Allow-Methods") != "" {
				t.Fatal("Allow-Methods left for a refused origin")
			}
			if rec.Body.String() != "x" {
				t.Fatalf("body %q", rec.Body.String())
			}
		})
	}
}

func TestRestrictKeepsFlusher(t *testing.T) {
	var flushed bool
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if err := http.NewResponseController(w).Flush(); err == nil {
			flushed = true
		}
	})
	rec := httptest.NewRecorder()
	Restrict([]string{"https://a.example"}, inner).ServeHTTP(rec, httptest.NewRequest("GET", "/live/s.flv", nil))
	if !flushed || !rec.Flushed {
		t.Fatal("the wrapper hid Flush from a streaming handler")
	}
}
