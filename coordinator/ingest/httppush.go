package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/hub"
)

// PushHandler publishes a stream sent as an HTTP-FLV request body:
// POST or PUT {Prefix}{stream}.flv with an FLV stream as the body,
// usually chunked (ffmpeg -f flv -method POST http://HOST/live/cam.flv).
// The publish is authorized, named and refused as RTMP ingest does it:
// the same Authorizer (the URL's query holds the key or token), the hub's
// second-publisher policy (409 when it refuses). The response comes when
// the body ends: 204 after a clean end, an error status otherwise.
type PushHandler struct {
	Hub *hub.Hub
	// Auth decides about publishers; nil lets every publisher in.
	Auth Authorizer
	Log  *slog.Logger
	// Prefix is the path before the stream name; default "/live/".
	Prefix string
	// IdleTimeout bounds each wait for body bytes; default
	// DefaultIdleTimeout. AuthTimeout bounds one Authorizer call; default
	// DefaultAuthTimeout.
	IdleTimeout, AuthTimeout time.Duration
}

func (h *PushHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	prefix := h.Prefix
	if prefix == "" {
		prefix = "/live/"
	}
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	name, isFLV := strings.CutSuffix(rest, ".flv")
	if !ok || !isFLV || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	log := h.logger().With("stream", name, "remote", r.RemoteAddr)
	if err := hub.ValidateName(name); err != nil {
		log.Warn("http-flv push refused", "err", err)
		http.Error(w, "bad stream name", http.StatusBadRequest)
		return
	}
	auth := h.Auth
	if auth == nil {
		auth = AllowAll
	}
	actx, cancel := context.WithTimeout(r.Context(), orDefault(h.AuthTimeout, DefaultAuthTimeout))
	err := auth.AuthorizePublish(actx, name, r.URL.Query(), r.RemoteAddr)
	cancel()
	if err != nil {
		// The reason stays in the log; the client learns only the refusal.
		log.Warn("http-flv push refused", "err", fmt.Errorf("%w: stream %q: %w", ErrNotAuthorized, name, err))
		http.Error(w, fmt.Sprintf("publish to %q refused: not authorized", name), http.StatusForbidden)
		return
	}

	rc := http.NewResponseController(w)
	body := &pushBody{r: r.Body, rc: rc, idle: orDefault(h.IdleTimeout, DefaultIdleTimeout)}
	fr := flv.NewReader(bufio.NewReaderSize(body, 64<<10))
	if _, err := fr.Header(); err != nil {
		log.Warn("http-flv push refused: bad FLV header", "err", err)
		http.Error(w, "body is not an FLV stream", http.StatusBadRequest)
		return
	}
	st, err := h.Hub.Publish(name, hub.Publisher{
		RemoteAddr: r.RemoteAddr,
		Evict: func(reason error) {
			log.Info("http-flv publisher evicted", "reason", reason)
			body.evict()
		},
	})
	if err != nil {
		status, msg := http.StatusInternalServerError, fmt.Sprintf("publish to %q failed", name)
		switch {
		case errors.Is(err, hub.ErrAlreadyPublishing):
			status, msg = http.StatusConflict, fmt.Sprintf("stream %q is already being published", name)
		case errors.Is(err, hub.ErrClosed):
			status, msg = http.StatusServiceUnavailable, "shutting down"
		}
		log.Warn("http-flv push refused", "err", err)
		http.Error(w, msg, status)
		return
	}
	log.Info("http-flv publish started")
	start := time.Now()
	tags, err := pushTags(fr, st)
	_ = st.Close()
	log = log.With("tags", tags, "duration", time.Since(start).Round(time.Millisecond))
	switch {
	case err == nil:
		log.Info("http-flv publish ended")
		w.WriteHeader(http.StatusNoContent)
	case body.evicted.Load() || errors.Is(err, hub.ErrReplaced) || errors.Is(err, hub.ErrClosed):
		log.Info("http-flv publish ended: evicted", "err", err)
		http.Error(w, "publish ended by the server", http.StatusConflict)
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Warn("http-flv publish ended: body idle", "timeout", body.idle)
		http.Error(w, "no data for "+body.idle.String(), http.StatusRequestTimeout)
	case errors.Is(err, flv.ErrMalformed), errors.Is(err, flv.ErrTruncated), errors.Is(err, flv.ErrTooLarge):
		log.Warn("http-flv publish ended: malformed FLV", "err", err)
		http.Error(w, "malformed FLV: "+err.Error(), http.StatusBadRequest)
	default:
		log.Info("http-flv publish ended: body read failed", "err", err)
		http.Error(w, "publish ended", http.StatusBadRequest)
	}
}

// pushTags copies the body's tags to the stream until the body ends
// (nil) or fails. Tags that cannot be mapped are dropped, as RTMP ingest
// drops such messages.
func pushTags(fr *flv.Reader, st *hub.Stream) (int, error) {
	n := 0
	for {
		t, err := fr.ReadTag()
		switch {
		case errors.Is(err, io.EOF):
			return n, nil
		case errors.Is(err, flv.ErrUnsupported):
			continue
		case err != nil:
			return n, err
		}
		if t, err = fileTag(t); errors.Is(err, errBadMessage) {
			continue
		}
		if err := st.WriteTag(t); err != nil {
			return n, err
		}
		n++
	}
}

// pushBody is a request body whose reads may each wait idle at most. An
// eviction makes the next read fail at once.
type pushBody struct {
	r       io.Reader
	rc      *http.ResponseController
	idle    time.Duration
	evicted atomic.Bool
}

func (b *pushBody) Read(p []byte) (int, error) {
	if b.evicted.Load() {
		return 0, hub.ErrReplaced
	}
	// I/O deadlines are wall-clock by nature. HTTP/2 connections may not
	// support them; their bodies then wait as long as the client stays.
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	return b.r.Read(p)
}

// evict ends a blocked read; it may be called from any goroutine.
func (b *pushBody) evict() {
	b.evicted.Store(true)
	_ = b.rc.SetReadDeadline(time.Now())
}

func (h *PushHandler) logger() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log.With("component", "http-flv-push")
}
