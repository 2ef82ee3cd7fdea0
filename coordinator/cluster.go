package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livegrid/livegrid/coordinator/ingest"
	"github.com/livegrid/livegrid/coordinator/packager"
	"github.com/livegrid/livegrid/coordinator/scheduler"
	"github.com/livegrid/livegrid/coordinator/scheduler/asynqqueue"
	"github.com/livegrid/livegrid/internal/access"
	"github.com/livegrid/livegrid/internal/auth"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/cors"
	"github.com/livegrid/livegrid/internal/hub"
	"github.com/livegrid/livegrid/internal/queue"
	"github.com/livegrid/livegrid/internal/store"
	"github.com/livegrid/livegrid/worker"
	"github.com/livegrid/livegrid/worker/transcode"
)

// Coordinator is the cluster coordinator role: ingest, hub, segmenters,
// scheduler, packager and the origin, on a shared Redis and object store.
// Workers run as separate processes (Worker).
type Coordinator struct {
	node
}

// NewCoordinator returns a coordinator for cfg, which Load (and
// ApplyFlags) validated; it needs redis.url and store.url. Start it with Run.
func NewCoordinator(cfg *config.Config, log *slog.Logger) (*Coordinator, error) {
	if err := clusterConfig(cfg, config.RoleCoordinator); err != nil {
		return nil, err
	}
	return &Coordinator{node: newNode(cfg, log, "coordinator")}, nil
}

// Run serves until ctx ends, then shuts down in order: ingest, segmenters
// (flushed), the wait for outstanding segments (bounded by
// worker.shutdown_timeout), scheduler, packager, HTTP.
func (c *Coordinator) Run(ctx context.Context) error {
	ropts, err := c.cfg.Redis.UniversalOptions()
	if err != nil {
		return fmt.Errorf("coordinator: 'redis.url' %w", err)
	}
	st, err := openStore(ctx, c.cfg, c.log)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	defer st.Close()
	return c.serve(ctx, ropts, st, nil)
}

// Worker is the cluster worker role: one worker.Worker with the transcode
// engine, taking segments from the shared Redis and writing renditions to
// the shared store.
type Worker struct {
	cfg *config.Config
	log *slog.Logger

	addrMu   sync.Mutex
	httpAddr net.Addr
}

// NewWorker returns a worker for cfg, which Load (and ApplyFlags)
// validated; it needs redis.url and store.url. Start it with Run.
func NewWorker(cfg *config.Config, log *slog.Logger) (*Worker, error) {
	if err := clusterConfig(cfg, config.RoleWorker); err != nil {
		return nil, err
	}
	if !transcode.HasLibav {
		return nil, errNoLibav
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{cfg: cfg, log: log}, nil
}

// Run works until ctx ends, then drains (see worker.Worker.Run).
func (w *Worker) Run(ctx context.Context) error {
	ropts, err := w.cfg.Redis.UniversalOptions()
	if err != nil {
		return fmt.Errorf("worker: 'redis.url' %w", err)
	}
	st, err := openStore(ctx, w.cfg, w.log)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer st.Close()
	wh, err := newWorkerHTTP(w.cfg.HTTP.Addr, ropts, w.log.With("component", "http"))
	if err != nil {
		return err
	}
	w.addrMu.Lock()
	w.httpAddr = wh.ln.Addr()
	w.addrMu.Unlock()
	httpDone := make(chan error, 1)
	go func() { httpDone <- wh.serve() }()
	wk := newWorker(w.cfg, w.log, ropts, st)
	wk.OnResult = wh.m.observe
	wh.running.Store(true)
	w.log.Info("worker ready", "http", wh.ln.Addr().String())
	err = wk.Run(ctx)
	wh.running.Store(false)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	wh.close(sctx)
	if herr := <-httpDone; herr != nil && err == nil {
		err = fmt.Errorf("worker: http: %w", herr)
	}
	return err
}

// HTTPAddr is the address of the worker's health and metrics server once
// Run has started it; nil before.
func (w *Worker) HTTPAddr() net.Addr {
	w.addrMu.Lock()
	defer w.addrMu.Unlock()
	return w.httpAddr
}

// errNoLibav refuses to start a role that transcodes in a static build,
// which would take segments off the queue only to fail them.
var errNoLibav = errors.New("this livegrid was built with CGO_ENABLED=0 and cannot transcode; the worker and standalone roles need a cgo build (make build)")

// clusterConfig checks what a cluster role needs: Redis (ValidateRole) and
// a store the whole cluster shares, so store.url may not default to a
// local folder.
func clusterConfig(cfg *config.Config, role config.Role) error {
	if err := cfg.ValidateRole(role); err != nil {
		return err
	}
	if cfg.Store.URL == "" {
		return fmt.Errorf("'store.url' is required by the %s role (a cluster shares the store): s3://bucket?endpoint=...", role)
	}
	return nil
}

func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	st, err := store.Open(ctx, cfg.StoreURL(), store.Options{Logger: log.With("component", "store")})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return st, nil
}

