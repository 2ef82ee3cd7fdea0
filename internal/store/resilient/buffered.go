// Package resilient keeps the live path writing while the object store is
// down. Buffered accepts uploads into memory at once, up to a bound, and one
// goroutine uploads them in the order they came, retrying with exponential
// backoff; when the store comes back the backlog drains by itself.
package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/store"
)

var _ store.Store = (*Buffered)(nil)

var (
	// ErrBufferFull means a Put did not fit in the buffer: the store has
	// been failing long enough to fill it. The object is dropped.
	ErrBufferFull = errors.New("store buffer: full")
	// ErrClosed means the Buffered store has been closed.
	ErrClosed = errors.New("store buffer: closed")
	// ErrUnflushed means Close gave up with objects still unstored.
	ErrUnflushed = errors.New("store buffer: objects left unstored")
)

// Defaults for the zero Config fields.
const (
	DefaultMaxBytes       = 256 << 20
	DefaultInitialBackoff = 100 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	DefaultAttemptTimeout = 10 * time.Second
	DefaultCloseTimeout   = 10 * time.Second
)

// Config tunes a Buffered store; zero fields take the defaults.
type Config struct {
	// MaxBytes bounds the data waiting for upload (DefaultMaxBytes).
	MaxBytes int64
	// InitialBackoff is the wait after the first failed attempt; each
	// further failure doubles it up to MaxBackoff, which also bounds how
	// long a recovered store waits for the backlog to resume.
	InitialBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one upload attempt.
	AttemptTimeout time.Duration
	// CloseTimeout bounds how long Close keeps uploading the backlog.
	CloseTimeout time.Duration
	// Logger receives outages, recoveries and drops; nil discards.
	Logger *slog.Logger
	// Now stamps queued objects (their Modified until uploaded) and times
	// outages; nil means time.Now.
	Now func() time.Time
	// Sleep waits out a backoff, returning early with ctx's error; nil
	// means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (c Config) withDefaults() Config {
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = DefaultInitialBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.InitialBackoff)
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	return c
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats is a snapshot of a Buffered store's counters, for export as metrics.
type Stats struct {
	// Uploads counts objects the backend stored.
	Uploads uint64
	// Failures counts upload attempts that failed.
	Failures uint64
	// Retries counts upload attempts that followed a failed one.
	Retries uint64
	// Dropped counts Puts refused with ErrBufferFull.
	Dropped uint64
	// Abandoned counts accepted objects never stored: rejected by the
	// backend for good (ErrRejected), or still queued when Close gave up.
	Abandoned uint64
	// Superseded counts queued objects replaced by a newer Put of the same
	// key before they were uploaded (a playlist rewritten during an outage).
	Superseded uint64
	// BufferedObjects and BufferedBytes are what waits for upload now.
	BufferedObjects int
	BufferedBytes   int64
}

// entry is one queued upload.
type entry struct {
	key, contentType string
	data             []byte
	queued           time.Time
	skip             bool // superseded or deleted before upload: pass over it
	deleted          bool // deleted while in flight: delete again once stored
}

// Buffered is a Store whose Put returns as soon as the object is queued.
// Get serves queued objects from memory; List shows them; Delete cancels
// them. It owns the backend and closes it in Close.
type Buffered struct {
	backend store.Store
	cfg     Config
	log     *slog.Logger

	// mu guards the queue; the upload goroutine is its only consumer.
	mu       sync.Mutex
	queue    []*entry          // in arrival order, skipped entries included
	latest   map[string]*entry // newest live entry per key
	inflight *entry            // queue[0] while it is being uploaded
	live     int               // entries not skipped, inflight included
	bytes    int64             // data held by live entries
	empty    chan struct{}     // closed while live == 0
	closed   bool
	full     bool // the last Put was refused for room

	wake    chan struct{} // a Put has queued something
	closing chan struct{} // Close has begun: drain, then stop
	done    chan struct{} // the upload goroutine has returned
	runCtx  context.Context
	stop    context.CancelFunc

	closeOnce sync.Once
	closeErr  error

	uploads, failures, retries, dropped, abandoned, superseded atomic.Uint64
}

// New wraps backend and starts the upload goroutine; Close stops it.
func New(backend store.Store, cfg Config) *Buffered {
	cfg = cfg.withDefaults()
	empty := make(chan struct{})
	close(empty)
	ctx, stop := context.WithCancel(context.Background())
	b := &Buffered{
		backend: backend,
		cfg:     cfg,
		log:     cfg.Logger.With("component", "store-buffer"),
		latest:  make(map[string]*entry),
		empty:   empty,
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		runCtx:  ctx,
		stop:    stop,
	}
	go b.run()
	return b
}

