// Package cors narrows the cross-origin access of playback handlers. The
// origin and edge handlers answer every request with
// Access-Control-Allow-Origin: * so web players anywhere can read them; an
// operator who lists http.cors_origins wants only those sites' players to.
package cors

import (
	"net/http"
	"slices"
	"strings"
)

// Restrict wraps next so that only the listed origins (scheme://host[:port],
// compared without case) are allowed: for a request from a listed origin the
// answer's Access-Control-Allow-Origin names that origin, for any other it is
// removed, so browsers refuse the response to scripts. An empty list or one
// holding "*" returns next unchanged.
func Restrict(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 || slices.Contains(origins, "*") {
		return next
	}
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		allowed[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		next.ServeHTTP(&writer{ResponseWriter: w, origin: origin, ok: origin != "" && allowed[strings.ToLower(origin)]}, r)
	})
}

// writer rewrites the CORS header just before the status line goes out.
type writer struct {
	http.ResponseWriter
	origin string
	ok     bool
	done   bool
}

func (w *writer) fix() {
	if w.done {
		return
	}
	w.done = true
	h := w.Header()
	h.Add("Vary", "Origin")
	if h.Get("Access-Control-Allow-Origin") == "" {
		return
	}
	if w.ok {
		h.Set("Access-Control-Allow-Origin", w.origin)
		return
	}
	h.Del("Access-Control-Allow-Origin")
	h.Del("Access-Control-Allow-Methods")
	h.Del("Access-Control-Allow-Headers")
	h.Del("Access-Control-Expose-Headers")
}

func (w *writer) WriteHeader(code int) {
	w.fix()
	w.ResponseWriter.WriteHeader(code)
}

func (w *writer) Write(b []byte) (int, error) {
	w.fix()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps streaming handlers (HTTP-FLV) streaming.
func (w *writer) Flush() {
	w.fix()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
