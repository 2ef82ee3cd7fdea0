package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/access"
	"github.com/livegrid/livegrid/internal/auth"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/stats"
)

// RTMPServer is an RTMP play server the edge runs beside HTTP (edge/flvrelay
// provides one; coordinator/ingest.Server has the same shape).
type RTMPServer interface {
	// Serve accepts connections on ln until Shutdown.
	Serve(ln net.Listener) error
	// Shutdown stops accepting and ends the sessions, bounded by ctx.
	Shutdown(ctx context.Context) error
}

// ObserveFunc receives each finished /live/ response: the request (after
// nothing rewrote it), the stream it belongs to ("" when none), one of the
// Protocol constants, the status code and the body bytes sent. For
// HTTP-FLV it is called when the viewer leaves.
type ObserveFunc func(r *http.Request, stream, protocol string, status int, bytes int64)

// Edge is the edge role: the HTTP server with the cache and origin
// failover, and the hooks for HTTP-FLV, RTMP play and viewer statistics.
// Set the hooks after New and before Run; Run uses them as they are then.
type Edge struct {
	// FLV serves GET /live/{stream}.flv and /live/{stream}/{rendition}.flv
	// once the play policy let them through; nil answers 404. Its request
	// context ends when the viewer leaves or the edge starts shutting down.
	FLV http.Handler
	// RTMP, when set, is served on rtmp.addr (--rtmp-addr) and shut down
	// with the edge. It applies the play policy itself (see Policy).
	RTMP RTMPServer
	// Observe, when set, is called after every /live/ response except CORS
	// preflights, on the request's goroutine: it must return quickly.
	Observe ObserveFunc
	// Stats, when set, is the viewer tracker GET /api/v1/streams reports.
	Stats *stats.Tracker

	background []func(context.Context) // run by Run until shutdown
	stop       []func() error          // called when Run ends

	cfg         *config.Config
	log         *slog.Logger
	now         func() time.Time
	policy      *auth.Policy
	closePolicy func() error
	tune        tuning

	pool    *pool  // set by Run before serving
	relay   *relay // set by Run before serving
	readyCh chan struct{}
	serving atomic.Bool
	ran     atomic.Bool

	addrMu             sync.Mutex
	httpAddr, rtmpAddr net.Addr
}

// tuning holds the edge's settings that have no configuration key; tests
// shorten them.
type tuning struct {
	probeInterval   time.Duration // how often every origin's /healthz is asked
	failThreshold   int           // consecutive 5xx answers that mark an origin down
	holdDown        time.Duration // after a failed request, probes do not restore an origin for this long (doubling while it flaps)
	fresh           freshness
	staleIfError    time.Duration // how long past freshness a 200 is served when no origin answers
	maxObject       int64         // largest body cached or shared between viewers
	shutdownTimeout time.Duration // how long in-flight responses get at shutdown
}

func defaultTuning(cfg *config.Config) tuning {
	return tuning{
		probeInterval:   time.Second,
		failThreshold:   3,
		holdDown:        2 * time.Second,
		fresh:           defaultFreshness(),
		staleIfError:    10 * time.Second,
		maxObject:       maxObjectFor(int64(cfg.Edge.CacheBytes)),
		shutdownTimeout: 10 * time.Second,
	}
}

// maxObjectFor is the largest object worth keeping in a cache of n bytes:
// an eighth of it, between 4 MiB (a few seconds of 1080p, so coalescing
// works even with the cache off) and 64 MiB.
func maxObjectFor(n int64) int64 {
	return min(max(n/8, 4<<20), 64<<20)
}

