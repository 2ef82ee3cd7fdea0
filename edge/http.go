package edge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/livegrid/livegrid/internal/auth"
)

// Protocols that Observe reports.
const (
	ProtocolHLS     = "hls"     // HLS playlists (.m3u8)
	ProtocolDASH    = "dash"    // DASH manifests (.mpd)
	ProtocolSegment = "segment" // init and media segments, which HLS and DASH share
	ProtocolFLV     = "flv"     // HTTP-FLV (.flv)
	ProtocolOther   = "other"   // anything else under /live/
)

// protocolOf names the protocol a /live/ path belongs to.
func protocolOf(p string) string {
	switch ext := strings.ToLower(path.Ext(p)); {
	case ext == ".m3u8":
		return ProtocolHLS
	case ext == ".mpd":
		return ProtocolDASH
	case ext == ".flv":
		return ProtocolFLV
	case immutableExts[ext]:
		return ProtocolSegment
	}
	return ProtocolOther
}

// exposeHeaders are the response headers a player on another site may read.
const exposeHeaders = "Content-Length, Content-Range, Accept-Ranges, Date, Age, ETag, " + auth.HeaderDenied

// handler is the edge's HTTP mux: /live/ (CORS, then the play policy,
// then HTTP-FLV or the cache), /healthz, /readyz and /metrics. drain ends
// when shutdown starts; long-lived FLV responses stop with it.
func (e *Edge) handler(rl *relay, m *metrics, drain context.Context) http.Handler {
	live := auth.Middleware(e.policy, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".flv") {
			e.serveFLV(w, r, drain)
			return
		}
		rl.ServeHTTP(w, r)
	}))
	mux := http.NewServeMux()
	mux.Handle("/live/", e.observe(m, e.cors(live)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !e.serving.Load() || !e.pool.ready() {
			http.Error(w, "not ready: no origin is up", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", m.handler(e.log.With("component", "metrics")))
	if e.Stats != nil {
		mux.HandleFunc("GET /api/v1/streams", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"streams": e.Stats.Snapshot()})
		})
		mux.HandleFunc("GET /api/v1/streams/{stream}", func(w http.ResponseWriter, r *http.Request) {
			st, ok := e.Stats.Stream(r.PathValue("stream"))
			if !ok {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "no viewers of that stream on this edge"})
				return
			}
			writeJSON(w, http.StatusOK, st)
		})
	}
	return mux
}

// serveFLV hands /live/{stream}.flv and /live/{stream}/{rendition}.flv to
// the FLV hook, on a context that also ends when the edge shuts down.
func (e *Edge) serveFLV(w http.ResponseWriter, r *http.Request, drain context.Context) {
	if e.FLV == nil {
		w.Header().Set("Cache-Control", "no-cache")
		http.Error(w, "HTTP-FLV is not served by this edge", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(drain, cancel)
	defer stop()
	e.FLV.ServeHTTP(w, r.WithContext(ctx))
}

// cors lets players on other sites read /live/: http.cors_origins, or
// any site when that is empty or holds "*". Preflights are answered here,
// before the play policy, since they carry no credentials.
func (e *Edge) cors(next http.Handler) http.Handler {
	allowed := make([]string, 0, len(e.cfg.HTTP.CORSOrigins))
	anyOrigin := len(e.cfg.HTTP.CORSOrigins) == 0
	for _, o := range e.cfg.HTTP.CORSOrigins {
		if o == "*" {
			anyOrigin = true
		}
		allowed = append(allowed, strings.ToLower(strings.TrimSuffix(o, "/")))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if anyOrigin {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Add("Vary", "Origin")
			if o := r.Header.Get("Origin"); o != "" && slices.Contains(allowed, strings.ToLower(o)) {
				h.Set("Access-Control-Allow-Origin", o)
			}
		}
		h.Set("Access-Control-Expose-Headers", exposeHeaders)
		if r.Method != http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Allow", allowMethods)
		h.Set("Access-Control-Allow-Methods", allowMethods)
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && headerList(req) {
			h.Set("Access-Control-Allow-Headers", req)
		}
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	})
}

// headerList reports whether s is a plain comma-separated list of header
// names, safe to echo in Access-Control-Allow-Headers.
func headerList(s string) bool {
	if len(s) > 512 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_, ", c) >= 0) {
			return false
		}
	}
	return true
}

// observe counts every /live/ response and hands it to the Observe hook
// once it is complete (for HTTP-FLV: when the viewer leaves). Preflights
// are no views and are not observed.
func (e *Edge) observe(m *metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		rec := &recorder{ResponseWriter: w}
		proto := protocolOf(r.URL.Path)
		// Deferred, so a handler that aborts (panic(http.ErrAbortHandler))
		// is still counted.
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			m.response(proto, status, rec.bytes)
			if e.Observe != nil {
				e.Observe(r, auth.StreamFromPath(r.URL.Path), proto, status, rec.bytes)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// recorder notes the status and body bytes of a response. It keeps
// http.ResponseController working (Unwrap) for FLV's flushes and write
// deadlines.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 && code >= 200 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(p)
	rw.bytes += int64(n)
	return n, err
}

// Flush sends buffered data; http.Flusher callers (FLV) need it.
func (rw *recorder) Flush() { _ = http.NewResponseController(rw.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection.
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// discardLogger is the logger of a component given none.
func discardLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// writeJSON answers v as JSON, never cached.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
