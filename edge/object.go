package edge

import (
	"fmt"
	"hash/crc64"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// object is one origin answer held for viewers: a body small enough to
// keep and the headers a viewer needs. It is never changed once made, so
// any number of viewers read it at once.
type object struct {
	status  int
	body    []byte
	header  http.Header   // the passed-through headers (passHeaders) and ETag
	fetched time.Time     // when the origin answered, on the edge's clock
	age     time.Duration // Age the origin (or a cache before it) reported
	modTime time.Time     // Last-Modified, zero when none
	// lastModified is modTime as http.ServeContent writes it, "" when it
	// writes none; length is len(body). Both are formatted once, not per
	// viewer.
	lastModified, length string
	// expires ends freshness; zero with store set means immutable (kept
	// until evicted).
	expires time.Time
	store   bool // may be cached; false is shared with waiting viewers only
}

// fresh reports whether o may still be served from the cache at now.
func (o *object) fresh(now time.Time) bool {
	return o.store && (o.expires.IsZero() || now.Before(o.expires))
}

// ageAt is the Age header value at now: the origin's age plus the time
// the object spent here.
func (o *object) ageAt(now time.Time) string {
	d := o.age + now.Sub(o.fetched)
	return strconv.FormatInt(int64(max(d, 0)/time.Second), 10)
}

// size is what the object costs the cache: body, headers and bookkeeping.
func (o *object) size(key string) int64 {
	n := int64(len(o.body) + len(key) + entryOverhead)
	for k, vs := range o.header {
		for _, v := range vs {
			n += int64(len(k) + len(v))
		}
	}
	return n
}

// entryOverhead approximates the memory of an entry beyond its bytes.
const entryOverhead = 256

// passHeaders are the origin response headers an edge passes to viewers;
// the rest (hop-by-hop, CORS, Date, Server) are the edge's own.
var passHeaders = []string{"Content-Type", "Cache-Control", "Content-Encoding", "ETag", "Last-Modified", "Expires", "Content-Language"}

var crcTable = crc64.MakeTable(crc64.ECMA)

// newObject makes the object of an origin answer fetched at now, deciding
// its freshness with f.
func newObject(p string, status int, h http.Header, body []byte, now time.Time, f freshness) *object {
	o := &object{status: status, body: body, header: make(http.Header, len(passHeaders)+1), fetched: now,
		length: strconv.Itoa(len(body))}
	for _, k := range passHeaders {
		if vs := h.Values(k); len(vs) > 0 {
			o.header[k] = append([]string(nil), vs...)
		}
	}
	if a, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && a > 0 && a < 1<<31 {
		o.age = time.Duration(a) * time.Second
	}
	if lm := h.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			o.modTime = t
			if !t.IsZero() && !t.Equal(time.Unix(0, 0)) { // http.ServeContent's test
				o.lastModified = t.UTC().Format(http.TimeFormat)
			}
		}
	}
	if status == http.StatusOK && o.header.Get("ETag") == "" {
		// A strong validator that is cheap to compute and stable across
		// edges, so If-None-Match works wherever a viewer lands.
		o.header.Set("ETag", fmt.Sprintf(`"%016x-%x"`, crc64.Checksum(body, crcTable), len(body)))
	}
	ttl, store := f.ttl(p, status, o.header.Get("Cache-Control"), o.age)
	o.store = store
	if store && ttl > 0 {
		o.expires = now.Add(ttl)
	}
	return o
}

// freshness decides how long an origin answer may be served from the
// cache.
type freshness struct {
	playlistTTL    time.Duration // a playlist whose origin gave no max-age
	playlistMaxTTL time.Duration // cap on an origin's playlist max-age
	negativeTTL    time.Duration // a 404 or 410
}

func defaultFreshness() freshness {
	return freshness{playlistTTL: 500 * time.Millisecond, playlistMaxTTL: time.Second, negativeTTL: 500 * time.Millisecond}
}

// immutableExts are the files a live presentation never rewrites: media
// and init segments get new names, so a name's bytes never change.
var immutableExts = map[string]bool{".m4s": true, ".mp4": true, ".m4a": true, ".m4v": true, ".ts": true, ".aac": true, ".vtt": true}

// immutable reports whether the object at path p never changes.
func immutable(p string) bool { return immutableExts[strings.ToLower(path.Ext(p))] }

// ttl returns how long the answer stays fresh and whether it may be
// cached at all; a zero ttl with store set means until evicted.
//
// The edge is its operator's own cache (a surrogate), so it reads the
// origin's Cache-Control the way a CDN edge does: no-store and private
// are obeyed; no-cache only shortens the hold to the playlist (or, for a
// 404, the negative) TTL, which still shields the origin from a storm;
// max-age is honoured for playlists, capped so the edge stays close to
// live. Viewers get the origin's Cache-Control as it was.
func (f freshness) ttl(p string, status int, cacheControl string, age time.Duration) (time.Duration, bool) {
	cc := parseCacheControl(cacheControl)
	if cc.noStore || cc.private {
		return 0, false
	}
	switch status {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusGone:
		return f.negativeTTL, f.negativeTTL > 0
	default:
		return 0, false
	}
	if cc.noCache {
		return f.playlistTTL, f.playlistTTL > 0
	}
	if immutable(p) {
		return 0, true
	}
	if !cc.hasMaxAge {
		return f.playlistTTL, f.playlistTTL > 0
	}
	ttl := min(cc.maxAge-age, f.playlistMaxTTL)
	return ttl, ttl > 0
}

// cacheControl is the part of a Cache-Control header the edge obeys.
type cacheControl struct {
	noStore, noCache, private bool
	hasMaxAge                 bool
	maxAge                    time.Duration // s-maxage when given, else max-age
}

func parseCacheControl(s string) cacheControl {
	var cc cacheControl
	sMax := false
	for _, d := range strings.Split(s, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		val = strings.Trim(strings.TrimSpace(val), `"`)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "no-store":
			cc.noStore = true
		case "no-cache":
			cc.noCache = true
		case "private":
			cc.private = true
		case "s-maxage", "max-age":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				continue
			}
			isS := strings.EqualFold(strings.TrimSpace(name), "s-maxage")
			if sMax && !isS {
				continue // s-maxage wins for shared caches
			}
			sMax = sMax || isS
			cc.hasMaxAge = true
			cc.maxAge = time.Duration(min(n, 1<<31)) * time.Second
		}
	}
	return cc
}
