package flvrelay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/hub"
)

// errStop ends a pull for good: its hub stream could not be published
// or has been ended by the hub.
var errStop = errors.New("flvrelay: stream stopped")

// pull is one stream's upstream side: a goroutine that reads the stream
// from one origin after another and writes its tags into the hub stream,
// which stays the same across upstreams so viewers stay attached.
type pull struct {
	r      *Relay
	sp     streamPath
	path   string // upstream path, e.g. /live/cam.flv
	log    *slog.Logger
	ctx    context.Context // ends the pull: linger over, relay closed
	cancel context.CancelFunc
	prev   *pull // an ending pull of the same path, to wait for

	// ready is closed once stream is live or err says why it is not;
	// both are set before and read only after.
	ready  chan struct{}
	stream *hub.Stream
	err    error
	done   chan struct{} // closed when the goroutine has finished

	// Guarded by r.mu.
	refs     int   // viewers and holds
	linger   Timer // pending close after the last viewer left
	stopping bool  // closing: a new viewer starts a new pull
}

// startPull starts the goroutine of a new pull; r.mu is held.
func (r *Relay) startPull(sp streamPath, path string, prev *pull) *pull {
	ctx, cancel := context.WithCancel(r.ctx)
	p := &pull{
		r:      r,
		sp:     sp,
		path:   path,
		log:    r.log.With("stream", sp.String()),
		ctx:    ctx,
		cancel: cancel,
		prev:   prev,
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
	}
	r.pulls[path] = p
	r.wg.Add(1)
	go p.run()
	return p
}

// stopLinger cancels a pending linger; r.mu is held.
func (p *pull) stopLinger() {
	if p.linger != nil {
		p.linger.Stop()
		p.linger = nil
	}
}

// setReady publishes the outcome of opening the stream, once.
func (p *pull) setReady(err error) {
	select {
	case <-p.ready:
		return
	default:
	}
	p.err = err
	close(p.ready)
}

// run reads upstreams until the pull ends: the linger after the last
// viewer ran out, the relay closed, the first round of origins failed,
// or no origin served the live stream for GiveUp.
func (p *pull) run() {
	r := p.r
	defer r.wg.Done()
	defer p.finish()
	if p.prev != nil {
		select {
		case <-p.prev.done:
		case <-p.ctx.Done():
			return
		}
	}
	var (
		tl         timeline
		n          = len(r.origins)
		idx        int
		failed     int // attempts in a row that served nothing
		notFound   int // of them, those answered 404
		lastServed time.Time
	)
	for {
		origin := r.origins[idx]
		served, err := p.upstream(origin, &tl)
		if p.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errStop) {
			p.log.Warn("relay stream stopped", "err", err)
			p.setReady(err)
			return
		}
		r.fail(origin)
		idx = (idx + 1) % n
		if served {
			failed, notFound = 0, 0
			lastServed = r.cfg.Clock.Now()
			p.log.Warn("upstream lost; failing over", "origin", origin, "next", r.origins[idx], "err", err)
			continue
		}
		failed++
		if errors.Is(err, ErrNotFound) {
			notFound++
		}
		if p.stream == nil {
			p.log.Debug("upstream failed", "origin", origin, "err", err)
			if failed >= n {
				if notFound > 0 {
					err = fmt.Errorf("flvrelay: open %s: %w", p.path, ErrNotFound)
				} else {
					err = fmt.Errorf("flvrelay: open %s: %w: %w", p.path, ErrUpstream, err)
				}
				p.log.Info("stream not available from any origin", "err", err)
				p.setReady(err)
				return
			}
			continue
		}
		p.log.Warn("upstream failed", "origin", origin, "next", r.origins[idx], "err", err)
		if lastServed.IsZero() {
			lastServed = r.cfg.Clock.Now() // live, but no frame yet
		}
		if down := r.cfg.Clock.Now().Sub(lastServed); down >= r.cfg.GiveUp {
			p.log.Warn("no origin serves the stream; ending it for viewers", "down", down)
			return
		}
		if failed%n == 0 && !p.sleep(r.cfg.RetryDelay) {
			return
		}
	}
}

