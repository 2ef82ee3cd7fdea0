package flvrelay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/hub"
)

// ServeHTTP serves HTTP-FLV viewers: GET or HEAD {Prefix}{stream}.flv
// and {Prefix}{stream}/{rendition}.flv, e.g. mux.Handle("/live/", relay)
// or, beside HLS and DASH, for the paths that end in ".flv". The first
// viewer of a stream opens its upstream; every viewer gets the FLV
// header, the metadata and sequence headers, then the stream from its
// latest keyframe on, through one upstream however many viewers there
// are. 404 when no origin has the stream, 502 when none answers, 503
// after Close.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch req.Method {
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
	sp, ok := parsePath(r.cfg.Prefix, req.URL.Path)
	if !ok {
		http.NotFound(w, req)
		return
	}
	log := r.log.With("stream", sp.String(), "viewer", req.RemoteAddr)

	// A stream can end between hold and Subscribe (its pull gave up);
	// the second try opens it afresh.
	var (
		rd      *hub.Reader
		s       *hub.Stream
		release func()
		err     error
	)
	for range 2 {
		s, release, err = r.hold(req.Context(), sp)
		if err != nil {
			break
		}
		if req.Method == http.MethodHead {
			break
		}
		if rd, err = s.Subscribe(); err == nil {
			break
		}
		release()
	}
	if err != nil {
		code := http.StatusBadGateway
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, hub.ErrUnpublished):
			code = http.StatusNotFound
		case errors.Is(err, ErrClosed), errors.Is(err, hub.ErrClosed), errors.Is(err, hub.ErrAlreadyPublishing):
			code = http.StatusServiceUnavailable
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			log.Debug("http-flv viewer left while the stream opened", "err", err)
			return
		}
		log.Info("http-flv viewer refused", "status", code, "err", err)
		http.Error(w, http.StatusText(code), code)
		return
	}
	defer release()
	hdr := w.Header()
	hdr.Set("Content-Type", "video/x-flv")
	hdr.Set("Cache-Control", "no-cache, no-store")
	if req.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	defer rd.Close()

	r.stats.viewers.Add(1)
	defer r.stats.viewers.Add(-1)
	cw := &countingWriter{w: w, total: &r.stats.bytesOut}
	if f := r.cfg.OnViewer; f != nil {
		if done := f(sp.String(), "flv", req.RemoteAddr); done != nil {
			defer func() { done(cw.n) }()
		}
	}

	start := time.Now()
	tags, err := hub.CopyFLV(req.Context(), w, cw, s, rd, r.cfg.WriteTimeout)
	log = log.With("tags", tags, "bytes", cw.n, "duration", time.Since(start).Round(time.Millisecond))
	switch {
	case err == nil:
		log.Debug("http-flv viewer done: stream ended")
	case errors.Is(err, hub.ErrSlowReader):
		r.stats.droppedViewers.Add(1)
		log.Info("http-flv viewer dropped: too far behind", "err", err)
		// Abort, so the viewer does not mistake the cut for the end.
		panic(http.ErrAbortHandler)
	case errors.Is(err, os.ErrDeadlineExceeded):
		r.stats.droppedViewers.Add(1)
		log.Info("http-flv viewer dropped: write timed out", "timeout", r.cfg.WriteTimeout)
	default:
		log.Debug("http-flv viewer left", "err", err)
	}
}

// countingWriter counts the bytes written to a viewer, and adds them to
// the relay's total as they go; one goroutine uses it.
type countingWriter struct {
	w     io.Writer
	n     int64
	total *atomic.Uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.total.Add(uint64(n))
	return n, err
}
