package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/livegrid/livegrid/coordinator/hub"
	"github.com/livegrid/livegrid/coordinator/ingest"
	"github.com/livegrid/livegrid/coordinator/packager"
	"github.com/livegrid/livegrid/coordinator/scheduler"
	"github.com/livegrid/livegrid/coordinator/scheduler/asynqqueue"
	"github.com/livegrid/livegrid/internal/auth"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/queue"
	"github.com/livegrid/livegrid/internal/store"
	"github.com/livegrid/livegrid/profiles"
	"github.com/livegrid/livegrid/worker"
	"github.com/livegrid/livegrid/worker/transcode"
)

// Standalone is the single-process node: an embedded Redis (miniredis) for
// the queue and the result log, the store, the coordinator (ingest, hub,
// segmenters, scheduler, packager), one worker and the origin.
type Standalone struct {
	cfg *config.Config
	log *slog.Logger

	ready              atomic.Bool
	readyCh            chan struct{}
	rtmpAddr, httpAddr net.Addr
	addrMu             sync.Mutex
}

// NewStandalone returns a standalone node for cfg, which Load (and
// ApplyFlags) validated; start it with Run.
func NewStandalone(cfg *config.Config, log *slog.Logger) (*Standalone, error) {
	if err := cfg.ValidateRole(config.RoleStandalone); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Standalone{cfg: cfg, log: log, readyCh: make(chan struct{})}, nil
}

// Ready is closed once every listener is up and every component runs.
func (s *Standalone) Ready() <-chan struct{} { return s.readyCh }

// Addrs returns the RTMP and HTTP listen addresses; valid after Ready.
func (s *Standalone) Addrs() (rtmp, httpAddr net.Addr) {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.rtmpAddr, s.httpAddr
}

