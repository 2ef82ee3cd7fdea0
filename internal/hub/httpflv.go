package hub

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
)

// DefaultFLVWriteTimeout bounds one write to an HTTP-FLV viewer.
const DefaultFLVWriteTimeout = 10 * time.Second

// FLVHandler serves a live stream as HTTP-FLV: GET {Prefix}{stream}.flv
// writes the FLV header and then the stream's tags from a hub reader, one
// flush per tag, until the stream ends or the viewer leaves. Register it
// for one path segment under the prefix, e.g.
// mux.Handle("GET /live/{file}", h); other names get 404.
type FLVHandler struct {
	Hub *Hub
	Log *slog.Logger
	// Prefix is the path before the stream name; default "/live/".
	Prefix string
	// WriteTimeout bounds one tag's write; a viewer that stops reading is
	// dropped after it, as is one the hub dropped while a write to it was
	// blocked. Default DefaultFLVWriteTimeout.
	WriteTimeout time.Duration
}

func (h *FLVHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "*")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := h.streamName(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	s, ok := h.Hub.Lookup(name)
	if !ok {
		http.Error(w, "stream not found", http.StatusNotFound)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "video/x-flv")
	hdr.Set("Cache-Control", "no-cache, no-store")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	rd, err := s.Subscribe()
	if err != nil { // ended between Lookup and Subscribe
		http.Error(w, "stream not found", http.StatusNotFound)
		return
	}
	defer rd.Close()

	log := h.logger().With("stream", name, "viewer", r.RemoteAddr, "reader", rd.id)
	start := time.Now()
	tags, err := CopyFLV(r.Context(), w, w, s, rd, h.writeTimeout())
	log = log.With("tags", tags, "duration", time.Since(start).Round(time.Millisecond))
	switch {
	case err == nil:
		log.Debug("http-flv viewer done: stream ended")
	case errors.Is(err, ErrSlowReader):
		log.Info("http-flv viewer dropped: too far behind", "err", err)
		// Abort, so the viewer does not mistake the cut for the end.
		panic(http.ErrAbortHandler)
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Info("http-flv viewer dropped: write timed out", "timeout", h.writeTimeout())
	default:
		log.Debug("http-flv viewer left", "err", err)
	}
}

// CopyFLV writes an HTTP-FLV response: the status, the FLV header and
// then rd's tags, each flushed and bounded by timeout, until the stream
// ends (nil) or ctx or a write fails. body is where the bytes go: w, or a
// writer in front of it that counts them. It returns the tags written.
func CopyFLV(ctx context.Context, w http.ResponseWriter, body io.Writer, s *Stream, rd *Reader, timeout time.Duration) (int, error) {
	rc := http.NewResponseController(w)
	deadline := func() {
		// I/O deadlines are wall-clock by nature; the hub's clock is not.
		_ = rc.SetWriteDeadline(time.Now().Add(timeout))
	}
	audio, video := s.Tracks()
	w.WriteHeader(http.StatusOK)
	deadline()
	fw, err := flv.NewWriter(body, flv.Header{Audio: audio, Video: video})
	if err != nil {
		return 0, err
	}
	if err := rc.Flush(); err != nil {
		return 0, err
	}
	n := 0
	for {
		t, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		t.StreamID = 0
		deadline()
		if err := fw.WriteTag(t); err != nil {
			return n, err
		}
		if err := rc.Flush(); err != nil {
			return n, err
		}
		n++
	}
}

func (h *FLVHandler) streamName(path string) (string, bool) {
	prefix := h.Prefix
	if prefix == "" {
		prefix = "/live/"
	}
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, ".flv")
	if !ok || ValidateName(name) != nil {
		return "", false
	}
	return name, true
}

func (h *FLVHandler) writeTimeout() time.Duration {
	if h.WriteTimeout <= 0 {
		return DefaultFLVWriteTimeout
	}
	return h.WriteTimeout
}

func (h *FLVHandler) logger() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}
