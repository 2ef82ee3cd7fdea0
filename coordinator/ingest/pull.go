package ingest

// This file keeps pulled streams published: a Puller runs one goroutine
// per pull that connects to the source (pull_rtmp.go, pull_httpflv.go,
// pull_hls.go), publishes what it reads into the hub under the pull's
// stream name and, when the source drops, unpublishes, waits and
// connects again, for as long as the pull exists.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/hub"
)

var (
	// ErrBadPull refuses a pull whose stream name or URL is invalid; the
	// error also holds a *FieldError naming the field.
	ErrBadPull = errors.New("ingest: bad pull")
	// ErrPullExists refuses a second pull of a stream.
	ErrPullExists = errors.New("ingest: stream is already pulled")
	// ErrStreamLive refuses a pull of a stream a publisher has live.
	ErrStreamLive = errors.New("ingest: stream is live")
	// ErrPullNotFound means no pull of that stream exists.
	ErrPullNotFound = errors.New("ingest: no such pull")
	// ErrPullerClosed refuses pulls after Close.
	ErrPullerClosed = errors.New("ingest: puller closed")
	// errSourceEnded says the source ended its stream (an end of file,
	// an unpublish, the end of a VOD playlist); the pull connects again.
	errSourceEnded = errors.New("source ended the stream")
)

// Defaults for a Puller's zero fields.
const (
	DefaultPullSetupTimeout = 10 * time.Second
	DefaultPullIdleTimeout  = 30 * time.Second
	DefaultPullMinBackoff   = time.Second
	DefaultPullMaxBackoff   = 30 * time.Second
)

// resumeGap is how far after the last written timestamp a new session or
// a restarted source clock continues, about one frame.
const resumeGap = 40

// A source's timestamps that step back more than maxStepBack or forward
// more than maxJump milliseconds mean its clock restarted.
const (
	maxStepBack = 2000
	maxJump     = 10000
)

// PullState is where a pull is.
type PullState string

// Pull states.
const (
	PullConnecting PullState = "connecting" // connecting, or waiting for the first tag
	PullLive       PullState = "live"       // published in the hub
	PullRetrying   PullState = "retrying"   // waiting to connect again after a failure
)

// PullStatus describes one pull.
type PullStatus struct {
	Stream string
	// URL is the source with its password and query values masked.
	URL   string
	State PullState
	// Since is when the pull entered State.
	Since time.Time
	// LastError is the reason of the latest failure, empty before one.
	LastError string
	// Failures counts the failed attempts since the pull was last live.
	Failures int
	// Sessions counts the times the pull went live.
	Sessions int
}

// FieldError says which field of a pull is invalid.
type FieldError struct {
	Field string // "stream" or "url"
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("'%s' %s", e.Field, e.Msg) }

// ValidatePull checks a pull's stream name and URL as the config does and
// returns the parsed URL. Its error wraps ErrBadPull and a *FieldError.
func ValidatePull(stream, rawURL string) (*url.URL, error) {
	if err := hub.ValidateName(stream); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPull, &FieldError{"stream",
			fmt.Sprintf("must be 1 to 128 characters of [A-Za-z0-9._-], not starting with '.', got %q", stream)})
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || !slices.Contains([]string{"rtmp", "rtmps", "http", "https"}, u.Scheme) {
		// The URL may hold a key, so it is not repeated.
		return nil, fmt.Errorf("%w: %w", ErrBadPull, &FieldError{"url",
			"must be an rtmp://, rtmps://, or http(s):// (HTTP-FLV or HLS) URL with a host"})
	}
	if u.Scheme == "rtmp" || u.Scheme == "rtmps" {
		if _, _, _, _, err := rtmpTarget(u); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadPull, &FieldError{"url", "must name an application and a stream: rtmp://host/app/stream"})
		}
	}
	return u, nil
}

// Puller keeps pulled streams published in a hub. Set its fields before
// the first Start; it must not be copied after. Close stops every pull.
type Puller struct {
	Hub *hub.Hub
	Log *slog.Logger
	// Client fetches HTTP-FLV and HLS sources; nil uses a client of its
	// own.
	Client *http.Client
	// SetupTimeout bounds connecting to a source until its stream starts
	// (and each HLS request); IdleTimeout bounds a source's silence.
	SetupTimeout, IdleTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before connecting again;
	// it doubles with each failure and starts over after a session that
	// lasted longer than MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Now is the clock for states and pacing; default time.Now.
	Now func() time.Time

	once   sync.Once
	log    *slog.Logger
	client *http.Client
	mu     sync.Mutex
	closed bool
	pulls  map[string]*pull
}

