package hub

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
)

// Stream is one publish session of a live stream: its publisher writes
// tags, readers get them. A publisher that reconnects gets a new Stream.
type Stream struct {
	hub     *Hub
	name    string
	pub     Publisher
	started time.Time
	done    chan struct{}

	mu       sync.Mutex
	ended    bool
	endErr   error // what WriteTag returns once ended
	reason   error // Event.Reason of the end
	cache    gopCache
	readers  map[*Reader]struct{}
	lastTS   uint32
	bytesIn  uint64
	tags     uint64
	dropped  uint64
	skips    uint64
	audio    bool
	video    bool
	nextID   uint64
	slowLogs []slowLog
}

type slowLog struct {
	id     uint64
	queued int
}

// Stats describes one stream.
type Stats struct {
	Name          string
	PublisherAddr string
	Started       time.Time
	BytesIn       uint64 // tag bodies written by the publisher
	Tags          uint64
	Readers       int
	// DroppedReaders counts readers ended with ErrSlowReader, and
	// ReaderSkips the times a reader was skipped ahead to a keyframe.
	DroppedReaders, ReaderSkips uint64
	// GOPTags and GOPBytes are what the GOP cache holds now; GOPDrops
	// counts GOPs dropped from it for passing a cap.
	GOPTags, GOPBytes int
	GOPDrops          uint64
	Audio, Video      bool // tags of the kind have been seen
}

func newStream(h *Hub, name string, p Publisher) *Stream {
	return &Stream{
		hub:     h,
		name:    name,
		pub:     p,
		started: h.cfg.Now(),
		done:    make(chan struct{}),
		cache:   gopCache{maxBytes: h.cfg.GOPMaxBytes, maxTags: h.cfg.GOPMaxTags},
		readers: make(map[*Reader]struct{}),
	}
}

// Name returns the stream's name.
func (s *Stream) Name() string { return s.name }

// Done is closed when the publish session ends.
func (s *Stream) Done() <-chan struct{} { return s.done }

// WriteTag hands one tag to the cache and to every reader. The hub keeps
// t.Data and shares it between readers: the caller must not modify it
// afterwards. After the session has ended it returns an error wrapping
// ErrUnpublished, ErrReplaced or ErrClosed.
func (s *Stream) WriteTag(t flv.Tag) error {
	s.mu.Lock()
	if s.ended {
		err := s.endErr
		s.mu.Unlock()
		return fmt.Errorf("hub: write to %q: %w", s.name, err)
	}
	kind := s.cache.add(t)
	s.lastTS = t.Timestamp
	s.bytesIn += uint64(len(t.Data))
	s.tags++
	switch t.Type {
	case flv.TagAudio:
		s.audio = true
	case flv.TagVideo:
		s.video = true
	}
	for r := range s.readers {
		switch r.offer(t, kind, &s.cache, s.video) {
		case offerSkipped:
			s.skips++
		case offerDropped:
			delete(s.readers, r)
			s.dropped++
			s.slowLogs = append(s.slowLogs, slowLog{id: r.id, queued: r.queued})
		}
	}
	logs := s.slowLogs
	s.slowLogs = s.slowLogs[:0]
	s.mu.Unlock()
	for _, l := range logs {
		s.hub.log.Info("slow reader dropped", "stream", s.name, "reader", l.id, "queued_tags", l.queued)
	}
	return nil
}

// Close ends the publish session: readers get what they have queued and
// then io.EOF, and watchers an Unpublished event. It is idempotent.
func (s *Stream) Close() error {
	s.hub.unpublish(s)
	return nil
}

// end ends the session; it reports whether it was still live.
func (s *Stream) end(reason error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.ended = true
	s.reason = reason
	s.endErr = reason
	if reason == nil {
		s.endErr = ErrUnpublished
	}
	close(s.done)
	for r := range s.readers {
		r.finish(io.EOF)
	}
	s.readers = nil
	s.cache.reset()
	return true
}

// Subscribe returns a new reader. Its first tags are the metadata, the
// sequence headers and, when the cache holds one, the GOP since the
// latest keyframe; without a GOP its video starts at the next keyframe.
func (s *Stream) Subscribe() (*Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, fmt.Errorf("hub: subscribe %q: %w", s.name, ErrUnpublished)
	}
	s.nextID++
	r := newReader(s, s.nextID)
	first, keyed := s.cache.start(s.lastTS)
	r.q = append(r.q, first...)
	for _, t := range first {
		r.qBytes += len(t.Data)
	}
	r.gen = s.cache.gen
	r.needKey = !keyed
	s.readers[r] = struct{}{}
	return r, nil
}

// Tracks says whether the stream carries audio and video, for an FLV
// header. Before any media tag it says both.
func (s *Stream) Tracks() (audio, video bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	audio = s.audio || s.cache.audio.Type != 0
	video = s.video || s.cache.video.Type != 0
	if !audio && !video {
		return true, true
	}
	return audio, video
}

// Stats returns the stream's counters.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Name:           s.name,
		PublisherAddr:  s.pub.RemoteAddr,
		Started:        s.started,
		BytesIn:        s.bytesIn,
		Tags:           s.tags,
		Readers:        len(s.readers),
		DroppedReaders: s.dropped,
		ReaderSkips:    s.skips,
		GOPTags:        len(s.cache.gop),
		GOPBytes:       s.cache.gopBytes,
		GOPDrops:       s.cache.drops,
		Audio:          s.audio,
		Video:          s.video,
	}
}

func (s *Stream) removeReader(r *Reader) {
	s.mu.Lock()
	delete(s.readers, r)
	s.mu.Unlock()
}
