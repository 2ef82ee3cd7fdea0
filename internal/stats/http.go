package stats

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/livegrid/livegrid/internal/auth"
	"github.com/livegrid/livegrid/internal/hub"
)

// DefaultSessionParam is the query parameter a player may set to tell
// its sessions apart behind one address and User-Agent.
const DefaultSessionParam = "session"

// maxSessionLen bounds the session parameter taken from a request.
const maxSessionLen = 128

// HTTPOptions tunes Middleware.
type HTTPOptions struct {
	// Prefix is the path before the stream name; default "/live/".
	Prefix string
	// TrustedProxies are load balancers whose X-Forwarded-For names the
	// client; other peers are the client themselves.
	TrustedProxies []netip.Prefix
	// SessionParam is the query parameter with a player session; default
	// DefaultSessionParam.
	SessionParam string
}

// Middleware counts the viewers of what next serves under the prefix.
// HTTP-FLV ({stream}.flv, {stream}/{rendition}.flv) is a Session per
// response; manifests ({stream}/index.m3u8, index.mpd, a rendition's
// index.m3u8) and segments count through Observe once their response
// is written. Only successful GETs count, so refused and unknown streams
// are not tracked; other paths pass through untouched.
func (t *Tracker) Middleware(next http.Handler, o HTTPOptions) http.Handler {
	if o.Prefix == "" {
		o.Prefix = "/live/"
	}
	if o.SessionParam == "" {
		o.SessionParam = DefaultSessionParam
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		name, kind, ok := ParsePath(o.Prefix, r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		c := Client{IP: ClientIP(r, o.TrustedProxies), UserAgent: r.UserAgent()}
		if s := r.URL.Query().Get(o.SessionParam); len(s) <= maxSessionLen {
			c.Session = s
		}
		cw := &countingWriter{ResponseWriter: w}
		if kind == FLV {
			cw.open = func() *Session { return t.OpenClient(name, FLV, c) }
			defer cw.close()
			next.ServeHTTP(cw, r)
			return
		}
		next.ServeHTTP(cw, r)
		if cw.status == 0 {
			cw.status = http.StatusOK
		}
		if cw.status/100 == 2 || cw.status == http.StatusNotModified {
			t.Observe(name, kind, c, cw.bytes)
		}
	})
}

// ParsePath reads a viewer path under prefix: the stream and the
// protocol, "" for a segment (or any other file of a stream). ok is
// false for paths that name no stream.
func ParsePath(prefix, path string) (stream string, proto Protocol, ok bool) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return "", "", false
		}
	}
	switch len(parts) {
	case 1:
		name, ok := strings.CutSuffix(parts[0], ".flv")
		if !ok || hub.ValidateName(name) != nil {
			return "", "", false
		}
		return name, FLV, true
	case 2, 3:
		name, file := parts[0], parts[len(parts)-1]
		if hub.ValidateName(name) != nil {
			return "", "", false
		}
		switch {
		case strings.HasSuffix(file, ".m3u8"):
			return name, HLS, true
		case strings.HasSuffix(file, ".mpd"):
			return name, DASH, true
		case len(parts) == 2 && strings.HasSuffix(file, ".flv"):
			return name, FLV, true // {stream}/{rendition}.flv
		}
		return name, "", true
	}
	return "", "", false
}

// ClientIP is the request's peer address or, when the peer is one of
// trusted, the right-most X-Forwarded-For address that is not.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	if ip := auth.ClientIP(r, trusted); ip.IsValid() {
		return ip.String()
	}
	return r.RemoteAddr
}

// countingWriter counts a response's status and body bytes; for HTTP-FLV
// it opens a Session on a 200 and adds each write to it.
type countingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	open   func() *Session
	sess   *Session
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if code == http.StatusOK && w.open != nil {
			w.sess = w.open()
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	w.sess.Add(int64(n))
	return n, err
}

func (w *countingWriter) close() { w.sess.Close() }

// Unwrap lets http.ResponseController reach the connection (deadlines,
// flushes).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher for handlers that assert it.
func (w *countingWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}
