// Package flvrelay is the edge's HTTP-FLV and RTMP play relay: the
// first viewer of a stream makes the relay open one upstream HTTP-FLV
// connection to an origin, whose tags it publishes into a hub of its
// own; every later viewer of the stream reads from that hub, with its
// GOP cache and bounded per-viewer queues. When the upstream fails, ends
// or goes quiet, the relay reconnects to the next origin while viewers
// stay connected, and keeps their timeline continuous. The upstream is
// closed a linger after the last viewer leaves.
package flvrelay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/hub"
)

var (
	// ErrNotFound means no origin has the stream.
	ErrNotFound = errors.New("flvrelay: stream not found")
	// ErrUpstream means no origin could be read: each one failed, and none
	// said the stream does not exist.
	ErrUpstream = errors.New("flvrelay: no origin available")
	// ErrClosed means the relay is closed.
	ErrClosed = errors.New("flvrelay: closed")
	// errIdle ends an upstream that sent nothing for IdleTimeout.
	errIdle = errors.New("flvrelay: upstream idle")
	// errUpstreamEnded ends an upstream whose response ended: the stream
	// is live for the relay until every origin says otherwise.
	errUpstreamEnded = errors.New("flvrelay: upstream ended")
)

// Defaults for a zero Config.
const (
	DefaultIdleTimeout = 2 * time.Second
	DefaultLinger      = 5 * time.Second
	DefaultRetryDelay  = 500 * time.Millisecond
	DefaultGiveUp      = 10 * time.Second
	DefaultPrefix      = "/live/"
)

// Config sets up a Relay; the zero value of each field but Origins picks
// its default.
type Config struct {
	// Origins are the origins' base URLs in order of preference, such as
	// "http://origin-1:8080". A stream's upstream is GET {origin}{path}
	// with the viewer's path and never the viewer's query.
	Origins []string
	// Client makes the upstream requests. It should have no overall
	// Timeout: upstreams are endless responses, watched by IdleTimeout.
	// Default: a client of its own whose idle connections Close drops.
	Client *http.Client
	// Hub receives the upstreams' tags, one stream per path: "cam" for
	// /live/cam.flv, "cam__720p" for /live/cam/720p.flv (hub names hold no
	// '/'). Default: a hub of the relay's own, closed by Close. The edge's
	// RTMP server plays from the same hub.
	Hub *hub.Hub
	// PrepareRequest, if set, decorates each upstream request, e.g. with
	// the edge's own credentials for the origin.
	PrepareRequest func(*http.Request) error
	// OnViewer, if set, is called as each HTTP-FLV viewer starts (protocol
	// "flv"; stream is "cam" or "cam/720p"); done, if not nil, is called
	// with the bytes sent when the viewer leaves.
	OnViewer func(stream, protocol, remoteAddr string) (done func(bytesOut int64))

	// Logger receives upstream, failover and viewer events; default none.
	Logger *slog.Logger
	// Clock runs the relay's timers; default the time package's.
	Clock Clock

	// IdleTimeout is how long an upstream may send nothing, from the
	// request on, before its origin counts as dead; default 2 s.
	IdleTimeout time.Duration
	// Linger keeps a stream's upstream open after its last viewer has
	// left, for the next one; default 5 s.
	Linger time.Duration
	// RetryDelay is the pause after every origin has failed in a row;
	// default 500 ms.
	RetryDelay time.Duration
	// GiveUp ends a live stream for its viewers once no origin has served
	// it for this long; default 10 s.
	GiveUp time.Duration
	// WriteTimeout bounds one write to an HTTP-FLV viewer; a viewer that
	// stops reading is dropped after it. Default hub.DefaultFLVWriteTimeout.
	WriteTimeout time.Duration
	// Prefix is the path before the stream name; default "/live/".
	Prefix string
}

// Relay relays live streams from origins to viewers. Its methods are
// safe for concurrent use.
type Relay struct {
	cfg     Config
	origins []string // validated, without a trailing slash
	hub     *hub.Hub
	ownHub  bool
	client  *http.Client
	ownCli  bool
	log     *slog.Logger
	ctx     context.Context // ends at Close; parent of every pull's
	cancel  context.CancelFunc
	wg      sync.WaitGroup // one per pull goroutine

	mu     sync.Mutex
	closed bool
	pulls  map[string]*pull // by upstream path
	fails  map[string]uint64

	stats counters
}

