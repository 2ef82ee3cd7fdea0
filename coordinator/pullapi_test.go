package coordinator

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/coordinator/ingest"
	"github.com/livegrid/livegrid/internal/hub"
)

// unreachableRTMP is a pull URL nobody answers, so a pull stays in
// connecting and retrying.
func unreachableRTMP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "rtmp://" + addr + "/live/cam?key=secret"
}

func TestPullAPI(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := hub.New(hub.Config{})
	defer h.Close()
	p := &ingest.Puller{Hub: h, MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	defer p.Close()
	mux := http.NewServeMux()
	registerPullAPI(mux, p, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if _, err := h.Publish("busy", hub.Publisher{RemoteAddr: "test"}); err != nil {
		t.Fatal(err)
	}
	src := unreachableRTMP(t)

	call := func(method, path, contentType, body string) (int, map[string]any, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if len(b) > 0 {
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s %s: body %q is not JSON: %v", method, path, b, err)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: Content-Type %q", method, path, ct)
			}
		}
		return resp.StatusCode, v, resp.Header
	}

	code, v, hdr := call("POST", "/api/v1/pulls", "application/json", `{"stream": "cam", "url": "`+src+`"}`)
	if code != http.StatusCreated || v["stream"] != "cam" || hdr.Get("Location") != "/api/v1/pulls/cam" {
		t.Fatalf("POST: %d %v %v", code, v, hdr)
	}
	if u, _ := v["url"].(string); strings.Contains(u, "secret") {
		t.Errorf("the listed URL shows the key: %q", u)
	}

	tests := []struct {
		name, ct, body string
		want           int
		field, says    string
	}{
		{"already pulled", "application/json", `{"stream":"cam","url":"` + src + `"}`, http.StatusConflict, "stream", "already pulled"},
		{"live from a publisher", "", `{"stream":"busy","url":"` + src + `"}`, http.StatusConflict, "stream", "live"},
		{"bad stream", "application/json", `{"stream":"a b","url":"` + src + `"}`, http.StatusBadRequest, "stream", "'stream' must be"},
		{"missing stream", "application/json", `{"url":"` + src + `"}`, http.StatusBadRequest, "stream", "'stream' must be"},
		{"bad url", "application/json", `{"stream":"x","url":"srt://h:9000"}`, http.StatusBadRequest, "url", "'url' must be"},
		{"rtmp url without stream", "application/json", `{"stream":"x","url":"rtmp://h/live"}`, http.StatusBadRequest, "url", "'url' must name"},
		{"unknown field", "application/json", `{"stream":"x","url":"` + src + `","ladder":"hd"}`, http.StatusBadRequest, "ladder", "'ladder' is not a known field"},
		{"wrong type", "application/json", `{"stream":1,"url":"` + src + `"}`, http.StatusBadRequest, "stream", "'stream' must be a string"},
		{"malformed", "application/json", `{"stream":`, http.StatusBadRequest, "", "malformed JSON"},
		{"not an object", "application/json", `[1,2]`, http.StatusBadRequest, "", "JSON object"},
		{"empty", "application/json", ``, http.StatusBadRequest, "", "JSON object"},
		{"trailing data", "application/json", `{"stream":"x","url":"` + src + `"} {}`, http.StatusBadRequest, "", "nothing after it"},
		{"not JSON", "text/plain", `stream=x`, http.StatusUnsupportedMediaType, "", "application/json"},
		{"oversize", "application/json", `{"stream":"x","url":"` + src + `","pad":"` + strings.Repeat("a", 1<<20) + `"}`, http.StatusRequestEntityTooLarge, "", "over 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, v, _ := call("POST", "/api/v1/pulls", tt.ct, tt.body)
			msg, _ := v["error"].(string)
			if code != tt.want || !strings.Contains(msg, tt.says) {
				t.Errorf("%d %q, want %d saying %q", code, msg, tt.want, tt.says)
			}
			if field, _ := v["field"].(string); field != tt.field {
				t.Errorf("field %q, want %q", field, tt.field)
			}
		})
	}

	// The pull fails and retries; the list says so.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, v, _ := call("GET", "/api/v1/pulls", "", "")
		pulls, _ := v["pulls"].([]any)
		if code != http.StatusOK || len(pulls) != 1 {
			t.Fatalf("GET: %d %v", code, v)
		}
		first, _ := pulls[0].(map[string]any)
		if first["state"] == "retrying" && strings.Contains(first["last_error"].(string), "connection refused") {
			if first["since"] == "" || first["failures"].(float64) < 1 {
				t.Errorf("pull %v", first)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pull never shown retrying: %v", first)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, v, _ := call("GET", "/api/v1/pulls/cam", "", ""); code != http.StatusOK || v["stream"] != "cam" {
		t.Errorf("GET one: %d %v", code, v)
	}
	if code, _, hdr := call("PUT", "/api/v1/pulls", "", ""); code != http.StatusMethodNotAllowed || hdr.Get("Allow") == "" {
		t.Errorf("PUT: %d", code)
	}
	if code, _, _ := call("DELETE", "/api/v1/pulls/cam", "", ""); code != http.StatusNoContent {
		t.Errorf("DELETE: %d", code)
	}
	if code, v, _ := call("DELETE", "/api/v1/pulls/cam", "", ""); code != http.StatusNotFound || v["error"] == "" {
		t.Errorf("second DELETE: %d %v", code, v)
	}
	if code, v, _ := call("GET", "/api/v1/pulls/cam", "", ""); code != http.StatusNotFound {
		t.Errorf("GET deleted: %d %v", code, v)
	}
	if code, v, _ := call("GET", "/api/v1/pulls", "", ""); code != http.StatusOK || len(v["pulls"].([]any)) != 0 {
		t.Errorf("GET after DELETE: %d %v", code, v)
	}
}
