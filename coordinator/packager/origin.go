package packager

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livegrid/livegrid/internal/manifest"
	"github.com/livegrid/livegrid/internal/store/object"
)

// objectReader is what Origin needs of the object store.
type objectReader interface {
	Get(ctx context.Context, key string) ([]byte, error)
}

// Origin serves the Packager's live presentations over HTTP under /live/
// (see the package doc for the URL layout): playlists from memory with a
// short max-age, init and media segments from the store as immutable, and
// each rendition as HTTP-FLV. It answers CORS preflights and allows any
// origin, since players on other sites read it. Mount it at /live/
// unchanged; it reads the request's raw path itself.
type Origin struct {
	Packager *Packager
	Store    objectReader
	// Logger receives store failures; nil discards.
	Logger *slog.Logger
	// FLVWriteTimeout bounds one write to an HTTP-FLV viewer, who is
	// dropped after it. Default DefaultFLVWriteTimeout.
	FLVWriteTimeout time.Duration

	mu     sync.Mutex
	closed chan struct{} // closed by Close; made on first use
}

const (
	// maxURILen bounds the request target (path and query); longer is 414.
	maxURILen = 2048
	// maxPathLen bounds the path: two names of 128 bytes and a file name
	// fit well within it.
	maxPathLen = 512
	// maxNumberDigits is the most digits a file number may have (uint64).
	maxNumberDigits = 20

	cacheImmutable = "public, max-age=31536000, immutable"
	cacheError     = "no-cache"
	exposeHeaders  = "Content-Length, Content-Range, Accept-Ranges, Date, Age"
	allowMethods   = "GET, HEAD, OPTIONS"
)

type routeKind int

const (
	routeMaster  routeKind = iota + 1 // /live/{stream}/index.m3u8
	routeMPD                          // /live/{stream}/index.mpd
	routeMedia                        // /live/{stream}/{rendition}/index.m3u8
	routeInit                         // /live/{stream}/{rendition}/init.mp4, init-N.mp4
	routeSegment                      // /live/{stream}/{rendition}/NNNNNNNN.m4s
	routeFLV                          // /live/{stream}/{rendition}.flv
)

// route is a parsed origin path.
type route struct {
	kind              routeKind
	stream, rendition string
	file              string // routeInit: the init file name
	seq               uint64 // routeSegment
}

var (
	// errBadPath is a path no stream could have: traversal, escapes,
	// bad names (400).
	errBadPath = errors.New("bad path")
	// errNoRoute is a well-formed path the origin does not serve (404).
	errNoRoute = errors.New("no such resource")
	// errTooLong is an oversized path (414).
	errTooLong = errors.New("path too long")
)

// parsePath parses the escaped path of a request. It refuses, rather than
// decodes, any percent-escape: no valid name needs one, and decoding is
// where traversal hides.
func parsePath(p string) (route, error) {
	if len(p) > maxPathLen {
		return route{}, errTooLong
	}
	rest, ok := strings.CutPrefix(p, "/live/")
	if !ok {
		return route{}, errNoRoute
	}
	parts := strings.Split(rest, "/")
	for _, seg := range parts {
		if seg == "" || seg == "." || seg == ".." {
			return route{}, errBadPath
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; c == '%' || c == '\\' || c < 0x20 || c >= 0x7f {
				return route{}, errBadPath
			}
		}
	}
	if !validName(parts[0]) {
		return route{}, errBadPath
	}
	rt := route{stream: parts[0]}
	switch len(parts) {
	case 2:
		switch parts[1] {
		case "index.m3u8":
			rt.kind = routeMaster
		case "index.mpd":
			rt.kind = routeMPD
		default:
			name, ok := strings.CutSuffix(parts[1], ".flv")
			if !ok {
				return route{}, errNoRoute
			}
			if !validName(name) {
				return route{}, errBadPath
			}
			rt.kind, rt.rendition = routeFLV, name
		}
		return rt, nil
	case 3:
		if !validName(parts[1]) {
			return route{}, errBadPath
		}
		rt.rendition = parts[1]
		file := parts[2]
		switch {
		case file == "index.m3u8":
			rt.kind = routeMedia
		case file == manifest.DefaultInitName:
			rt.kind, rt.file = routeInit, file
		case strings.HasPrefix(file, "init-"):
			if _, ok := parseNumber(file, "init-", ".mp4"); !ok {
				return route{}, errNoRoute
			}
			rt.kind, rt.file = routeInit, file
		default:
			seq, ok := parseNumber(file, "", ".m4s")
			if !ok {
				return route{}, errNoRoute
			}
			rt.kind, rt.seq = routeSegment, seq
		}
		return rt, nil
	}
	return route{}, errNoRoute
}

