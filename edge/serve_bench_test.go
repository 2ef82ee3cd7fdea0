package edge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/config"
)

// BenchmarkCachedSegment is deploy/loadtest.sh's segment throughput in
// process: the edge as `livegrid edge` assembles it (play policy, CORS,
// metrics, viewer statistics), one 214 KB media segment already cached,
// and 64 keep-alive connections asking for it as wrk does.
func BenchmarkCachedSegment(b *testing.B) {
	const path = "/live/load/v0/00000042.m4s"
	body := segment(42, 214<<10)
	origin := newTestOrigin(b)
	origin.set(path, testFile{body: body, ctype: "video/iso.segment"})

	cfg := config.Default()
	cfg.HTTP.Addr, cfg.RTMP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Edge.Origins = []string{origin.url()}
	cfg.Edge.CacheBytes = 64 * config.MiB
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	e, err := Assemble(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	base, _ := runEdge(b, e)
	addr := e.Addr().String()
	resp, got := fetch(b, newClient(b), http.MethodGet, base+path)
	if resp.StatusCode != http.StatusOK || len(got) != len(body) {
		b.Fatalf("warm-up: %s, %d bytes", resp.Status, len(got))
	}

	req := []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr))
	b.SetBytes(int64(len(body)))
	b.SetParallelism(32) // 64 connections on 2 cores, as wrk -c64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		br := bufio.NewReaderSize(conn, 64<<10)
		for pb.Next() {
			if _, err := conn.Write(req); err != nil {
				b.Error(err)
				return
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Error(err)
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || n != int64(len(body)) {
				b.Errorf("GET: %s, %d bytes, %v", resp.Status, n, err)
				return
			}
		}
	})
}

// BenchmarkCachedSegmentHandler is BenchmarkCachedSegment without the
// network: the edge's own work per cache hit (middleware, relay, headers)
// behind a ResponseWriter that discards the body.
func BenchmarkCachedSegmentHandler(b *testing.B) {
	const path = "/live/load/v0/00000042.m4s"
	body := segment(42, 214<<10)
	origin := newTestOrigin(b)
	origin.set(path, testFile{body: body, ctype: "video/iso.segment"})

	cfg := config.Default()
	cfg.HTTP.Addr, cfg.RTMP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Edge.Origins = []string{origin.url()}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	e, err := Assemble(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	runEdge(b, e)
	h := e.handler(e.relay, newMetrics(e.relay, e.relay.cache, e.pool, e.policy), context.Background())
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = "192.0.2.7:40000"
	h.ServeHTTP(&discardWriter{header: http.Header{}}, req) // the miss that fills the cache

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := &discardWriter{header: make(http.Header)}
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK || w.n != len(body) {
				b.Errorf("status %d, %d bytes", w.code, w.n)
				return
			}
		}
	})
}

// discardWriter is a ResponseWriter that keeps the status and counts the
// body.
type discardWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
