package edge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/manifest"
)

// relay serves HLS and DASH objects (playlists, init and media segments)
// from the cache, fetching a miss from the origins once however many
// viewers ask for it at the same time.
type relay struct {
	cache   *cache
	flight  flight
	origins *pool
	// maxObject is the largest body kept or shared; bigger ones stream
	// through to each viewer.
	maxObject int64
	// staleIfError is how long past its freshness a cached 200 may still
	// be served when no origin answers.
	staleIfError time.Duration
	now          func() time.Time
	log          *slog.Logger
	// ctx bounds origin fetches: a fetch outlives the viewer that started
	// it (others wait on it), not the edge.
	ctx context.Context

	hits, misses, coalesced, stale, passes, failures atomic.Uint64
}

const allowMethods = "GET, HEAD, OPTIONS"

// ServeHTTP serves one request; r.URL.Path is the cleaned path
// (auth.Middleware cleans it) and the cache key. The viewer's query (its
// play token) is not part of the key: every viewer shares one object.
func (rl *relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set("Allow", allowMethods)
		w.Header().Set("Cache-Control", "no-cache")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	key := r.URL.Path
	cached, ok := rl.cache.get(key)
	if ok && cached.fresh(rl.now()) {
		rl.hits.Add(1)
		rl.serveObject(w, r, cached)
		return
	}
	obj, pt, coalesced, err := rl.flight.do(r.Context(), key, func() (*object, *passthrough, error) {
		obj, pt, err := rl.origins.fetch(rl.ctx, key, rl.maxObject)
		switch {
		case obj != nil && obj.store:
			rl.cache.put(key, obj)
		case obj != nil && obj.status < 500, pt != nil:
			rl.cache.remove(key) // the origin changed its mind; keep no stale copy
		}
		return obj, pt, err
	})
	if coalesced {
		rl.coalesced.Add(1)
	} else {
		rl.misses.Add(1)
	}
	if errors.Is(err, errPassedThrough) {
		// Too big to share: this viewer gets its own stream.
		obj, pt, err = rl.origins.fetch(r.Context(), key, rl.maxObject)
	}
	switch {
	case pt != nil:
		rl.passes.Add(1)
		rl.servePassthrough(w, r, pt)
		return
	case r.Context().Err() != nil:
		return // the viewer left
	case err == nil && obj.status < 500:
		rl.serveObject(w, r, obj)
		return
	}
	// No origin answered, or each answered 5xx: a recent copy beats an error.
	if ok && cached.status == http.StatusOK && !cached.expires.IsZero() && rl.now().Before(cached.expires.Add(rl.staleIfError)) {
		rl.stale.Add(1)
		rl.serveObject(w, r, cached)
		return
	}
	rl.failures.Add(1)
	if obj != nil {
		rl.serveObject(w, r, obj) // the origin's own 5xx
		return
	}
	if !coalesced { // one line per fetch, not per waiting viewer
		rl.log.Warn("no origin answered", "path", key, "err", err)
	}
	w.Header().Set("Cache-Control", "no-cache")
	code := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) {
		code = http.StatusGatewayTimeout
	}
	http.Error(w, http.StatusText(code), code)
}

// serveObject writes o; a 200 goes through http.ServeContent for Range,
// HEAD and conditional requests (If-None-Match against the ETag). A whole
// body, the common case, is written in one Write: ServeContent would copy
// it through a 32 KB buffer, a write system call for each piece.
func (rl *relay) serveObject(w http.ResponseWriter, r *http.Request, o *object) {
	h := w.Header()
	for k, vs := range o.header {
		// Shared with every viewer of o, read-only: the full slice
		// expression makes an Add copy rather than write into it.
		h[k] = vs[:len(vs):len(vs)]
	}
	if h.Get("Content-Type") == "" {
		if ct := contentTypeFor(r.URL.Path); ct != "" {
			h.Set("Content-Type", ct)
		}
	}
	h.Set("Age", o.ageAt(rl.now()))
	if o.status == http.StatusOK {
		body := o.body
		// Playlists are cached once for every viewer; each viewer's links
		// carry its own signed-URL parameters (or none), never the edge's.
		switch {
		case strings.HasSuffix(r.URL.Path, ".m3u8"):
			body = manifest.AddQueryHLS(body, manifest.LinkQuery(r.URL.Query()))
		case strings.HasSuffix(r.URL.Path, ".mpd"):
			body = manifest.AddQueryDASH(body, manifest.LinkQuery(r.URL.Query()))
		}
		if len(body) != len(o.body) {
			h.Del("ETag")
		}
		if _, typed := h["Content-Type"]; !typed || partOrConditional(r.Header) {
			http.ServeContent(w, r, "", o.modTime, bytes.NewReader(body))
			return
		}
		// What ServeContent answers to a plain GET or HEAD of a typed body.
		if o.lastModified != "" {
			h.Set("Last-Modified", o.lastModified)
		}
		h.Set("Accept-Ranges", "bytes")
		if h.Get("Content-Encoding") == "" {
			length := o.length
			if len(body) != len(o.body) || length == "" {
				length = strconv.Itoa(len(body))
			}
			h.Set("Content-Length", length)
		}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
		return
	}
	h.Del("ETag")
	if h.Get("Cache-Control") == "" {
		// Errors are never worth keeping downstream: a 404 for a segment
		// not cut yet is a 200 a second later.
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("Content-Length", strconv.Itoa(len(o.body)))
	w.WriteHeader(o.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(o.body)
	}
}

// partOrConditional reports whether a request asks for part of a body or
// sets a precondition: what http.ServeContent must judge.
func partOrConditional(h http.Header) bool {
	for _, k := range [...]string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// servePassthrough streams an answer too big to keep to one viewer.
func (rl *relay) servePassthrough(w http.ResponseWriter, r *http.Request, pt *passthrough) {
	defer pt.close()
	h := w.Header()
	for _, k := range passHeaders {
		if vs := pt.header.Values(k); len(vs) > 0 {
			h[k] = slices.Clone(vs)
		}
	}
	if pt.length >= 0 {
		h.Set("Content-Length", strconv.FormatInt(pt.length, 10))
	}
	w.WriteHeader(pt.status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, pt.body); err != nil && r.Context().Err() == nil {
		rl.log.Debug("streaming an uncached object", "path", r.URL.Path, "err", err)
	}
}

// contentTypeFor is the media type of a streaming file by its name, for
// an origin that sent none.
func contentTypeFor(p string) string {
	switch strings.ToLower(path.Ext(p)) {
	case ".m3u8":
		return "application/vnd.apple.mpegurl"
	case ".mpd":
		return "application/dash+xml"
	case ".m4s":
		return "video/iso.segment"
	case ".mp4", ".m4v":
		return "video/mp4"
	case ".m4a":
		return "audio/mp4"
	case ".ts":
		return "video/mp2t"
	case ".aac":
		return "audio/aac"
	case ".vtt":
		return "text/vtt"
	}
	return ""
}

// relayStats is a snapshot of the relay's counters for metrics.
type relayStats struct {
	hits, misses, coalesced, stale, passes, failures uint64
}

func (rl *relay) stats() relayStats {
	return relayStats{
		hits: rl.hits.Load(), misses: rl.misses.Load(), coalesced: rl.coalesced.Load(),
		stale: rl.stale.Load(), passes: rl.passes.Load(), failures: rl.failures.Load(),
	}
}