// Put queues a copy of data for upload and returns. It fails only for a
// bad key, after Close, or with ErrBufferFull when the backlog has no room.
// A queued object not yet uploaded is replaced by a newer Put of its key,
// which goes to the back of the queue so it still follows what it was
// written after (a playlist after its segments).
func (b *Buffered) Put(ctx context.Context, key string, data []byte, contentType string) error {
	if err := store.CheckKey(key); err != nil {
		return fmt.Errorf("buffered store: put: %w", err)
	}
	e := &entry{key: key, contentType: contentType, data: bytes.Clone(data), queued: b.cfg.Now()}
	size := int64(len(data))

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("buffered store: put %q: %w", key, ErrClosed)
	}
	old := b.latest[key]
	if old == b.inflight {
		old = nil // being uploaded: it stays, the new one follows it
	}
	used := b.bytes
	if old != nil {
		used -= int64(len(old.data))
	}
	if used+size > b.cfg.MaxBytes {
		wasFull := b.full
		b.full = true
		buffered := b.bytes
		b.mu.Unlock()
		b.dropped.Add(1)
		level := slog.LevelDebug
		if !wasFull {
			level = slog.LevelWarn
		}
		b.log.Log(ctx, level, "buffer full, dropping object", "key", key, "bytes", size, "buffered_bytes", buffered)
		return fmt.Errorf("buffered store: put %q (%d bytes, %d buffered of %d): %w", key, size, buffered, b.cfg.MaxBytes, ErrBufferFull)
	}
	if old != nil {
		b.unqueueLocked(old)
		b.superseded.Add(1)
	}
	wasFull := b.full
	b.full = false
	b.queue = append(b.queue, e)
	b.latest[key] = e
	b.bytes += size
	if b.live == 0 {
		b.empty = make(chan struct{})
	}
	b.live++
	b.mu.Unlock()

	if wasFull {
		b.log.Info("buffer has room again", "dropped_total", b.dropped.Load())
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

// unqueueLocked passes over a queued entry that is not in flight.
func (b *Buffered) unqueueLocked(e *entry) {
	e.skip = true
	b.bytes -= int64(len(e.data))
	e.data = nil
	if b.latest[e.key] == e {
		delete(b.latest, e.key)
	}
	b.live--
	if b.live == 0 {
		close(b.empty)
	}
}

// Get returns a queued object from memory, or else asks the backend.
func (b *Buffered) Get(ctx context.Context, key string) ([]byte, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, fmt.Errorf("buffered store: get: %w", err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("buffered store: get %q: %w", key, ErrClosed)
	}
	e, ok := b.latest[key]
	var data []byte
	if ok {
		data = bytes.Clone(e.data)
	}
	b.mu.Unlock()
	if ok {
		if data == nil {
			data = []byte{}
		}
		return data, nil
	}
	return b.backend.Get(ctx, key)
}

// Delete cancels queued uploads of key and deletes it from the backend; an
// upload already in flight is deleted again once it lands.
func (b *Buffered) Delete(ctx context.Context, key string) error {
	if err := store.CheckKey(key); err != nil {
		return fmt.Errorf("buffered store: delete: %w", err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("buffered store: delete %q: %w", key, ErrClosed)
	}
	if e := b.latest[key]; e != nil && e != b.inflight {
		b.unqueueLocked(e)
	}
	if f := b.inflight; f != nil && f.key == key {
		f.deleted = true
		if b.latest[key] == f {
			delete(b.latest, key)
		}
	}
	b.mu.Unlock()
	return b.backend.Delete(ctx, key)
}

// List returns the backend's objects under prefix with the queued ones laid
// over them; a queued object's Modified is when it was queued.
func (b *Buffered) List(ctx context.Context, prefix string) ([]store.Object, error) {
	if err := store.CheckPrefix(prefix); err != nil {
		return nil, fmt.Errorf("buffered store: list: %w", err)
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("buffered store: list %q: %w", prefix, ErrClosed)
	}
	objs, err := b.backend.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]store.Object, len(objs))
	for _, o := range objs {
		byKey[o.Key] = o
	}
	b.mu.Lock()
	for key, e := range b.latest {
		if strings.HasPrefix(key, prefix) {
			byKey[key] = store.Object{Key: key, Size: int64(len(e.data)), Modified: e.queued}
		}
	}
	b.mu.Unlock()
	out := slices.Collect(maps.Values(byKey))
	slices.SortFunc(out, func(x, y store.Object) int { return strings.Compare(x.Key, y.Key) })
	return out, nil
}

// Flush waits until nothing is queued (every object uploaded or given up)
// or ctx ends. Puts that keep coming can hold it off; it is meant for the
// end of a session and for tests.
func (b *Buffered) Flush(ctx context.Context) error {
	b.mu.Lock()
	empty := b.empty
	b.mu.Unlock()
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("buffered store: flush: %w", ctx.Err())
	}
}

// Stats returns the counters.
func (b *Buffered) Stats() Stats {
	b.mu.Lock()
	objs, n := b.live, b.bytes
	b.mu.Unlock()
	return Stats{
		Uploads:         b.uploads.Load(),
		Failures:        b.failures.Load(),
		Retries:         b.retries.Load(),
		Dropped:         b.dropped.Load(),
		Abandoned:       b.abandoned.Load(),
		Superseded:      b.superseded.Load(),
		BufferedObjects: objs,
		BufferedBytes:   n,
	}
}

