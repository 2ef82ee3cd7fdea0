package auth

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// HeaderDenied carries the reason of a refusal to the client.
const HeaderDenied = "X-Livegrid-Denied"

// Request limits of the play middleware.
const (
	DefaultMaxURLBytes    = 4 << 10
	DefaultMaxHeaderBytes = 16 << 10
)

// Request-level reasons.
const (
	ReasonURITooLong      = "uri_too_long"
	ReasonHeadersTooLarge = "headers_too_large"
	ReasonBadPath         = "bad_path"
	ReasonBadQuery        = "bad_query"
)

// Middleware guards play requests with p: a request line over
// MaxURLBytes gets 414, headers over MaxHeaderBytes 431, a path CleanPath
// refuses or a malformed query 400, and a Policy refusal 403; each carries
// the reason in X-Livegrid-Denied and counts in p.Denials. next sees the
// cleaned path. The http.Server's own MaxHeaderBytes must be at least
// p's for the 431 to come from here.
func Middleware(p *Policy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uri := r.RequestURI
		if uri == "" {
			uri = r.URL.RequestURI()
		}
		if len(uri) > orDefault(p.MaxURLBytes, DefaultMaxURLBytes) {
			refuse(w, p, http.StatusRequestURITooLong, ReasonURITooLong)
			return
		}
		if headerBytes(r) > orDefault(p.MaxHeaderBytes, DefaultMaxHeaderBytes) {
			refuse(w, p, http.StatusRequestHeaderFieldsTooLarge, ReasonHeadersTooLarge)
			return
		}
		raw := r.URL.EscapedPath()
		if strings.HasPrefix(uri, "/") {
			raw, _, _ = strings.Cut(uri, "?")
		}
		clean, err := CleanPath(raw)
		if err != nil {
			refuse(w, p, http.StatusBadRequest, ReasonBadPath)
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			refuse(w, p, http.StatusBadRequest, ReasonBadQuery)
			return
		}
		d := p.Check(r.Context(), Request{
			Action:   ActionPlay,
			Stream:   StreamFromPath(clean),
			Path:     clean,
			Query:    q,
			ClientIP: p.clientIP(r),
			Referer:  r.Referer(),
		})
		if !d.Allowed {
			deny403(w, d.Reason)
			return
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = clean, ""
		r2.URL = &u
		next.ServeHTTP(w, r2)
	})
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// refuse answers a request refused before the Policy saw it.
func refuse(w http.ResponseWriter, p *Policy, status int, reason string) {
	p.denials.add(reason)
	w.Header().Set(HeaderDenied, reason)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Connection", "close")
	http.Error(w, http.StatusText(status), status)
}

func deny403(w http.ResponseWriter, reason string) {
	w.Header().Set(HeaderDenied, reason)
	// A CDN in front must not serve one viewer's refusal to the next.
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
}

// headerBytes is the size of the header block as sent, near enough.
func headerBytes(r *http.Request) int {
	n := len("Host: \r\n") + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	return n
}

// clientIP is the peer address, or, when the peer is a trusted proxy, the
// right-most X-Forwarded-For address that is not one.
func (p *Policy) clientIP(r *http.Request) netip.Addr { return ClientIP(r, p.TrustedProxies) }

// ClientIP is the address of the viewer behind r: the peer, or when the
// peer is one of the trusted proxies, the last X-Forwarded-For hop that is
// not a trusted proxy itself.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ip := parseRemote(r.RemoteAddr)
	if !ip.IsValid() || !inAny(trusted, ip) {
		return ip
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		ip = a.WithZone("").Unmap()
		if !inAny(trusted, ip) {
			break
		}
	}
	return ip
}