// Run starts everything and serves until ctx ends, then shuts down in
// order: ingest, segmenters (flushed), worker (drained), scheduler,
// packager, HTTP, Redis. Every goroutine it starts has ended when it returns.
func (s *Standalone) Run(ctx context.Context) (err error) {
	cfg, log := s.cfg, s.log

	// Redis: the configured one, or an embedded miniredis.
	ropts := &redis.UniversalOptions{}
	if cfg.Redis.URL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("standalone: start embedded redis: %w", err)
		}
		defer mr.Close()
		ropts.Addrs = []string{mr.Addr()}
		log.Info("embedded redis", "addr", mr.Addr())
	} else {
		o, err := cfg.Redis.UniversalOptions()
		if err != nil {
			return fmt.Errorf("standalone: %w", err)
		}
		ropts = o
	}
	rdb := redis.NewUniversalClient(ropts)
	defer rdb.Close()

	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return fmt.Errorf("standalone: data dir: %w", err)
		}
	}
	st, err := store.Open(ctx, cfg.StoreURL(), store.Options{Logger: log.With("component", "store")})
	if err != nil {
		return fmt.Errorf("standalone: open store: %w", err)
	}
	defer st.Close()

	pk, err := packager.New(packager.Config{
		Store: st, Logger: log,
		TargetDuration: cfg.Segments.Duration, Window: cfg.Packager.Window,
		Grace: cfg.Packager.Grace, MaxHold: cfg.Packager.MaxHold,
	})
	if err != nil {
		return fmt.Errorf("standalone: packager: %w", err)
	}
	defer func() {
		if cerr := pk.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("standalone: close packager: %w", cerr)
		}
	}()

	results := newResultQueue()
	sched, err := scheduler.New(scheduler.Config{
		ID: "standalone", Queue: asynqqueue.New(rdb, 0), Workers: queue.NewRegistry(rdb, 0),
		Results: queue.NewResultLog(rdb), OnResult: results.push,
		SharedQueue: cfg.Worker.SharedQueue, Log: log,
	})
	if err != nil {
		return fmt.Errorf("standalone: scheduler: %w", err)
	}

	w := &worker.Worker{
		ID: cfg.WorkerID(), Redis: *ropts, Concurrency: cfg.Worker.Concurrency,
		Transcoder: &worker.EngineTranscoder{Engine: transcode.New(transcode.Options{
			Log: log.With("component", "transcode"), Encoder: encoderKind(cfg.Transcode.Encoder),
		})},
		Store: st, SharedQueue: cfg.Worker.SharedQueue, ShutdownTimeout: cfg.Worker.ShutdownTimeout,
		Log: log,
	}

	hubPolicy := hub.Refuse
	if cfg.Publish.Takeover {
		hubPolicy = hub.TakeOver
	}
	h := hub.New(hub.Config{Policy: hubPolicy, Logger: log})
	defer h.Close()

	rtmpLn, err := net.Listen("tcp", cfg.RTMP.Addr)
	if err != nil {
		return fmt.Errorf("standalone: rtmp listen: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		rtmpLn.Close()
		return fmt.Errorf("standalone: http listen: %w", err)
	}
	s.addrMu.Lock()
	s.rtmpAddr, s.httpAddr = rtmpLn.Addr(), httpLn.Addr()
	s.addrMu.Unlock()

	// Background components, each with its own context so shutdown can
	// stop them in order.
	var bg sync.WaitGroup
	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSched()
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorker()
	bg.Add(3)
	go func() {
		defer bg.Done()
		if err := sched.Run(schedCtx); err != nil {
			log.Error("scheduler stopped", "err", err)
		}
	}()
	go func() {
		defer bg.Done()
		if err := w.Run(workerCtx); err != nil {
			log.Error("worker stopped", "err", err)
		}
	}()
	go func() {
		defer bg.Done()
		results.deliver(pk, log.With("component", "deliver"))
	}()

	// One ingest pipeline per published stream.
	lv := &live{cfg: cfg, log: log, store: st, sched: sched, pk: pk, ctx: schedCtx}
	stopWatch := h.Watch(lv.event)

	srv := &ingest.Server{
		Hub: h, Auth: publishAuth(cfg, log), Log: log,
		App: cfg.RTMP.App, IdleTimeout: cfg.RTMP.IdleTimeout,
	}
	ingestDone := make(chan error, 1)
	go func() { ingestDone <- srv.Serve(rtmpLn) }()

	httpSrv := &http.Server{
		Handler:           s.handler(h, pk, st, log),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpSrv.Serve(httpLn) }()

	s.ready.Store(true)
	close(s.readyCh)
	log.Info("standalone ready", "rtmp", rtmpLn.Addr().String(), "http", httpLn.Addr().String(), "store", cfg.StoreURL())

	var runErr error
	select {
	case <-ctx.Done():
	case e := <-ingestDone:
		runErr = fmt.Errorf("standalone: rtmp: %w", e)
		ingestDone <- nil
	case e := <-httpDone:
		runErr = fmt.Errorf("standalone: http: %w", e)
		httpDone <- nil
	}
	log.Info("standalone shutting down")
	s.ready.Store(false)

	// 1. Ingest: publishers are unpublished, so every stream pipeline
	// flushes its segmenter, submits the last segments and ends.
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if e := srv.Shutdown(shutCtx); e != nil {
		log.Warn("rtmp shutdown", "err", e)
	}
	if e := <-ingestDone; e != nil && !errors.Is(e, ingest.ErrServerClosed) {
		log.Warn("rtmp serve", "err", e)
	}
	h.Close()
	stopWatch()
	lv.close()

	// 2. Let the worker drain what was submitted, bounded by its shutdown
	// timeout, then stop it and the scheduler.
	drainBy := time.Now().Add(max(cfg.Worker.ShutdownTimeout, time.Second))
	for sched.Stats().Outstanding > 0 && time.Now().Before(drainBy) {
		time.Sleep(100 * time.Millisecond)
	}
	stopWorker()
	stopSched()
	results.close()
	bg.Wait()

	// 3. HTTP last, so playlists stay served while the rest drains.
	if e := httpSrv.Shutdown(shutCtx); e != nil {
		httpSrv.Close()
	}
	if e := <-httpDone; e != nil && !errors.Is(e, http.ErrServerClosed) {
		log.Warn("http serve", "err", e)
	}
	return runErr
}

// handler is the HTTP mux: HTTP-FLV and HLS/DASH under /live/, health.
func (s *Standalone) handler(h *hub.Hub, pk *packager.Packager, st store.Store, log *slog.Logger) http.Handler {
	flvH := &hub.FLVHandler{Hub: h, Log: log.With("component", "httpflv")}
	origin := &packager.Origin{Packager: pk, Store: st, Logger: log.With("component", "origin")}
	mux := http.NewServeMux()
	mux.Handle("/live/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, "/live/")
		if strings.HasSuffix(rest, ".flv") && !strings.Contains(rest, "/") {
			flvH.ServeHTTP(w, r)
			return
		}
		origin.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// publishAuth turns publish.* into ingest's Authorizer.
func publishAuth(cfg *config.Config, log *slog.Logger) ingest.Authorizer {
	switch cfg.Publish.Auth {
	case config.AuthNone, "":
		return ingest.AllowAll
	}
	p := &auth.Policy{PublishKey: cfg.Publish.Key, StreamKeys: cfg.Publish.Keys, Log: log.With("component", "auth")}
	if cfg.Publish.TokenSecret != "" {
		p.PublishSecrets = auth.Keyring{[]byte(cfg.Publish.TokenSecret)}
	}
	return p
}

func encoderKind(s string) profiles.EncoderKind {
	if s == "" || s == config.EncoderAuto {
		return ""
	}
	return profiles.EncoderKind(s)
}