// New returns the edge for cfg, which Load (and ApplyFlags) validated; it
// needs edge.origins. The play policy is built here, so Policy can be
// handed to an RTMP server before Run. Start it with Run, once.
func New(cfg *config.Config, log *slog.Logger) (*Edge, error) {
	if cfg == nil {
		return nil, errors.New("edge: no config")
	}
	if err := cfg.ValidateRole(config.RoleEdge); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	log = discardLogger(log)
	policy, closePolicy, err := access.Policy(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	return &Edge{
		cfg: cfg, log: log, now: time.Now,
		policy: policy, closePolicy: closePolicy,
		tune:    defaultTuning(cfg),
		readyCh: make(chan struct{}),
	}, nil
}

// Policy is the play policy /live/ enforces, for an RTMP play server to
// enforce too (its denials then count in the same metric).
func (e *Edge) Policy() *auth.Policy { return e.policy }

// PrepareOriginRequest adds the edge's own credentials to a request for
// an origin. Origins enforce the same play policy, so when
// play.token_secret is set the edge signs a short-lived stream-scoped
// play token for the request's stream (the viewer's own token is never
// forwarded: one cached object serves every viewer). The FLV relay's
// upstream requests take it too (flvrelay.Config.PrepareRequest).
func (e *Edge) PrepareOriginRequest(r *http.Request) error {
	if len(e.policy.PlaySecrets) == 0 {
		return nil
	}
	stream := auth.StreamFromPath(r.URL.Path)
	if stream == "" {
		return nil
	}
	q := r.URL.Query()
	for k, v := range e.policy.PlaySecrets.SignStream(stream, e.now().Add(originTokenTTL), "") {
		q[k] = v
	}
	r.URL.RawQuery = q.Encode()
	return nil
}

// originTokenTTL is how long the edge's own origin tokens last: long
// enough for clock skew between edge and origin, short enough to be
// worthless when logged.
const originTokenTTL = 2 * time.Minute

// Ready is closed once the listeners are up and Run serves.
func (e *Edge) Ready() <-chan struct{} { return e.readyCh }

// Addr is the HTTP listen address; valid after Ready.
func (e *Edge) Addr() net.Addr {
	e.addrMu.Lock()
	defer e.addrMu.Unlock()
	return e.httpAddr
}

// RTMPAddr is the RTMP listen address, nil without an RTMP hook; valid
// after Ready.
func (e *Edge) RTMPAddr() net.Addr {
	e.addrMu.Lock()
	defer e.addrMu.Unlock()
	return e.rtmpAddr
}

// Run serves until ctx ends, then shuts down: readiness off, FLV viewers
// and RTMP sessions ended, in-flight HTTP responses finished (bounded),
// origin fetches and the prober stopped. Every goroutine it starts has
// ended when it returns.
func (e *Edge) Run(ctx context.Context) (err error) {
	if !e.ran.CompareAndSwap(false, true) {
		return errors.New("edge: Run called twice")
	}
	defer func() {
		if cerr := e.closePolicy(); cerr != nil && err == nil {
			err = fmt.Errorf("edge: close geoip db: %w", cerr)
		}
	}()
	cfg, log, t := e.cfg, e.log, e.tune

	var tlsConf *tls.Config
	if cfg.HTTP.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
		if err != nil {
			return fmt.Errorf("edge: 'http.tls_cert': %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("edge: http listen: %w", err)
	}
	var rtmpLn net.Listener
	if e.RTMP != nil {
		if rtmpLn, err = net.Listen("tcp", cfg.RTMP.Addr); err != nil {
			httpLn.Close()
			return fmt.Errorf("edge: rtmp listen: %w", err)
		}
	}
	e.addrMu.Lock()
	e.httpAddr = httpLn.Addr()
	if rtmpLn != nil {
		e.rtmpAddr = rtmpLn.Addr()
	}
	e.addrMu.Unlock()

	// Origin fetches and probes outlive single requests, not the edge;
	// drain ends long-lived FLV responses when shutdown starts.
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	drain, startDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer startDrain()

	client := newOriginClient(cfg.Edge.OriginTimeout)
	defer client.CloseIdleConnections()
	c := newCache(int64(cfg.Edge.CacheBytes))
	p := newPool(cfg.Edge.Origins, client, cfg.Edge.OriginTimeout, e.now, log.With("component", "origins"))
	p.fresh, p.failThreshold, p.holdDown = t.fresh, t.failThreshold, t.holdDown
	p.maxHold = max(p.maxHold, t.holdDown)
	p.prepare = e.PrepareOriginRequest
	e.pool = p
	rl := &relay{
		cache: c, origins: p, maxObject: t.maxObject, staleIfError: t.staleIfError,
		now: e.now, log: log.With("component", "cache"), ctx: bgCtx,
	}
	e.relay = rl
	m := newMetrics(rl, c, p, e.policy)

	var bg sync.WaitGroup
	bg.Go(func() { p.run(bgCtx, t.probeInterval) })
	for _, f := range e.background {
		bg.Go(func() { f(bgCtx) })
	}

	srv := &http.Server{
		Handler:           e.handler(rl, m, drain),
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	httpDone := make(chan error, 1)
	go func() {
		if tlsConf != nil {
			httpDone <- srv.ServeTLS(httpLn, "", "") // HTTP/2 comes with it
			return
		}
		httpDone <- srv.Serve(httpLn)
	}()
	rtmpDone := make(chan error, 1)
	if rtmpLn != nil {
		go func() { rtmpDone <- e.RTMP.Serve(rtmpLn) }()
	}

	e.serving.Store(true)
	close(e.readyCh)
	attrs := []any{"http", httpLn.Addr().String(), "tls", tlsConf != nil, "origins", cfg.Edge.Origins,
		"cache_bytes", int64(cfg.Edge.CacheBytes), "origin_timeout", cfg.Edge.OriginTimeout,
		"flv", e.FLV != nil, "observe", e.Observe != nil}
	if rtmpLn != nil {
		attrs = append(attrs, "rtmp", rtmpLn.Addr().String())
	}
	log.Info("edge ready", attrs...)

	var runErr error
	select {
	case <-ctx.Done():
	case herr := <-httpDone:
		runErr = fmt.Errorf("edge: http: %w", herr)
		httpDone <- nil
	case rerr := <-rtmpDone:
		runErr = fmt.Errorf("edge: rtmp: %w", rerr)
		rtmpDone <- nil
	}
	log.Info("edge shutting down")
	e.serving.Store(false)
	startDrain()

	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.shutdownTimeout)
	defer cancel()
	if rtmpLn != nil {
		if err := e.RTMP.Shutdown(shutCtx); err != nil {
			log.Warn("rtmp shutdown", "err", err)
		}
		_ = rtmpLn.Close()
		select {
		case <-rtmpDone:
		case <-shutCtx.Done():
			log.Warn("rtmp server did not stop in time")
		}
	}
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("http shutdown: closing what is left", "err", err)
		_ = srv.Close()
	}
	if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http serve", "err", err)
	}
	stopBG()
	bg.Wait()
	for _, f := range e.stop {
		if err := f(); err != nil {
			log.Warn("edge stop", "err", err)
		}
	}
	log.Info("edge stopped")
	return runErr
}
