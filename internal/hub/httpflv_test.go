package hub

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"go.uber.org/goleak"
)

func newFLVServer(t *testing.T, h *Hub, wrap func(net.Listener) net.Listener, writeTimeout time.Duration) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/live/{file}", &FLVHandler{Hub: h, WriteTimeout: writeTimeout})
	ts := httptest.NewUnstartedServer(mux)
	if wrap != nil {
		ts.Listener = wrap(ts.Listener)
	}
	ts.Start()
	return ts
}

func TestFLVHandlerResponses(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := New(Config{})
	defer h.Close()
	s := mustPublish(t, h, "test")
	write(t, s, avcHeader(0, 1), keyframe(0, 10))
	ts := newFLVServer(t, h, nil, 0)
	defer ts.Close()

	tests := []struct {
		method, path string
		wantStatus   int
		wantType     string
	}{
		{"GET", "/live/nope.flv", http.StatusNotFound, ""},
		{"GET", "/live/test", http.StatusNotFound, ""},
		{"GET", "/live/.flv", http.StatusNotFound, ""},
		{"POST", "/live/test.flv", http.StatusMethodNotAllowed, ""},
		{"OPTIONS", "/live/test.flv", http.StatusNoContent, ""},
		{"HEAD", "/live/test.flv", http.StatusOK, "video/x-flv"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, ts.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q", got)
			}
			if tt.wantType != "" && resp.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tt.wantType)
			}
		})
	}
}

func TestFLVHandlerStream(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := New(Config{})
	defer h.Close()
	s := mustPublish(t, h, "test")
	write(t, s, metaTag(0, 320), avcHeader(0, 1), aacHeader(0), keyframe(0, 100), aacFrame(10), interFrame(33, 100))
	ts := newFLVServer(t, h, nil, 0)
	defer ts.Close()

	resp, err := ts.Client().Get(ts.URL + "/live/test.flv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/x-flv" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("Transfer-Encoding %q, want chunked", resp.TransferEncoding)
	}
	fr := flv.NewReader(resp.Body)
	hdr, err := fr.Header()
	if err != nil {
		t.Fatal(err)
	}
	if !hdr.Audio || !hdr.Video {
		t.Errorf("header %+v, want audio and video", hdr)
	}
	var got []string
	next := func() {
		t.Helper()
		tag, err := fr.ReadTag()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, label(tag))
	}
	for range 6 {
		next()
	}
	// Each tag is flushed as it comes: this one arrives while the
	// response is open.
	write(t, s, keyframe(66, 100))
	next()
	want := "meta@0 avc-hdr@0 aac-hdr@0 key@0 aac@10 inter@33 key@66"
	if strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_ = s.Close()
	if _, err := fr.ReadTag(); err != io.EOF {
		t.Errorf("after the stream ended: %v, want io.EOF", err)
	}
}

func TestFLVHandlerViewerLeaves(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := New(Config{})
	defer h.Close()
	s := mustPublish(t, h, "test")
	write(t, s, avcHeader(0, 1), keyframe(0, 100))
	ts := newFLVServer(t, h, nil, 0)
	defer ts.Close()

	resp, err := ts.Client().Get(ts.URL + "/live/test.flv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 13)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Stats().Readers == 1 }, "a reader")
	resp.Body.Close()
	ts.CloseClientConnections()
	waitFor(t, func() bool { return s.Stats().Readers == 0 }, "the reader gone")
}

// smallBuffers makes the server's socket send buffers small, so that a
// viewer that stops reading blocks the server's writes soon.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestFLVHandlerSlowViewer(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := New(Config{ReaderMaxTags: 64})
	defer h.Close()
	s := mustPublish(t, h, "test")
	write(t, s, avcHeader(0, 1), keyframe(0, 2000))
	ts := newFLVServer(t, h, func(l net.Listener) net.Listener { return smallBuffers{l} }, 300*time.Millisecond)
	defer ts.Close()

	// The slow viewer asks and then never reads.
	slow, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_ = slow.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(slow, "GET /live/test.flv HTTP/1.1\r\nHost: x\r\n\r\n")

	resp, err := ts.Client().Get(ts.URL + "/live/test.flv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	fast := make(chan int, 1)
	go func() {
		n := 0
		fr := flv.NewReader(bufio.NewReader(resp.Body))
		for {
			if _, err := fr.ReadTag(); err != nil {
				fast <- n
				return
			}
			n++
		}
	}()
	waitFor(t, func() bool { return s.Stats().Readers == 2 }, "two readers")

	const frames = 600
	for i := 1; i <= frames; i++ {
		stamp := uint32(i * 33)
		if i%60 == 0 {
			write(t, s, keyframe(stamp, 2000))
		} else {
			write(t, s, interFrame(stamp, 2000))
		}
		if i%20 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(t, func() bool { return s.Stats().Readers == 1 }, "the slow reader dropped")
	// The hub dropped it, well before its blocked write timed out.
	if st := s.Stats(); st.DroppedReaders != 1 || st.ReaderSkips == 0 {
		t.Errorf("stats %+v: want the slow reader skipped, then dropped", st)
	}
	_ = s.Close()
	if n := <-fast; n != frames+2 {
		t.Errorf("fast viewer got %d tags, want %d", n, frames+2)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