func (p *Puller) init() {
	p.once.Do(func() {
		p.log = p.Log
		if p.log == nil {
			p.log = slog.New(slog.DiscardHandler)
		}
		p.log = p.log.With("component", "pull")
		p.client = p.Client
		if p.client == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.ResponseHeaderTimeout = p.setupTimeout()
			p.client = &http.Client{Transport: tr}
		}
		p.pulls = map[string]*pull{}
	})
}

// pull is one pulled stream. Its goroutine owns tl; mu guards the status.
type pull struct {
	stream string
	url    *url.URL
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has ended

	tl timeline

	mu     sync.Mutex
	status PullStatus
}

func (pl *pull) set(state PullState, now time.Time, err error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.status.State != state {
		pl.status.State, pl.status.Since = state, now
	}
	switch state {
	case PullLive:
		pl.status.Sessions++
		pl.status.Failures = 0
	case PullRetrying:
		pl.status.Failures++
	}
	if err != nil {
		pl.status.LastError = err.Error()
	}
}

// Start pulls stream from rawURL until Stop or Close; it returns at once.
// A stream already pulled is ErrPullExists, one live from a publisher
// ErrStreamLive.
func (p *Puller) Start(stream, rawURL string) error {
	p.init()
	u, err := ValidatePull(stream, rawURL)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return ErrPullerClosed
	case p.pulls[stream] != nil:
		return fmt.Errorf("%w: %q", ErrPullExists, stream)
	}
	if _, live := p.Hub.Lookup(stream); live {
		return fmt.Errorf("%w: %q", ErrStreamLive, stream)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pl := &pull{
		stream: stream, url: u, cancel: cancel, done: make(chan struct{}),
		log:    p.log.With("stream", stream, "url", redactURL(u)),
		status: PullStatus{Stream: stream, URL: redactURL(u), State: PullConnecting, Since: p.now()},
	}
	p.pulls[stream] = pl
	go p.run(ctx, pl)
	pl.log.Info("pull started")
	return nil
}

// Stop ends the pull of stream and waits until its stream is unpublished.
func (p *Puller) Stop(stream string) error {
	p.init()
	p.mu.Lock()
	pl := p.pulls[stream]
	delete(p.pulls, stream)
	p.mu.Unlock()
	if pl == nil {
		return fmt.Errorf("%w: %q", ErrPullNotFound, stream)
	}
	pl.cancel()
	<-pl.done
	pl.log.Info("pull stopped")
	return nil
}

// List returns every pull's status, by stream name.
func (p *Puller) List() []PullStatus {
	p.init()
	p.mu.Lock()
	list := make([]*pull, 0, len(p.pulls))
	for _, pl := range p.pulls {
		list = append(list, pl)
	}
	p.mu.Unlock()
	out := make([]PullStatus, 0, len(list))
	for _, pl := range list {
		pl.mu.Lock()
		out = append(out, pl.status)
		pl.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b PullStatus) int { return strings.Compare(a.Stream, b.Stream) })
	return out
}

// Close stops every pull, refuses new ones and waits until their
// goroutines have ended.
func (p *Puller) Close() {
	p.init()
	p.mu.Lock()
	p.closed = true
	pulls := p.pulls
	p.pulls = map[string]*pull{}
	p.mu.Unlock()
	for _, pl := range pulls {
		pl.cancel()
	}
	for _, pl := range pulls {
		<-pl.done
	}
	if p.Client == nil {
		p.client.CloseIdleConnections()
	}
}

