// Package hub keeps a coordinator's live streams. A publisher writes one
// stream's FLV tags; any number of readers (HTTP-FLV and RTMP viewers,
// the segmenter, edges) read them. Each stream keeps a GOP cache, so a
// reader that joins late starts at once with the metadata, the sequence
// headers and the group of pictures since the latest keyframe.
//
// Nothing in the hub runs a goroutine of its own: a publisher's writes fan
// out to bounded per-reader queues under the stream's lock, and a reader
// that falls behind is skipped ahead to the next keyframe or dropped, so
// it never slows the publisher or the other readers.
package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrNotFound means no stream of that name is live.
	ErrNotFound = errors.New("hub: stream not found")
	// ErrAlreadyPublishing means a stream of that name is live and the
	// policy refuses a second publisher.
	ErrAlreadyPublishing = errors.New("hub: stream is already being published")
	// ErrBadName means a stream name breaks ValidateName's rules.
	ErrBadName = errors.New("hub: bad stream name")
	// ErrReplaced ends a publish session that a newer publisher of the
	// same name took over.
	ErrReplaced = errors.New("hub: publisher replaced by a newer one")
	// ErrClosed means the hub is closed.
	ErrClosed = errors.New("hub: closed")
	// ErrUnpublished means the stream's publish session has ended.
	ErrUnpublished = errors.New("hub: stream unpublished")
	// ErrSlowReader ends a reader that stayed too far behind the live
	// edge even after being skipped ahead to a keyframe.
	ErrSlowReader = errors.New("hub: reader too slow")
	// ErrReaderClosed is what Next returns after the reader's own Close.
	ErrReaderClosed = errors.New("hub: reader closed")
)

// Policy decides what happens when a second publisher asks for a live
// stream name.
type Policy int

const (
	// Refuse keeps the first publisher and refuses the second (the
	// default).
	Refuse Policy = iota
	// TakeOver ends the first publisher's session and gives the name to
	// the second, as for a broadcaster reconnecting before the old TCP
	// connection has timed out.
	TakeOver
)

func (p Policy) String() string {
	switch p {
	case Refuse:
		return "refuse"
	case TakeOver:
		return "take-over"
	}
	return fmt.Sprintf("policy(%d)", int(p))
}

// Defaults for a zero Config.
const (
	DefaultGOPMaxBytes    = 8 << 20
	DefaultGOPMaxTags     = 2000
	DefaultReaderMaxBytes = 16 << 20
	DefaultReaderMaxTags  = 4096
)