// finish ends the pull: viewers see the stream end, and a viewer that
// comes meanwhile starts a new pull that waits for this one.
func (p *pull) finish() {
	r := p.r
	r.mu.Lock()
	p.stopping = true
	p.stopLinger()
	r.mu.Unlock()
	if p.stream != nil {
		_ = p.stream.Close()
	}
	p.setReady(fmt.Errorf("flvrelay: open %s: %w", p.path, ErrClosed))
	p.cancel()
	r.mu.Lock()
	if r.pulls[p.path] == p {
		delete(r.pulls, p.path)
	}
	r.mu.Unlock()
	close(p.done)
}

func (p *pull) sleep(d time.Duration) bool {
	ch := make(chan struct{})
	t := p.r.cfg.Clock.AfterFunc(d, func() { close(ch) })
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// upstream reads the stream from one origin until it fails, and says
// whether it served a frame. The error is never nil.
func (p *pull) upstream(origin string, tl *timeline) (served bool, err error) {
	r := p.r
	url := origin + p.path
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	wd := startWatchdog(r.cfg.Clock, r.cfg.IdleTimeout, cancel)
	defer wd.stop()
	wrap := func(err error) error {
		if wd.fired.Load() {
			return fmt.Errorf("flvrelay: GET %s: %w after %v", url, errIdle, r.cfg.IdleTimeout)
		}
		return fmt.Errorf("flvrelay: GET %s: %w", url, err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, wrap(err)
	}
	req.Header.Set("User-Agent", "livegrid-edge")
	if f := r.cfg.PrepareRequest; f != nil {
		if err := f(req); err != nil {
			return false, wrap(err)
		}
	}
	r.stats.requests.Add(1)
	if p.stream != nil {
		r.stats.reconnects.Add(1)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return false, wrap(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return false, wrap(ErrNotFound)
	default:
		return false, wrap(fmt.Errorf("status %s", resp.Status))
	}
	r.stats.upstreams.Add(1)
	defer r.stats.upstreams.Add(-1)

	fr := flv.NewReader(bufio.NewReaderSize(&watchedBody{r: resp.Body, wd: wd, n: &r.stats.bytesIn}, 64<<10))
	if _, err := fr.Header(); err != nil {
		return false, wrap(err)
	}
	if p.stream == nil {
		st, err := r.hub.Publish(p.sp.key(), hub.Publisher{
			RemoteAddr: origin,
			Evict:      func(error) { p.cancel() },
		})
		if err != nil {
			return false, fmt.Errorf("%w: %w", errStop, err)
		}
		p.stream = st
		p.setReady(nil)
		p.log.Info("relay stream open", "origin", origin)
	}
	tl.next(p.stream.Stats().Video)
	for {
		t, err := fr.ReadTag()
		switch {
		case errors.Is(err, flv.ErrUnsupported):
			continue // an encrypted tag, skipped
		case errors.Is(err, io.EOF):
			return served, wrap(errUpstreamEnded)
		case err != nil:
			return served, wrap(err)
		}
		t, kind, ok := tl.stamp(t)
		if !ok {
			continue
		}
		t.StreamID = 0
		if err := p.stream.WriteTag(t); err != nil {
			return served, fmt.Errorf("%w: %w", errStop, err)
		}
		if !served && kind != kindHeader {
			served = true
			p.log.Info("upstream live", "origin", origin, "timestamp", t.Timestamp)
		}
	}
}

// watchdog cancels an upstream that has sent nothing for its idle time.
type watchdog struct {
	clock  Clock
	idle   time.Duration
	cancel func()
	start  time.Time
	last   atomic.Int64 // since start, when bytes last came
	fired  atomic.Bool

	mu      sync.Mutex
	t       Timer
	stopped bool
}

func startWatchdog(c Clock, idle time.Duration, cancel func()) *watchdog {
	w := &watchdog{clock: c, idle: idle, cancel: cancel, start: c.Now()}
	w.mu.Lock()
	w.t = c.AfterFunc(idle, w.check)
	w.mu.Unlock()
	return w
}

func (w *watchdog) touch() { w.last.Store(int64(w.clock.Now().Sub(w.start))) }

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	quiet := w.clock.Now().Sub(w.start) - time.Duration(w.last.Load())
	if quiet >= w.idle {
		w.fired.Store(true)
		w.cancel()
		return
	}
	w.t = w.clock.AfterFunc(w.idle-quiet, w.check)
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}

// watchedBody tells the watchdog and the byte counter about each read.
type watchedBody struct {
	r  io.Reader
	wd *watchdog
	n  *atomic.Uint64
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.wd.touch()
		b.n.Add(uint64(n))
	}
	return n, err
}