// counters are the relay's metrics that are not derived from its state.
type counters struct {
	upstreams, viewers, holds         atomic.Int64
	requests, reconnects              atomic.Uint64
	bytesIn, bytesOut, droppedViewers atomic.Uint64
}

// Metrics is a snapshot of a relay's gauges and counters.
type Metrics struct {
	// Streams is the number of streams held open: connecting, live or
	// lingering.
	Streams int
	// Upstreams is the number of upstream responses being read now.
	Upstreams int
	// Viewers is the number of HTTP-FLV viewers connected now; Holds the
	// number of Acquire holds (RTMP players) open now.
	Viewers, Holds int
	// UpstreamRequests counts upstream requests; Reconnects those made for
	// a stream already live, after its upstream failed.
	UpstreamRequests, Reconnects uint64
	// BytesIn counts upstream bytes, BytesOut bytes sent to HTTP-FLV
	// viewers.
	BytesIn, BytesOut uint64
	// DroppedViewers counts HTTP-FLV viewers dropped for being too slow.
	DroppedViewers uint64
	// OriginFailures counts, by origin base URL, upstream requests that
	// failed or whose stream broke off.
	OriginFailures map[string]uint64
}

// New checks cfg and returns a Relay.
func New(cfg Config) (*Relay, error) {
	if len(cfg.Origins) == 0 {
		return nil, fmt.Errorf("flvrelay: 'origins' must name at least one origin")
	}
	origins := make([]string, len(cfg.Origins))
	for i, o := range cfg.Origins {
		u, err := url.Parse(o)
		switch {
		case err != nil:
			return nil, fmt.Errorf("flvrelay: 'origins[%d]': %w", i, err)
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
			return nil, fmt.Errorf("flvrelay: 'origins[%d]' must be an http or https URL, not %q", i, o)
		case u.RawQuery != "" || u.Fragment != "":
			return nil, fmt.Errorf("flvrelay: 'origins[%d]' must have no query or fragment: %q", i, o)
		}
		origins[i] = strings.TrimRight(o, "/")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"idle_timeout", cfg.IdleTimeout}, {"linger", cfg.Linger}, {"retry_delay", cfg.RetryDelay}, {"give_up", cfg.GiveUp}, {"write_timeout", cfg.WriteTimeout}} {
		if d.v < 0 {
			return nil, fmt.Errorf("flvrelay: '%s' must not be negative, not %v", d.key, d.v)
		}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(cfg.Prefix, "/") || !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("flvrelay: 'prefix' must start and end with '/', not %q", cfg.Prefix)
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Linger == 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.GiveUp == 0 {
		cfg.GiveUp = DefaultGiveUp
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = hub.DefaultFLVWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	r := &Relay{
		cfg:     cfg,
		origins: origins,
		hub:     cfg.Hub,
		client:  cfg.Client,
		log:     cfg.Logger.With("component", "flvrelay"),
		pulls:   make(map[string]*pull),
		fails:   make(map[string]uint64),
	}
	if r.hub == nil {
		r.hub = hub.New(hub.Config{Logger: cfg.Logger, Now: cfg.Clock.Now})
		r.ownHub = true
	}
	if r.client == nil {
		r.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		r.ownCli = true
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Hub returns the hub the relay publishes into, for the edge's RTMP
// server to play from.
func (r *Relay) Hub() *hub.Hub { return r.hub }

// Acquire opens the source stream of that name (/live/{stream}.flv
// upstream) unless it is open already, waits until it is live, and holds
// it open until release is called; the stream is then in Hub under the
// same name. It suits ingest.Server's OnPlay hook. The error wraps
// ErrNotFound when no origin has the stream.
func (r *Relay) Acquire(ctx context.Context, stream string) (release func(), err error) {
	if err := hub.ValidateName(stream); err != nil {
		return nil, fmt.Errorf("flvrelay: acquire: %w", err)
	}
	_, unhold, err := r.hold(ctx, streamPath{stream: stream})
	if err != nil {
		return nil, err
	}
	r.stats.holds.Add(1)
	return sync.OnceFunc(func() {
		r.stats.holds.Add(-1)
		unhold()
	}), nil
}

// Metrics returns a snapshot of the relay's metrics.
func (r *Relay) Metrics() Metrics {
	r.mu.Lock()
	m := Metrics{Streams: len(r.pulls), OriginFailures: make(map[string]uint64, len(r.fails))}
	for o, n := range r.fails {
		m.OriginFailures[o] = n
	}
	r.mu.Unlock()
	m.Upstreams = int(r.stats.upstreams.Load())
	m.Viewers = int(r.stats.viewers.Load())
	m.Holds = int(r.stats.holds.Load())
	m.UpstreamRequests = r.stats.requests.Load()
	m.Reconnects = r.stats.reconnects.Load()
	m.BytesIn = r.stats.bytesIn.Load()
	m.BytesOut = r.stats.bytesOut.Load()
	m.DroppedViewers = r.stats.droppedViewers.Load()
	return m
}

// Close closes every upstream, ends every stream (viewers see the end)
// and waits for the relay's goroutines. Later viewers get 503 and later
// Acquires ErrClosed. It is idempotent.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for _, p := range r.pulls {
		p.stopLinger()
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	if r.ownHub {
		r.hub.Close()
	}
	if r.ownCli {
		r.client.CloseIdleConnections()
	}
	return nil
}

// hold returns the live stream of a path, opening its upstream if no
// viewer holds it yet, and a release to call when the viewer leaves.
func (r *Relay) hold(ctx context.Context, sp streamPath) (*hub.Stream, func(), error) {
	path := sp.upstreamPath(r.cfg.Prefix)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, nil, fmt.Errorf("flvrelay: open %s: %w", path, ErrClosed)
	}
	p := r.pulls[path]
	if p == nil || p.stopping {
		p = r.startPull(sp, path, p)
	}
	p.refs++
	p.stopLinger()
	r.mu.Unlock()

	release := sync.OnceFunc(func() { r.unref(p) })
	select {
	case <-p.ready:
	case <-ctx.Done():
		release()
		return nil, nil, fmt.Errorf("flvrelay: open %s: %w", path, ctx.Err())
	}
	if p.err != nil {
		release()
		return nil, nil, p.err
	}
	return p.stream, release, nil
}

// unref drops a viewer's hold; the last one starts the linger.
func (r *Relay) unref(p *pull) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.refs--
	if p.refs > 0 || p.stopping || r.closed {
		return
	}
	var t Timer
	t = r.cfg.Clock.AfterFunc(r.cfg.Linger, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if p.linger != t || p.refs > 0 || p.stopping {
			return
		}
		p.linger = nil
		p.stopping = true
		p.log.Info("last viewer gone; closing upstream", "linger", r.cfg.Linger)
		p.cancel()
	})
	p.linger = t
}