// newWorker is the worker every role that transcodes runs.
func newWorker(cfg *config.Config, log *slog.Logger, ropts *redis.UniversalOptions, st store.Store) *worker.Worker {
	return &worker.Worker{
		ID: cfg.WorkerID(), Redis: *ropts, Concurrency: cfg.Worker.Concurrency,
		Transcoder: &worker.EngineTranscoder{Engine: transcode.New(transcode.Options{
			Log: log.With("component", "transcode"), Encoder: encoderKind(cfg.Transcode.Encoder),
		})},
		Store: st, SharedQueue: cfg.Worker.SharedQueue, ShutdownTimeout: cfg.Worker.ShutdownTimeout,
		Log: log,
	}
}

// node is the coordinator half every role with an origin shares: listeners,
// readiness and the pipeline from ingest to the packager.
type node struct {
	cfg  *config.Config
	log  *slog.Logger
	role string

	ready              atomic.Bool
	readyCh            chan struct{}
	rtmpAddr, httpAddr net.Addr
	addrMu             sync.Mutex
	closeOrigin        func() // set by handler
	ladders            ladderOverrides
}

func newNode(cfg *config.Config, log *slog.Logger, role string) node {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return node{cfg: cfg, log: log, role: role, readyCh: make(chan struct{})}
}

// Ready is closed once every listener is up and every component runs.
func (n *node) Ready() <-chan struct{} { return n.readyCh }

// Addrs returns the RTMP and HTTP listen addresses; valid after Ready.
func (n *node) Addrs() (rtmp, httpAddr net.Addr) {
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	return n.rtmpAddr, n.httpAddr
}

