package hub

import (
	"context"
	"sync"

	"github.com/livegrid/livegrid/internal/flv"
)

// Reader reads one stream from a bounded queue that the publisher fills.
// Next is for one goroutine at a time; Close may come from any.
type Reader struct {
	s      *Stream
	id     uint64
	notify chan struct{} // a token when the queue or err changes

	// Limits, copied from the hub's Config.
	maxTags, maxBytes int

	mu       sync.Mutex
	q        []flv.Tag
	head     int
	qBytes   int
	err      error  // set: no more tags after the queued ones
	gen      uint64 // header generation the reader has
	needKey  bool   // drop video until a keyframe (joined without a GOP)
	skipping bool   // drop everything but headers until a keyframe
	queued   int    // queue length when dropped, for the log
}

type offerResult int

const (
	offerQueued offerResult = iota
	offerIgnored
	offerSkipped // the reader starts skipping to the next keyframe
	offerDropped // the reader is too slow and has been ended
)

func newReader(s *Stream, id uint64) *Reader {
	return &Reader{
		s:        s,
		id:       id,
		notify:   make(chan struct{}, 1),
		maxTags:  s.hub.cfg.ReaderMaxTags,
		maxBytes: s.hub.cfg.ReaderMaxBytes,
	}
}

// offer queues a live tag. Called with the stream's lock held.
func (r *Reader) offer(t flv.Tag, kind tagKind, c *gopCache, hasVideo bool) offerResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return offerIgnored
	}
	switch {
	case r.skipping:
		if kind != kindKeyframe {
			return offerIgnored
		}
		if r.len() > r.maxTags/2 || r.qBytes > r.maxBytes/2 {
			r.queued = r.len()
			r.fail(ErrSlowReader)
			return offerDropped
		}
		r.skipping = false
		if r.gen != c.gen {
			// A header changed while the reader skipped.
			r.push(c.headers(t.Timestamp)...)
			r.gen = c.gen
		}
	case r.needKey && t.Type == flv.TagVideo && kind == kindFrame:
		return offerIgnored
	}
	if r.len()+1 > r.maxTags || r.qBytes+len(t.Data) > r.maxBytes {
		if !hasVideo {
			// No keyframe will come to skip to.
			r.queued = r.len()
			r.fail(ErrSlowReader)
			return offerDropped
		}
		r.skipping = true
		return offerSkipped
	}
	switch kind {
	case kindKeyframe:
		r.needKey = false
	case kindHeader:
		r.gen = c.gen
	}
	r.push(t)
	return offerQueued
}

func (r *Reader) len() int { return len(r.q) - r.head }

func (r *Reader) push(tags ...flv.Tag) {
	if r.head > 0 && len(r.q)+len(tags) > cap(r.q) {
		n := copy(r.q, r.q[r.head:])
		clear(r.q[n:])
		r.q = r.q[:n]
		r.head = 0
	}
	for _, t := range tags {
		r.q = append(r.q, t)
		r.qBytes += len(t.Data)
	}
	r.signal()
}

func (r *Reader) pop() (flv.Tag, bool) {
	if r.head == len(r.q) {
		return flv.Tag{}, false
	}
	t := r.q[r.head]
	r.q[r.head] = flv.Tag{}
	r.head++
	r.qBytes -= len(t.Data)
	if r.head == len(r.q) {
		r.q = r.q[:0]
		r.head = 0
	}
	return t, true
}

func (r *Reader) signal() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// finish lets the reader drain its queue, then return err.
func (r *Reader) finish(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
	r.signal()
}

// fail drops the queue: Next returns err at once. r.mu is held.
func (r *Reader) fail(err error) {
	r.err = err
	clear(r.q)
	r.q, r.head, r.qBytes = nil, 0, 0
	r.signal()
}

// Next returns the next tag, waiting for one. After the stream ends it
// returns the queued tags and then io.EOF; a reader dropped for being too
// slow gets ErrSlowReader at once, and one closed ErrReaderClosed.
func (r *Reader) Next(ctx context.Context) (flv.Tag, error) {
	for {
		r.mu.Lock()
		t, ok := r.pop()
		err := r.err
		r.mu.Unlock()
		if ok {
			return t, nil
		}
		if err != nil {
			return flv.Tag{}, err
		}
		select {
		case <-r.notify:
		case <-ctx.Done():
			return flv.Tag{}, ctx.Err()
		}
	}
}

// Close detaches the reader from its stream. It is idempotent.
func (r *Reader) Close() {
	r.s.removeReader(r)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail(ErrReaderClosed)
}
