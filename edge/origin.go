package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoOrigin means no origin gave a usable answer: each one refused the
// connection, timed out or failed mid-body.
var ErrNoOrigin = errors.New("edge: no origin answered")

// errKind is why one origin request failed, a metric label.
type errKind int

const (
	errConnect errKind = iota // dial, TLS or request write failed, connection reset
	errTimeout                // edge.origin_timeout passed
	errStatus                 // the origin answered 5xx
	errBody                   // the body broke off
	numErrKinds
)

func (k errKind) String() string {
	return [...]string{"connect", "timeout", "status", "body"}[k]
}

// origin is one upstream and what the edge knows of its health.
type origin struct {
	url  string // base URL without a trailing slash
	name string // url without a password: the metric label and log value

	// guarded by pool.mu
	up        bool // answering; false until the first probe or fetch says so
	checked   bool // a probe or fetch has decided up
	fails     int  // consecutive 5xx answers
	upSince   time.Time
	downUntil time.Time     // a probe does not bring it back before this
	hold      time.Duration // the current hold-down after a failed request

	requests atomic.Uint64
	errors   [numErrKinds]atomic.Uint64
}

// pool is the ordered origin list: a fetch tries the healthy origins in
// configured order, then the others, and moves on when one fails. A
// connection failure or timeout marks an origin down at once; 5xx answers
// do after failThreshold in a row (an origin answers 503 for a stream it
// has not packaged yet, which says nothing about its health).
//
// probe asks every origin's /healthz: a failed probe marks it down, a
// good one brings it back, but not within the hold-down that follows a
// failed request. An origin whose /healthz is fine while its answers are
// not (overloaded, a broken disk) would otherwise cost a viewer request a
// timeout at every probe; the hold-down doubles each time an origin fails
// again soon after it came back, up to maxHold.
type pool struct {
	origins       []*origin
	client        *http.Client
	timeout       time.Duration // one origin request, headers and buffered body
	failThreshold int
	holdDown      time.Duration // first hold-down after a failed request
	maxHold       time.Duration
	fresh         freshness // how long the objects it makes stay fresh
	now           func() time.Time
	log           *slog.Logger
	// prepare, when set, adds the edge's own credentials to an origin
	// request (Edge.PrepareOriginRequest).
	prepare func(*http.Request) error

	mu sync.Mutex
}

func newPool(urls []string, client *http.Client, timeout time.Duration, now func() time.Time, log *slog.Logger) *pool {
	p := &pool{
		client: client, timeout: timeout, failThreshold: 3, holdDown: 2 * time.Second, maxHold: time.Minute,
		fresh: defaultFreshness(), now: now, log: log,
	}
	for _, u := range urls {
		o := &origin{url: strings.TrimRight(u, "/")}
		o.name = o.url
		if pu, err := url.Parse(o.url); err == nil {
			o.name = pu.Redacted()
		}
		p.origins = append(p.origins, o)
	}
	return p
}

// newOriginClient is the HTTP client for origin requests. Compression
// stays off so cached bytes equal the origin's and Content-Length holds.
func newOriginClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}}
}

// order returns the origins to try: up ones first, each group in
// configured order.
func (p *pool) order() []*origin {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*origin, 0, len(p.origins))
	for _, o := range p.origins {
		if o.up {
			out = append(out, o)
		}
	}
	for _, o := range p.origins {
		if !o.up {
			out = append(out, o)
		}
	}
	return out
}

// current is the origin fetches go to first, nil when none is up.
func (p *pool) current() *origin {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range p.origins {
		if o.up {
			return o
		}
	}
	return nil
}

// ready reports whether at least one origin is up.
func (p *pool) ready() bool { return p.current() != nil }

// passthrough is an origin answer too big to keep, streamed to one viewer.
type passthrough struct {
	status int
	header http.Header
	length int64 // -1 when unknown
	body   io.Reader
	close  func() // closes the origin response
}