// parseNumber reads prefix, a number written as SegmentName writes it
// (at least 8 digits, no extra leading zeros), and suffix.
func parseNumber(file, prefix, suffix string) (uint64, bool) {
	digits, ok := strings.CutPrefix(file, prefix)
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, suffix); !ok || len(digits) < 8 || len(digits) > maxNumberDigits {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || manifest.SegmentName(n) != digits+".m4s" {
		return 0, false
	}
	return n, true
}

// path writes the route back as a path.
func (rt route) path() string {
	switch rt.kind {
	case routeMaster:
		return "/live/" + rt.stream + "/index.m3u8"
	case routeMPD:
		return "/live/" + rt.stream + "/index.mpd"
	case routeMedia:
		return "/live/" + rt.stream + "/" + rt.rendition + "/index.m3u8"
	case routeInit:
		return "/live/" + rt.stream + "/" + rt.rendition + "/" + rt.file
	case routeSegment:
		return "/live/" + rt.stream + "/" + rt.rendition + "/" + manifest.SegmentName(rt.seq)
	case routeFLV:
		return "/live/" + rt.stream + "/" + rt.rendition + ".flv"
	}
	return ""
}

// ServeHTTP serves one request.
func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", exposeHeaders)
	fail := func(code int) {
		h.Set("Cache-Control", cacheError)
		http.Error(w, http.StatusText(code), code)
	}
	if len(r.RequestURI) > maxURILen || len(r.URL.RawQuery) > maxURILen {
		fail(http.StatusRequestURITooLong)
		return
	}
	rt, err := parsePath(r.URL.EscapedPath())
	switch {
	case errors.Is(err, errTooLong):
		fail(http.StatusRequestURITooLong)
		return
	case errors.Is(err, errBadPath):
		fail(http.StatusBadRequest)
		return
	case err != nil:
		fail(http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", allowMethods)
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && headerList(req) {
			h.Set("Access-Control-Allow-Headers", req)
		}
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", allowMethods)
		fail(http.StatusMethodNotAllowed)
		return
	}

	v := o.Packager.view(rt.stream)
	if v == nil {
		fail(http.StatusNotFound)
		return
	}
	playlist := "max-age=" + strconv.Itoa(v.maxAge)
	links := manifest.LinkQuery(r.URL.Query()) // a signed URL's token, carried to every link
	switch rt.kind {
	case routeMaster:
		serve(w, r, manifest.AddQueryHLS(v.master, links), typeHLS, playlist)
	case routeFLV:
		o.serveFLV(w, r, rt.stream, rt.rendition, v)
	case routeMPD:
		if v.mpd == nil {
			fail(http.StatusServiceUnavailable)
			return
		}
		serve(w, r, manifest.AddQueryDASH(v.mpd, links), typeDASH, playlist)
	case routeMedia:
		body, ok := v.media[rt.rendition]
		if !ok {
			fail(http.StatusNotFound)
			return
		}
		serve(w, r, manifest.AddQueryHLS(body, links), typeHLS, playlist)
	case routeInit, routeSegment:
		var key string
		ok := false
		if rt.kind == routeInit {
			key, ok = v.inits[rt.rendition][rt.file]
		} else {
			key, ok = v.segmentKey(rt.rendition, rt.seq)
		}
		if !ok {
			fail(http.StatusNotFound)
			return
		}
		data, err := o.Store.Get(r.Context(), key)
		switch {
		case errors.Is(err, object.ErrNotFound) || errors.Is(err, fs.ErrNotExist):
			fail(http.StatusNotFound)
			return
		case err != nil:
			if o.Logger != nil {
				o.Logger.Warn("origin: reading a segment from the store", "key", key, "err", err)
			}
			fail(http.StatusServiceUnavailable)
			return
		}
		serve(w, r, data, contentType(v.kinds[rt.rendition], rt.kind == routeInit), cacheImmutable)
	}
}

// serve writes a body with Range and HEAD support.
func serve(w http.ResponseWriter, r *http.Request, body []byte, contentType, cache string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", cache)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
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