// Config tunes a Hub; the zero value uses the defaults.
type Config struct {
	// Policy decides about a second publisher of a live name.
	Policy Policy
	// GOPMaxBytes and GOPMaxTags cap a stream's GOP cache (the tags since
	// the latest keyframe). A GOP that passes either cap is dropped from
	// the cache until the next keyframe; readers joining meanwhile wait
	// for that keyframe. Defaults 8 MiB and 2000 tags.
	GOPMaxBytes, GOPMaxTags int
	// ReaderMaxBytes and ReaderMaxTags bound what one reader may have
	// queued. A reader at either bound skips to the next keyframe; if it
	// has not drained below half of them by then, it is dropped with
	// ErrSlowReader. Defaults 16 MiB and 4096 tags. A joining reader's
	// first burst (headers and cached GOP) is not held to them.
	ReaderMaxBytes, ReaderMaxTags int
	// Now is the clock for stream start times; default time.Now.
	Now func() time.Time
	// Logger receives publish, unpublish and slow-reader events.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.GOPMaxBytes <= 0 {
		c.GOPMaxBytes = DefaultGOPMaxBytes
	}
	if c.GOPMaxTags <= 0 {
		c.GOPMaxTags = DefaultGOPMaxTags
	}
	if c.ReaderMaxBytes <= 0 {
		c.ReaderMaxBytes = DefaultReaderMaxBytes
	}
	if c.ReaderMaxTags <= 0 {
		c.ReaderMaxTags = DefaultReaderMaxTags
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Publisher describes who publishes a stream.
type Publisher struct {
	// RemoteAddr is the publisher's address, for stats and logs.
	RemoteAddr string
	// Evict, if set, is called once, from whichever goroutine ends the
	// session, when the hub ends it for a reason other than the
	// publisher's own Close: ErrReplaced on a take-over, ErrClosed when the
	// hub closes. It should make the publisher go away (close its
	// connection) and must not block.
	Evict func(reason error)
}

// EventType says what happened to a stream.
type EventType int

// Stream lifecycle events.
const (
	Published EventType = iota + 1
	Unpublished
)

func (t EventType) String() string {
	switch t {
	case Published:
		return "published"
	case Unpublished:
		return "unpublished"
	}
	return fmt.Sprintf("event(%d)", int(t))
}

// Event tells watchers that a stream was published or unpublished.
type Event struct {
	Type   EventType
	Name   string
	Stream *Stream
	// Reason is why an unpublished session ended: nil when its publisher
	// closed it, ErrReplaced after a take-over, ErrClosed when the hub
	// closed.
	Reason error
}

// Hub keeps the live streams by name. It is safe for concurrent use.
type Hub struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	streams  map[string]*Stream
	closed   bool
	watchers []*watcher

	// Events are queued under mu, so their order is the order of the
	// changes, and delivered outside it by one goroutine at a time.
	evMu       sync.Mutex
	pending    []queuedEvent
	delivering bool
}

type watcher struct {
	fn      func(Event)
	stopped atomic.Bool
}

type queuedEvent struct {
	ev Event
	to []*watcher
}

// New returns an empty Hub.
func New(cfg Config) *Hub {
	cfg = cfg.withDefaults()
	return &Hub{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "hub"),
		streams: make(map[string]*Stream),
	}
}

// ValidateName checks a stream name: 1 to 128 letters, digits, '-', '_'
// and '.', not starting with '.'. Names end up in URLs and object keys.
func ValidateName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("%w: %q must be 1 to 128 characters", ErrBadName, name)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w: %q starts with '.'", ErrBadName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: %q has character %q", ErrBadName, name, c)
		}
	}
	return nil
}

// Publish starts a publish session for name. A live name is refused with
// ErrAlreadyPublishing, or taken over under the TakeOver policy: the old
// session ends with ErrReplaced, its readers see the end of the stream
// and its Publisher.Evict is called.
func (h *Hub) Publish(name string, p Publisher) (*Stream, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("hub: publish: %w", err)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, fmt.Errorf("hub: publish %q: %w", name, ErrClosed)
	}
	old := h.streams[name]
	if old != nil && h.cfg.Policy != TakeOver {
		h.mu.Unlock()
		return nil, fmt.Errorf("hub: publish %q from %s (live from %s): %w", name, p.RemoteAddr, old.pub.RemoteAddr, ErrAlreadyPublishing)
	}
	if old != nil {
		old.end(ErrReplaced)
		h.queue(Event{Type: Unpublished, Name: name, Stream: old, Reason: ErrReplaced})
	}
	s := newStream(h, name, p)
	h.streams[name] = s
	h.queue(Event{Type: Published, Name: name, Stream: s})
	h.mu.Unlock()

	if old != nil {
		h.log.Info("publisher taken over", "stream", name, "old", old.pub.RemoteAddr, "new", p.RemoteAddr)
		if old.pub.Evict != nil {
			old.pub.Evict(ErrReplaced)
		}
	}
	h.log.Info("stream published", "stream", name, "publisher", p.RemoteAddr)
	h.deliver()
	return s, nil
}

// Lookup returns the live stream of that name.
func (h *Hub) Lookup(name string) (*Stream, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.streams[name]
	return s, ok
}

