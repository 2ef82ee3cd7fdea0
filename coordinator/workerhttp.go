package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// workerHTTP is the worker role's own small HTTP server: /healthz,
// /readyz (the worker runs and reaches Redis) and /metrics (its results,
// transcode times and encoder fallbacks, Go and process figures), so a
// worker pod can be probed and scraped like the coordinator.
type workerHTTP struct {
	srv     *http.Server
	ln      net.Listener
	running atomic.Bool
	rdb     redis.UniversalClient
	m       *metrics
}

func newWorkerHTTP(addr string, ropts *redis.UniversalOptions, log *slog.Logger) (*workerHTTP, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("worker: http listen: %w", err)
	}
	wh := &workerHTTP{ln: ln, rdb: redis.NewUniversalClient(ropts), m: newMetrics()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		switch {
		case !wh.running.Load():
			http.Error(w, "not ready: worker not running", http.StatusServiceUnavailable)
		case wh.rdb.Ping(ctx).Err() != nil:
			http.Error(w, "not ready: redis unreachable", http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("ready\n"))
		}
	})
	mux.Handle("GET /metrics", wh.m.handler(log))
	wh.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	return wh, nil
}

// serve runs until close; its error is logged by the caller.
func (wh *workerHTTP) serve() error {
	if err := wh.srv.Serve(wh.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (wh *workerHTTP) close(ctx context.Context) {
	if err := wh.srv.Shutdown(ctx); err != nil {
		wh.srv.Close()
	}
	wh.rdb.Close()
}
