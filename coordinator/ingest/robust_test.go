package ingest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/hub"
)

// smallBuffers shrinks accepted sockets' send buffers, so a viewer that
// stops reading blocks the server's writes soon.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestSlowHTTPFLVViewer has one HTTP-FLV viewer stop reading: it is
// dropped while the stream is live, and a fast viewer beside it gets the
// whole stream.
func TestSlowHTTPFLVViewer(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	r := startRig(t, rigConfig{
		hub:          hub.Config{ReaderMaxTags: 32},
		writeTimeout: 300 * time.Millisecond,
		wrapHTTP:     func(l net.Listener) net.Listener { return smallBuffers{l} },
	})
	pub := publish(t, src, r.rtmpURL("test"), true)
	s := r.waitLive(t, "test")

	fast := make(chan flvSummary, 1)
	go func() { fast <- readFLV(r.http.Client(), r.flvURL("test")) }()
	waitFor(t, 5*time.Second, func() bool { return s.Stats().Readers == 1 }, "the fast viewer")

	slow, err := net.Dial("tcp", r.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_ = slow.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(slow, "GET /live/test.flv HTTP/1.1\r\nHost: test\r\n\r\n")
	waitFor(t, 5*time.Second, func() bool { return s.Stats().Readers == 2 }, "the slow viewer")
	waitFor(t, 5*time.Second, func() bool { return s.Stats().Readers == 1 }, "the slow viewer dropped")
	if pub.exited() {
		t.Fatal("the stream ended before the slow viewer was dropped")
	}

	if err := pub.wait(t, 15*time.Second); err != nil {
		t.Fatalf("publisher: %v\n%s", err, pub.out)
	}
	v := <-fast
	if v.err != nil || v.videoFrames < 85 {
		t.Errorf("fast viewer got %d frames (%v), want the clip's 90", v.videoFrames, v.err)
	}
	mustContain(t, "server log", r.logs.String(), "http-flv viewer dropped")
	// The server closed the slow viewer's connection mid-response.
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, slow)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the slow viewer's connection is still open")
	}
}

// TestMalformedClients sends broken RTMP: each connection is closed, the
// server goes on and a real publisher still gets in.
func TestMalformedClients(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	// Broken chunk headers can announce messages that never arrive: the
	// handshake deadline ends those.
	r := startRig(t, rigConfig{handshake: time.Second})
	connect := amf(t, "connect", 1.0, flv.Object{{Key: "app", Value: "live"}, {Key: "tcUrl", Value: "rtmp://test/live"}})
	createStream := amf(t, "createStream", 2.0, nil)

	tests := []struct {
		name      string
		handshake bool
		send      [][]byte
	}{
		{"garbage instead of a handshake", false, [][]byte{random(4000)}},
		{"zero-length message", true, [][]byte{chunk(3, 20, 0, nil)}},
		{"command with a truncated AMF string", true, [][]byte{chunk(3, 20, 0, []byte{0x02, 0xff, 0xff, 'c'})}},
		{"message on a stream never created", true, [][]byte{chunk(4, 9, 7, []byte{0x17, 1, 0, 0, 0})}},
		{"unknown app", true, [][]byte{chunk(3, 20, 0, amf(t, "connect", 1.0, flv.Object{{Key: "app", Value: "nope"}}))}},
		{"publish with a number for a name", true, [][]byte{
			chunk(3, 20, 0, connect), chunk(3, 20, 0, createStream),
			chunk(8, 20, 1, amf(t, "publish", 0.0, nil, 42.0)),
		}},
		{"publish of a bad name", true, [][]byte{
			chunk(3, 20, 0, connect), chunk(3, 20, 0, createStream),
			chunk(8, 20, 1, amf(t, "publish", 0.0, nil, "../etc", "live")),
		}},
		{"garbage after connect", true, [][]byte{chunk(3, 20, 0, connect), random(3000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", r.rtmpAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if tt.handshake {
				handshake(t, c)
			}
			for _, b := range tt.send {
				if _, err := c.Write(b); err != nil {
					break // the server may close before the last write
				}
			}
			_, err = io.Copy(io.Discard, c)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the server kept the connection open")
			}
		})
	}
	p := publish(t, src, r.rtmpURL("test"), false)
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("publish after the broken clients: %v\n%s", err, p.out)
	}
	r.waitEvents(t, []string{"published test", "unpublished test"})
	if strings.Contains(r.logs.String(), "rtmp handler panic") {
		t.Errorf("a handler panicked:\n%s", r.logs)
	}
}

// TestListenAndServeShutdown cancels a serving server's context with a
// publisher and a player connected: both are cut off and every goroutine
// ends.
func TestListenAndServeShutdown(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	h := hub.New(hub.Config{})
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := &Server{Addr: addr, Hub: h}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe(ctx) }()

	pub := publish(t, src, "rtmp://"+addr+"/live/test", true)
	waitFor(t, 10*time.Second, func() bool { s, ok := h.Lookup("test"); return ok && s.Stats().GOPTags > 0 }, "the stream")
	s, _ := h.Lookup("test")
	player := run(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", "rtmp://"+addr+"/live/test", "-f", "null", "-")
	waitFor(t, 10*time.Second, func() bool { return s.Stats().Readers == 1 }, "the player")

	start := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ListenAndServe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return")
	}
	t.Logf("shut down in %v", time.Since(start))
	if _, ok := h.Lookup("test"); ok {
		t.Error("the stream is still published")
	}
	if err := pub.wait(t, 5*time.Second); err == nil {
		t.Error("the publisher did not notice the shutdown")
	}
	_ = player.wait(t, 5*time.Second)
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func amf(t *testing.T, vals ...any) []byte {
	t.Helper()
	b, err := flv.EncodeAMF0(vals...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// chunk frames one message as RTMP chunks of the default 128 bytes.
func chunk(csid byte, typ byte, streamID uint32, body []byte) []byte {
	b := []byte{csid, 0, 0, 0, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body)), typ, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[8:], streamID)
	for {
		n := min(len(body), 128)
		b = append(b, body[:n]...)
		body = body[n:]
		if len(body) == 0 {
			return b
		}
		b = append(b, 0xc0|csid) // fmt 3: continuation
	}
}

// handshake does the client side of the RTMP handshake.
func handshake(t *testing.T, c net.Conn) {
	t.Helper()
	c1 := make([]byte, 1536)
	copy(c1[8:], random(1528))
	if _, err := c.Write(append([]byte{3}, c1...)); err != nil {
		t.Fatal(err)
	}
	s := make([]byte, 1+1536+1536)
	if _, err := io.ReadFull(c, s); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if _, err := c.Write(s[1 : 1+1536]); err != nil { // C2 echoes S1
		t.Fatal(err)
	}
}