// fail counts an origin's failure.
func (r *Relay) fail(origin string) {
	r.mu.Lock()
	r.fails[origin]++
	r.mu.Unlock()
}

// streamPath is what a viewer asks for: a stream's source, or one of its
// renditions.
type streamPath struct {
	stream, rendition string
}

// renditionSep joins a stream and a rendition into a hub name, which
// cannot hold '/'. A source stream of the same name is refused with a
// clash instead of being mixed up with the rendition.
const renditionSep = "__"

// key is the stream's name in the relay's hub.
func (sp streamPath) key() string {
	if sp.rendition == "" {
		return sp.stream
	}
	return sp.stream + renditionSep + sp.rendition
}

// String is the stream as viewer stats name it: "cam" or "cam/720p".
func (sp streamPath) String() string {
	if sp.rendition == "" {
		return sp.stream
	}
	return sp.stream + "/" + sp.rendition
}

func (sp streamPath) upstreamPath(prefix string) string {
	return prefix + sp.String() + ".flv"
}

// parsePath reads {prefix}{stream}.flv or {prefix}{stream}/{rendition}.flv.
func parsePath(prefix, path string) (streamPath, bool) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return streamPath{}, false
	}
	rest, ok = strings.CutSuffix(rest, ".flv")
	if !ok {
		return streamPath{}, false
	}
	var sp streamPath
	sp.stream, sp.rendition, _ = strings.Cut(rest, "/")
	if hub.ValidateName(sp.stream) != nil {
		return streamPath{}, false
	}
	if sp.rendition != "" || strings.HasSuffix(rest, "/") {
		if hub.ValidateName(sp.rendition) != nil || hub.ValidateName(sp.key()) != nil {
			return streamPath{}, false
		}
	}
	return sp, true
}
