package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/hub"
)

// keyAuth lets in publishers whose query has key=secret.
var keyAuth = AuthorizerFunc(func(_ context.Context, stream string, q url.Values, _ string) error {
	if q.Get("key") != "secret" {
		return errors.New("wrong key")
	}
	return nil
})

// startPushServer serves PushHandler for POST and PUT on the rig's hub.
func startPushServer(t *testing.T, r *rig, idle time.Duration) *httptest.Server {
	t.Helper()
	h := &PushHandler{Hub: r.hub, Auth: keyAuth, Log: r.srv.Log, IdleTimeout: idle}
	mux := http.NewServeMux()
	mux.Handle("POST /live/{file}", h)
	mux.Handle("PUT /live/{file}", h)
	mux.Handle("GET /push/{file}", h) // to see the method refused
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPFLVPush(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	r := startRig(t, rigConfig{})
	srv := startPushServer(t, r, 0)
	// ffmpeg's http protocol posts the FLV as a chunked body.
	ff := run(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", src, "-c", "copy",
		"-f", "flv", "-method", "POST", srv.URL+"/live/cam.flv?key=secret")
	mediaCheck(t, r.hub, "cam", 20*time.Second)
	if err := ff.wait(t, 20*time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, ff.out)
	}
	r.waitEvents(t, []string{"published cam", "unpublished cam"})
	mustContain(t, "log", r.logs.String(), "http-flv publish ended")
}

// flvPrefix returns the clip's FLV header and first n tags.
func flvPrefix(t *testing.T, src string, n int) []byte {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	fr := flv.NewReader(bytes.NewReader(data))
	for range n {
		if _, err := fr.ReadTag(); err != nil {
			t.Fatal(err)
		}
	}
	return data[:fr.Offset()]
}

func TestHTTPFLVPushRefusals(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	r := startRig(t, rigConfig{})
	srv := startPushServer(t, r, 0)
	good := flvPrefix(t, src, 20)

	// A publisher that holds "busy" for the second-publisher case.
	pr, pw := io.Pipe()
	firstDone := make(chan int, 1)
	go func() {
		resp, err := http.Post(srv.URL+"/live/busy.flv?key=secret", "video/x-flv", pr)
		if err != nil {
			firstDone <- 0
			return
		}
		resp.Body.Close()
		firstDone <- resp.StatusCode
	}()
	if _, err := pw.Write(good); err != nil {
		t.Fatal(err)
	}
	r.waitLive(t, "busy")

	tests := []struct {
		name, method, path string
		body               []byte
		want               int
	}{
		{"no key", "POST", "/live/cam.flv", good, http.StatusForbidden},
		{"wrong key", "PUT", "/live/cam.flv?key=nope", good, http.StatusForbidden},
		{"method", "GET", "/push/cam.flv?key=secret", nil, http.StatusMethodNotAllowed},
		{"bad name", "POST", "/live/.cam.flv?key=secret", good, http.StatusBadRequest},
		{"not flv", "POST", "/live/cam.mp4?key=secret", good, http.StatusNotFound},
		{"not an FLV body", "POST", "/live/cam.flv?key=secret", []byte("this is not FLV at all"), http.StatusBadRequest},
		{"second publisher", "POST", "/live/busy.flv?key=secret", good, http.StatusConflict},
		{"PUT", "PUT", "/live/put.flv?key=secret", good, http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s: %d %q, want %d", tt.method, tt.path, resp.StatusCode, body, tt.want)
			}
			if strings.Contains(string(body), "wrong key") {
				t.Errorf("the refusal's reason reached the client: %q", body)
			}
		})
	}
	if _, live := r.hub.Lookup("cam"); live {
		t.Error("a refused publisher's stream is live")
	}
	pw.Close()
	if code := <-firstDone; code != http.StatusNoContent {
		t.Errorf("first publisher got %d, want 204", code)
	}
	r.waitEvents(t, []string{"published busy", "published put", "unpublished put", "unpublished busy"})
	mustContain(t, "log", r.logs.String(), "http-flv push refused")
}

func TestHTTPFLVPushMalformed(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	r := startRig(t, rigConfig{})
	srv := startPushServer(t, r, 300*time.Millisecond)

	t.Run("bad tag", func(t *testing.T) {
		body := flvPrefix(t, src, 30)
		// A tag whose PreviousTagSize does not match it.
		body = append(body, 9, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x17, 0x01, 0, 0, 0, 9)
		resp, err := http.Post(srv.URL+"/live/bad.flv?key=secret", "video/x-flv", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "malformed FLV") {
			t.Errorf("got %d %q, want 400 malformed FLV", resp.StatusCode, msg)
		}
		r.waitEvents(t, []string{"published bad", "unpublished bad"})
		mustContain(t, "log", r.logs.String(), "http-flv publish ended: malformed FLV")
	})

	t.Run("idle body", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		head := flvPrefix(t, src, 10)
		go func() { _, _ = pw.Write(head) }() // then silence
		resp, err := http.Post(srv.URL+"/live/idle.flv?key=secret", "video/x-flv", pr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("got %d, want 408", resp.StatusCode)
		}
		r.waitEvents(t, []string{"published bad", "unpublished bad", "published idle", "unpublished idle"})
	})
}

func TestHTTPFLVPushEvicted(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	r := startRig(t, rigConfig{})
	srv := startPushServer(t, r, 0)
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan int, 1)
	go func() {
		resp, err := http.Post(srv.URL+"/live/ev.flv?key=secret", "video/x-flv", pr)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if _, err := pw.Write(flvPrefix(t, src, 10)); err != nil {
		t.Fatal(err)
	}
	r.waitLive(t, "ev")
	r.hub.Close() // evicts every publisher
	select {
	case code := <-done:
		if code != http.StatusConflict {
			t.Errorf("evicted publisher got %d, want 409", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the evicted publisher's request did not end")
	}
	if _, err := r.hub.Publish("ev", hub.Publisher{}); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("hub not closed: %v", err)
	}
}