// Subscribe returns a reader of the live stream of that name, or
// ErrNotFound.
func (h *Hub) Subscribe(name string) (*Reader, error) {
	s, ok := h.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("hub: subscribe %q: %w", name, ErrNotFound)
	}
	return s.Subscribe()
}

// Streams returns the stats of every live stream, by name.
func (h *Hub) Streams() []Stats {
	h.mu.Lock()
	list := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		list = append(list, s)
	}
	h.mu.Unlock()
	out := make([]Stats, len(list))
	for i, s := range list {
		out[i] = s.Stats()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Watch calls fn for every later Published and Unpublished event, and at
// once with a Published event for each stream already live. Events come
// in order, one at a time, possibly after the call that caused them has
// returned; fn may call the hub but should not block. stop ends the
// watch; an event already being delivered may still arrive.
func (h *Hub) Watch(fn func(Event)) (stop func()) {
	w := &watcher{fn: fn}
	h.mu.Lock()
	h.watchers = append(h.watchers, w)
	names := make([]string, 0, len(h.streams))
	for name := range h.streams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h.queueTo(Event{Type: Published, Name: name, Stream: h.streams[name]}, []*watcher{w})
	}
	h.mu.Unlock()
	h.deliver()
	return func() {
		w.stopped.Store(true)
		h.mu.Lock()
		for i, x := range h.watchers {
			if x == w {
				h.watchers = append(h.watchers[:i:i], h.watchers[i+1:]...)
				break
			}
		}
		h.mu.Unlock()
	}
}

// Close ends every stream with ErrClosed (their publishers are evicted,
// their readers see the end) and refuses later publishers.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	var ended []*Stream
	for name, s := range h.streams {
		s.end(ErrClosed)
		h.queue(Event{Type: Unpublished, Name: name, Stream: s, Reason: ErrClosed})
		ended = append(ended, s)
	}
	clear(h.streams)
	h.mu.Unlock()
	for _, s := range ended {
		if s.pub.Evict != nil {
			s.pub.Evict(ErrClosed)
		}
	}
	h.deliver()
}

// unpublish removes a stream its publisher closed.
func (h *Hub) unpublish(s *Stream) {
	h.mu.Lock()
	if h.streams[s.name] == s {
		delete(h.streams, s.name)
	}
	ended := s.end(nil)
	if ended {
		h.queue(Event{Type: Unpublished, Name: s.name, Stream: s})
	}
	h.mu.Unlock()
	if ended {
		st := s.Stats()
		h.log.Info("stream unpublished", "stream", s.name, "publisher", s.pub.RemoteAddr,
			"duration", h.cfg.Now().Sub(st.Started), "bytes_in", st.BytesIn, "tags", st.Tags)
	}
	h.deliver()
}

// queue adds an event for the current watchers; h.mu is held.
func (h *Hub) queue(ev Event) {
	if len(h.watchers) == 0 {
		return
	}
	h.queueTo(ev, append([]*watcher(nil), h.watchers...))
}

func (h *Hub) queueTo(ev Event, to []*watcher) {
	h.evMu.Lock()
	h.pending = append(h.pending, queuedEvent{ev: ev, to: to})
	h.evMu.Unlock()
}

// deliver calls watchers for the queued events unless another goroutine
// is already doing so, in which case that one delivers them too.
func (h *Hub) deliver() {
	h.evMu.Lock()
	if h.delivering {
		h.evMu.Unlock()
		return
	}
	h.delivering = true
	locked := true
	defer func() {
		// Reset even when a watcher panics, so later events still flow.
		if !locked {
			h.evMu.Lock()
		}
		h.delivering = false
		h.evMu.Unlock()
	}()
	for len(h.pending) > 0 {
		batch := h.pending
		h.pending = nil
		h.evMu.Unlock()
		locked = false
		for _, q := range batch {
			for _, w := range q.to {
				if !w.stopped.Load() {
					w.fn(q.ev)
				}
			}
		}
		h.evMu.Lock()
		locked = true
	}
}