// serve runs the coordinator on Redis and st until ctx ends; local, when
// set, is a worker in the same process, run beside the scheduler and
// stopped after the outstanding segments drained. Every goroutine it
// starts has ended when it returns.
func (n *node) serve(ctx context.Context, ropts *redis.UniversalOptions, st store.Store, local *worker.Worker) (err error) {
	cfg, log, role := n.cfg, n.log, n.role
	rdb := redis.NewUniversalClient(ropts)
	defer rdb.Close()

	pk, err := packager.New(packager.Config{
		Store: st, Logger: log,
		TargetDuration: cfg.Segments.Duration, Window: cfg.Packager.Window,
		Grace: cfg.Packager.Grace, MaxHold: cfg.Packager.MaxHold,
	})
	if err != nil {
		return fmt.Errorf("%s: packager: %w", role, err)
	}
	defer func() {
		if cerr := pk.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: close packager: %w", role, cerr)
		}
	}()

	schedID := "" // the host name: stable across restarts of one machine
	if local != nil {
		schedID = role
	}
	results := newResultQueue()
	m := newMetrics()
	sched, err := scheduler.New(scheduler.Config{
		ID: schedID, Queue: asynqqueue.New(rdb, 0), Workers: queue.NewRegistry(rdb, 0),
		Results: queue.NewResultLog(rdb),
		OnResult: func(r queue.Result) {
			m.observe(r)
			results.push(r)
		},
		SharedQueue: cfg.Worker.SharedQueue, Log: log,
	})
	if err != nil {
		return fmt.Errorf("%s: scheduler: %w", role, err)
	}
	m.watch(componentStats{packager: pk.Metrics, scheduler: sched.Stats})

	hubPolicy := hub.Refuse
	if cfg.Publish.Takeover {
		hubPolicy = hub.TakeOver
	}
	h := hub.New(hub.Config{Policy: hubPolicy, Logger: log})
	defer h.Close()

	rtmpLn, err := net.Listen("tcp", cfg.RTMP.Addr)
	if err != nil {
		return fmt.Errorf("%s: rtmp listen: %w", role, err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		rtmpLn.Close()
		return fmt.Errorf("%s: http listen: %w", role, err)
	}
	n.addrMu.Lock()
	n.rtmpAddr, n.httpAddr = rtmpLn.Addr(), httpLn.Addr()
	n.addrMu.Unlock()

	// Background components, each with its own context so shutdown can
	// stop them in order.
	var bg sync.WaitGroup
	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSched()
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorker()
	bg.Add(2)
	go func() {
		defer bg.Done()
		if err := sched.Run(schedCtx); err != nil {
			log.Error("scheduler stopped", "err", err)
		}
	}()
	go func() {
		defer bg.Done()
		results.deliver(pk, log.With("component", "deliver"))
	}()
	if local != nil {
		bg.Add(1)
		go func() {
			defer bg.Done()
			if err := local.Run(workerCtx); err != nil {
				log.Error("worker stopped", "err", err)
			}
		}()
	}

	// One ingest pipeline per published stream.
	lv := &live{cfg: cfg, log: log, store: st, sched: sched, pk: pk, ctx: schedCtx, ladders: &n.ladders}
	stopWatch := h.Watch(lv.event)

	policy, closeGeo, err := access.Policy(cfg, log)
	if err != nil {
		rtmpLn.Close()
		httpLn.Close()
		return fmt.Errorf("%s: %w", role, err)
	}
	defer closeGeo()
	vs := newViewers(cfg, h, rdb, m, role, httpLn.Addr(), log)
	vs.ladders = &n.ladders
	bg.Add(1)
	go func() {
		defer bg.Done()
		vs.run(schedCtx)
	}()
	srv := &ingest.Server{
		Hub: h, Auth: policy, AuthPlay: policy.AuthorizePlay, Log: log,
		App: cfg.RTMP.App, IdleTimeout: cfg.RTMP.IdleTimeout,
	}
	ingestDone := make(chan error, 1)
	go func() { ingestDone <- srv.Serve(rtmpLn) }()
	puller := &ingest.Puller{Hub: h, Log: log, IdleTimeout: cfg.RTMP.IdleTimeout}
	defer puller.Close()

	httpSrv := &http.Server{
		Handler:           cors.Restrict(cfg.HTTP.CORSOrigins, n.handler(h, pk, st, m, policy, vs, puller, log)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	httpSrv.RegisterOnShutdown(n.closeOrigin)
	httpDone := make(chan error, 1)
	go func() {
		if cfg.HTTP.TLSCert != "" {
			httpDone <- httpSrv.ServeTLS(httpLn, cfg.HTTP.TLSCert, cfg.HTTP.TLSKey) // HTTP/2 too
			return
		}
		httpDone <- httpSrv.Serve(httpLn)
	}()

	for _, p := range cfg.Pull {
		if err := puller.Start(p.Stream, p.URL); err != nil {
			log.Error("pull not started", "stream", p.Stream, "err", err)
		}
	}
	n.ready.Store(true)
	close(n.readyCh)
	log.Info(role+" ready", "rtmp", rtmpLn.Addr().String(), "http", httpLn.Addr().String(), "store", cfg.StoreURL())

	var runErr error
	select {
	case <-ctx.Done():
	case e := <-ingestDone:
		runErr = fmt.Errorf("%s: rtmp: %w", role, e)
		ingestDone <- nil
	case e := <-httpDone:
		runErr = fmt.Errorf("%s: http: %w", role, e)
		httpDone <- nil
	}
	log.Info(role + " shutting down")
	n.ready.Store(false)

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
	puller.Close()
	h.Close()
	stopWatch()
	lv.close()

	// 2. Let the workers finish what was submitted, bounded by the
	// worker shutdown timeout, then stop the local worker and the scheduler.
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

// handler is the HTTP mux: HTTP-FLV and HLS/DASH under /live/, health,
// Prometheus metrics.
func (n *node) handler(h *hub.Hub, pk *packager.Packager, st store.Store, m *metrics, policy *auth.Policy, vs *viewers, puller *ingest.Puller, log *slog.Logger) http.Handler {
	flvH := &hub.FLVHandler{Hub: h, Log: log.With("component", "httpflv")}
	origin := &packager.Origin{Packager: pk, Store: st, Logger: log.With("component", "origin")}
	n.closeOrigin = origin.Close // ends rendition FLV viewers at shutdown
	mux := http.NewServeMux()
	mux.Handle("/live/", auth.Middleware(policy, vs.count(policy, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, "/live/")
		if strings.HasSuffix(rest, ".flv") && !strings.Contains(rest, "/") {
			flvH.ServeHTTP(w, r)
			return
		}
		origin.ServeHTTP(w, r)
	}))))
	mux.Handle("/api/v1/", vs.api())
	mux.HandleFunc("/api/v1/streams/{stream}/ladder", n.ladders.handler)
	// Publishing over HTTP-FLV: POST (or PUT) on the path players GET.
	push := &ingest.PushHandler{Hub: h, Auth: policy, Log: log, IdleTimeout: n.cfg.RTMP.IdleTimeout}
	mux.Handle("POST /live/{file}", push)
	mux.Handle("PUT /live/{file}", push)
	registerPullAPI(mux, puller, log)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", m.handler(log.With("component", "metrics")))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !n.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}