// run is a pull's goroutine: sessions until ctx ends, with a growing
// wait after each failure.
func (p *Puller) run(ctx context.Context, pl *pull) {
	defer close(pl.done)
	backoff := p.minBackoff()
	for {
		pl.set(PullConnecting, p.now(), nil)
		lasted, err := p.session(ctx, pl)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, hub.ErrClosed) {
			pl.log.Info("pull ended: hub closed")
			pl.set(PullRetrying, p.now(), err)
			return
		}
		if lasted > p.maxBackoff() {
			backoff = p.minBackoff()
		}
		// ±20% jitter, so pulls of one source do not reconnect in step.
		wait := time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))
		level := slog.LevelWarn
		if errors.Is(err, errSourceEnded) {
			level = slog.LevelInfo
		}
		pl.log.Log(ctx, level, "pull failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
		pl.set(PullRetrying, p.now(), err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, p.maxBackoff())
	}
}

// session connects once, publishes from the first tag on and copies tags
// until the source or the hub ends it. lasted is how long it was live.
func (p *Puller) session(ctx context.Context, pl *pull) (lasted time.Duration, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	src, err := p.open(sctx, pl)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer src.Close()
	t, err := src.ReadTag(sctx)
	if err != nil {
		return 0, err
	}
	if _, live := p.Hub.Lookup(pl.stream); live {
		// Under the take-over policy Publish would cut off a publisher
		// that came meanwhile; the pull waits for it to leave instead.
		return 0, fmt.Errorf("publish: %w", hub.ErrAlreadyPublishing)
	}
	st, err := p.Hub.Publish(pl.stream, hub.Publisher{
		RemoteAddr: "pull:" + pl.url.Host,
		Evict:      func(reason error) { cancel(reason) },
	})
	if err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	defer st.Close()
	start := p.now()
	pl.tl.restart()
	pl.set(PullLive, start, nil)
	pl.log.Info("pull live")
	for {
		t.Timestamp = pl.tl.next(t.Timestamp)
		t.StreamID = 0
		if err := st.WriteTag(t); err != nil {
			return p.now().Sub(start), fmt.Errorf("publish: %w", err)
		}
		if t, err = src.ReadTag(sctx); err != nil {
			if c := context.Cause(sctx); c != nil && ctx.Err() == nil {
				err = c // evicted by the hub
			}
			return p.now().Sub(start), err
		}
	}
}

// tagSource is one connection to a pulled source.
type tagSource interface {
	// ReadTag returns the next tag; an error ends the session.
	ReadTag(ctx context.Context) (flv.Tag, error)
	Close() error
}

func (p *Puller) open(ctx context.Context, pl *pull) (tagSource, error) {
	switch pl.url.Scheme {
	case "rtmp", "rtmps":
		return dialRTMP(ctx, pl.url, p.setupTimeout(), p.idleTimeout())
	default:
		return p.openHTTP(ctx, pl)
	}
}

func (p *Puller) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Puller) setupTimeout() time.Duration {
	return orDefault(p.SetupTimeout, DefaultPullSetupTimeout)
}

func (p *Puller) idleTimeout() time.Duration { return orDefault(p.IdleTimeout, DefaultPullIdleTimeout) }

func (p *Puller) minBackoff() time.Duration { return orDefault(p.MinBackoff, DefaultPullMinBackoff) }

func (p *Puller) maxBackoff() time.Duration {
	return max(orDefault(p.MaxBackoff, DefaultPullMaxBackoff), p.minBackoff())
}

// redactURL returns u for logs and lists: the password and query values
// masked, since either may be a key.
func redactURL(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		q := c.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}

// timeline keeps a pulled stream's timestamps going forward: each session
// continues just after the last timestamp written, and so does a source
// whose clock jumps within a session. It is owned by the pull's goroutine.
type timeline struct {
	started bool
	fresh   bool  // the next tag starts a session
	last    int64 // the latest timestamp written
	src     int64 // the previous source timestamp, unwrapped
	offset  int64 // added to source timestamps
}

func (t *timeline) restart() { t.fresh = true }

// next maps a source timestamp (ms, wrapping at 2^32) to the output.
func (t *timeline) next(ts uint32) uint32 {
	s := int64(ts)
	if t.fresh || !t.started {
		t.fresh = false
		next := int64(0)
		if t.started {
			next = t.last + resumeGap
		}
		t.offset = next - s
	} else {
		d := int64(int32(ts - uint32(t.src)))
		s = t.src + d
		if d < -maxStepBack || d > maxJump {
			t.offset = t.last + resumeGap - s
		}
	}
	t.src = s
	out := max(s+t.offset, 0)
	t.started = true
	t.last = max(t.last, out)
	return uint32(out)
}