// statusError is an origin's 5xx answer, kept to show the viewer when no
// other origin does better.
type statusError struct {
	obj *object
	err error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// fetch gets path from the first origin that answers it: 2xx, 3xx and 4xx
// answers count as answers, 5xx and transport failures move on. A body
// over maxBody comes back as a passthrough for the caller to stream and
// close. When every origin failed and one answered 5xx, the last such
// answer is returned as an object that is not to be stored.
func (p *pool) fetch(ctx context.Context, path string, maxBody int64) (*object, *passthrough, error) {
	var (
		lastErr error
		last5xx *object
	)
	for _, o := range p.order() {
		obj, pt, err := p.try(ctx, o, path, maxBody)
		if err == nil {
			return obj, pt, nil
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("edge: fetch %s: %w", path, ctx.Err())
		}
		if se := (*statusError)(nil); errors.As(err, &se) {
			last5xx = se.obj
		}
		lastErr = err
	}
	if last5xx != nil {
		return last5xx, nil, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no origin configured")
	}
	return nil, nil, fmt.Errorf("%w: %s: %w", ErrNoOrigin, path, lastErr)
}

// try is one request to one origin, bounded by p.timeout up to the end of
// a buffered body (or the headers of a passthrough).
func (p *pool) try(ctx context.Context, o *origin, path string, maxBody int64) (*object, *passthrough, error) {
	actx, cancel := context.WithCancel(ctx)
	var timedOut atomic.Bool
	timer := time.AfterFunc(p.timeout, func() {
		timedOut.Store(true)
		cancel()
	})
	fail := func(kind errKind, err error) error {
		timer.Stop()
		cancel()
		if timedOut.Load() {
			kind, err = errTimeout, fmt.Errorf("%w: no answer in %v (%v)", context.DeadlineExceeded, p.timeout, err)
		}
		if ctx.Err() == nil { // the edge stopping is no fault of the origin
			p.failed(o, kind, err)
		}
		return fmt.Errorf("origin %s: %w", o.name, err)
	}

	req, err := http.NewRequestWithContext(actx, http.MethodGet, o.url+path, nil)
	if err == nil && p.prepare != nil {
		err = p.prepare(req)
	}
	if err != nil { // no fault of the origin's
		timer.Stop()
		cancel()
		return nil, nil, fmt.Errorf("origin %s: %w", o.name, err)
	}
	req.Header.Set("User-Agent", "livegrid-edge")
	o.requests.Add(1)
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, nil, fail(errConnect, err)
	}
	if resp.StatusCode >= 500 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		obj := newObject(path, resp.StatusCode, resp.Header, body, p.now(), p.fresh) // never stored: 5xx
		return nil, nil, &statusError{obj: obj, err: fail(errStatus, fmt.Errorf("status %d", resp.StatusCode))}
	}

	var buf []byte
	if resp.ContentLength <= maxBody {
		buf, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		if err != nil {
			resp.Body.Close()
			return nil, nil, fail(errBody, err)
		}
	}
	if resp.ContentLength > maxBody || int64(len(buf)) > maxBody {
		if !timer.Stop() {
			resp.Body.Close()
			return nil, nil, fail(errTimeout, context.DeadlineExceeded)
		}
		p.succeeded(o)
		return nil, &passthrough{
			status: resp.StatusCode, header: resp.Header, length: resp.ContentLength,
			body:  io.MultiReader(bytes.NewReader(buf), resp.Body),
			close: func() { resp.Body.Close(); cancel() },
		}, nil
	}
	resp.Body.Close()
	timer.Stop() // the body is whole; a timer firing now changes nothing
	cancel()
	p.succeeded(o)
	p.log.Debug("origin fetch", "origin", o.name, "path", path, "status", resp.StatusCode, "bytes", len(buf),
		"took", time.Since(start).Round(time.Millisecond))
	return newObject(path, resp.StatusCode, resp.Header, buf, p.now(), p.fresh), nil, nil
}

// failed records a failed request and marks the origin down, held down,
// when it must.
func (p *pool) failed(o *origin, kind errKind, err error) {
	o.errors[kind].Add(1)
	now := p.now()
	p.mu.Lock()
	o.fails++
	down := kind != errStatus || o.fails >= p.failThreshold
	wasUp := o.up
	if down {
		switch {
		case o.hold == 0:
			o.hold = p.holdDown
		case wasUp && now.Sub(o.upSince) < 2*o.hold:
			o.hold = min(2*o.hold, p.maxHold) // flapping: back off
		case wasUp:
			o.hold = p.holdDown
		}
		o.up, o.checked = false, true
		o.downUntil = now.Add(o.hold)
	}
	hold := o.hold
	p.mu.Unlock()
	if down && wasUp {
		p.log.Warn("origin down", "origin", o.name, "kind", kind.String(), "hold", hold, "err", err)
	}
}

// succeeded marks the origin up after it answered a request.
func (p *pool) succeeded(o *origin) {
	p.setUp(o, false)
}

// setUp marks the origin up; a probe does not within a hold-down.
func (p *pool) setUp(o *origin, probe bool) {
	now := p.now()
	p.mu.Lock()
	if probe && !o.up && now.Before(o.downUntil) {
		p.mu.Unlock()
		return
	}
	if !probe {
		o.fails = 0 // only a real answer says the 5xx run is over
	}
	wasUp, first := o.up, !o.checked
	if !wasUp {
		o.upSince = now
	}
	o.up, o.checked = true, true
	p.mu.Unlock()
	switch {
	case first:
		p.log.Info("origin up", "origin", o.name)
	case !wasUp:
		p.log.Info("origin back up", "origin", o.name)
	}
}

// markDown marks the origin down after a failed probe.
func (p *pool) markDown(o *origin, err error) {
	p.mu.Lock()
	wasUp, first := o.up, !o.checked
	o.up, o.checked = false, true
	p.mu.Unlock()
	if wasUp || first {
		p.log.Warn("origin down", "origin", o.name, "err", err)
	}
}

// run probes every origin now and then every interval until ctx ends.
func (p *pool) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe asks every origin's /healthz at once and waits for the answers.
func (p *pool) probe(ctx context.Context) {
	var wg sync.WaitGroup
	for _, o := range p.origins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.probeOne(ctx, o)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				p.markDown(o, err)
			default:
				p.setUp(o, true)
			}
		}()
	}
	wg.Wait()
}

func (p *pool) probeOne(ctx context.Context, o *origin) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url+"/healthz", nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "livegrid-edge")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe: /healthz answered %d", resp.StatusCode)
	}
	return nil
}

// originStats is a snapshot of one origin for metrics.
type originStats struct {
	name          string
	up, current   bool
	requests      uint64
	errors        [numErrKinds]uint64
	consecutive5x int
}

func (p *pool) stats() []originStats {
	cur := p.current()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]originStats, len(p.origins))
	for i, o := range p.origins {
		s := originStats{name: o.name, up: o.up, current: o == cur, requests: o.requests.Load(), consecutive5x: o.fails}
		for k := range s.errors {
			s.errors[k] = o.errors[k].Load()
		}
		out[i] = s
	}
	return out
}