// Close refuses new work, keeps uploading the backlog for up to
// Config.CloseTimeout, then closes the backend. Objects left unstored are
// counted as abandoned and reported with ErrUnflushed.
func (b *Buffered) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.closing)

		deadline := time.NewTimer(b.cfg.CloseTimeout)
		select {
		case <-b.done:
		case <-deadline.C:
			b.stop() // cancels the attempt or backoff under way
			<-b.done
		}
		deadline.Stop()
		b.stop()

		b.mu.Lock()
		left, leftBytes := b.live, b.bytes
		b.queue, b.latest, b.inflight, b.live, b.bytes = nil, nil, nil, 0, 0
		if left > 0 {
			close(b.empty)
		}
		b.mu.Unlock()

		var errs []error
		if left > 0 {
			b.abandoned.Add(uint64(left))
			b.log.Error("closing with objects unstored", "objects", left, "bytes", leftBytes)
			errs = append(errs, fmt.Errorf("buffered store: close: %w: %d objects, %d bytes", ErrUnflushed, left, leftBytes))
		}
		if err := b.backend.Close(); err != nil {
			errs = append(errs, fmt.Errorf("buffered store: close backend: %w", err))
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

// next returns the oldest live entry, marked in flight, or nil.
func (b *Buffered) next() *entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.queue) > 0 && b.queue[0].skip {
		b.queue[0] = nil
		b.queue = b.queue[1:]
	}
	if len(b.queue) == 0 {
		return nil
	}
	b.inflight = b.queue[0]
	return b.inflight
}

// deletedInFlight reports whether e's key was deleted while it uploaded.
func (b *Buffered) deletedInFlight(e *entry) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return e.deleted
}

// finish takes the in-flight entry off the queue.
func (b *Buffered) finish(e *entry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue[0] = nil
	b.queue = b.queue[1:]
	b.inflight = nil
	if b.latest[e.key] == e {
		delete(b.latest, e.key)
	}
	b.bytes -= int64(len(e.data))
	e.data = nil
	b.live--
	if b.live == 0 {
		close(b.empty)
	}
}

// run is the upload goroutine: the queue's only consumer. It uploads the
// oldest entry until it is stored, so objects land in order.
func (b *Buffered) run() {
	defer close(b.done)
	var (
		failed      int // consecutive failed attempts
		outageStart time.Time
	)
	for b.runCtx.Err() == nil {
		e := b.next()
		if e == nil {
			select {
			case <-b.wake:
			case <-b.closing:
				if b.next() == nil {
					return
				}
			case <-b.runCtx.Done():
			}
			continue
		}

		ctx, cancel := context.WithTimeout(b.runCtx, b.cfg.AttemptTimeout)
		err := b.backend.Put(ctx, e.key, e.data, e.contentType)
		cancel()
		if b.runCtx.Err() != nil {
			return // Close gave up; it counts what is left
		}
		switch {
		case err == nil:
			b.uploads.Add(1)
			if failed > 0 {
				b.log.Info("object store back", "outage", b.cfg.Now().Sub(outageStart), "failed_attempts", failed, "buffered_objects", b.Stats().BufferedObjects)
				failed = 0
			}
			if b.deletedInFlight(e) {
				b.deleteLanded(e.key)
			}
			b.finish(e)
		case errors.Is(err, store.ErrRejected) || errors.Is(err, store.ErrBadKey):
			b.finish(e)
			b.abandoned.Add(1)
			b.log.Error("object rejected by the store, not retrying", "key", e.key, "err", err)
		default:
			b.failures.Add(1)
			failed++
			wait := b.backoff(failed)
			if failed == 1 {
				outageStart = b.cfg.Now()
				b.log.Warn("object store upload failed, buffering", "key", e.key, "err", err, "retry_in", wait)
			} else {
				b.log.Debug("object store upload failed", "key", e.key, "err", err, "attempt", failed, "retry_in", wait)
			}
			if b.cfg.Sleep(b.runCtx, wait) != nil {
				return
			}
			b.retries.Add(1)
		}
	}
}

// deleteLanded deletes an object whose Delete raced its upload. An
// object deleted after it landed needs no help: that Delete removed it.
func (b *Buffered) deleteLanded(key string) {
	ctx, cancel := context.WithTimeout(b.runCtx, b.cfg.AttemptTimeout)
	defer cancel()
	if err := b.backend.Delete(ctx, key); err != nil {
		b.log.Warn("delete after upload failed", "key", key, "err", err)
	}
}

// backoff is the wait after the n-th consecutive failure.
func (b *Buffered) backoff(n int) time.Duration {
	d := b.cfg.InitialBackoff
	for i := 1; i < n && d < b.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, b.cfg.MaxBackoff)
}
