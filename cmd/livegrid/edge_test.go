package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEdgeFlags checks `livegrid edge --help` and that bad flags are
// refused naming the flag or the key.
func TestEdgeFlags(t *testing.T) {
	t.Setenv("LIVEGRID_EDGE_ORIGINS", "")
	var help bytes.Buffer
	if err := runEdge(context.Background(), []string{"--help"}, &help, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, f := range []string{"-origin", "-http-addr", "-rtmp-addr", "-config", "-cache-bytes", "-origin-timeout", "-log-level", "-log-format", "edge.origins"} {
		if !strings.Contains(help.String(), f) {
			t.Errorf("help lists no %s:\n%s", f, help.String())
		}
	}
	tests := []struct {
		args []string
		want []string
	}{
		{nil, []string{"'edge.origins'", "--origin"}},
		{[]string{"--origin", " , "}, []string{"'edge.origins'"}},
		{[]string{"--origin", "ftp://origin"}, []string{"--origin", "'edge.origins[0]'"}},
		{[]string{"--origin", "http://a:8080,http://a:8080"}, []string{"--origin", "'edge.origins[1]'"}},
		{[]string{"--origin", "http://a:8080", "--cache-bytes", "lots"}, []string{"--cache-bytes", "'edge.cache_bytes'"}},
		{[]string{"--origin", "http://a:8080", "--origin-timeout", "5m"}, []string{"--origin-timeout", "'edge.origin_timeout'"}},
		{[]string{"--origin", "http://a:8080", "--log-level", "loud"}, []string{"--log-level", "'log.level'"}},
		{[]string{"--origin", "http://a:8080", "--http-addr", "nowhere"}, []string{"--http-addr", "'http.addr'"}},
		{[]string{"--origin", "http://a:8080", "--config", "/nonexistent/edge.yaml"}, []string{"edge.yaml"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := runEdge(context.Background(), tt.args, &out, &out)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q names no %s", err, w)
				}
			}
		})
	}
	// A flag the edge does not have is a usage error the flag set reports.
	var out bytes.Buffer
	if err := runEdge(context.Background(), []string{"--origin-timeout", "soon"}, &out, &out); !errors.Is(err, errUsage) || !strings.Contains(out.String(), "origin-timeout") {
		t.Errorf("bad duration: %v %q", err, out.String())
	}
}

// TestEdgeRuns starts `livegrid edge` against a stub origin, reads a
// playlist through it and stops it with the context.
func TestEdgeRuns(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		_, _ = io.WriteString(w, "#EXTM3U\n")
	}))
	defer origin.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runEdge(ctx, []string{"--origin", origin.URL, "--http-addr", addr, "--rtmp-addr", "127.0.0.1:0", "--cache-bytes", "16MiB", "--log-format", "json"}, &logs, &logs)
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/live/s/index.m3u8")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) == "#EXTM3U\n" {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("edge never served the playlist: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("edge: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("edge did not stop")
	}
	if !strings.Contains(logs.String(), `"msg":"edge ready"`) {
		t.Errorf("no JSON ready line in the log:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
