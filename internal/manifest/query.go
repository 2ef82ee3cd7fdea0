package manifest

import (
	"bytes"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// LinkParams are the query parameters a playlist's links carry over from
// the request that fetched it: a signed play URL (expires, token, ip,
// stream) and a player's session tag. Players (hls.js, dash.js, Safari)
// resolve relative links without the playlist's query, so without this a
// token-protected stream would play its playlist and be refused its
// segments.
var LinkParams = []string{"expires", "token", "ip", "stream", "session"}

// LinkQuery picks LinkParams from q, encoded; "" when none is present.
func LinkQuery(q url.Values) string {
	keep := url.Values{}
	for _, k := range LinkParams {
		if v, ok := q[k]; ok && len(v) > 0 {
			keep[k] = v[:1]
		}
	}
	return keep.Encode()
}

var (
	hlsURIAttr  = regexp.MustCompile(`URI="([^"]*)"`)
	dashURIAttr = regexp.MustCompile(`\b(media|initialization)="([^"]*)"`)
)

// AddQueryHLS gives every link of an HLS playlist (URI lines and URI="..."
// attributes: EXT-X-MAP, EXT-X-MEDIA) the link parameters of query,
// replacing those a link already has; an empty query removes them.
func AddQueryHLS(body []byte, query string) []byte {
	if query == "" && !bytes.Contains(body, []byte("token=")) {
		return body
	}
	lines := bytes.Split(body, []byte("\n"))
	for i, l := range lines {
		s := strings.TrimRight(string(l), "\r")
		switch {
		case s == "":
		case strings.HasPrefix(s, "#"):
			if strings.Contains(s, `URI="`) {
				lines[i] = []byte(hlsURIAttr.ReplaceAllStringFunc(s, func(m string) string {
					return `URI="` + withQuery(m[5:len(m)-1], query) + `"`
				}))
			}
		default:
			lines[i] = []byte(withQuery(s, query))
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

// AddQueryDASH does what AddQueryHLS does to the media and initialization
// templates of an MPD. The query must be URL-encoded (LinkQuery's is); '&'
// is escaped for XML.
func AddQueryDASH(body []byte, query string) []byte {
	if query == "" && !bytes.Contains(body, []byte("token=")) {
		return body
	}
	return dashURIAttr.ReplaceAllFunc(body, func(m []byte) []byte {
		sub := dashURIAttr.FindSubmatch(m)
		link := strings.ReplaceAll(string(sub[2]), "&amp;", "&")
		link = strings.ReplaceAll(withQuery(link, query), "&", "&amp;")
		return []byte(string(sub[1]) + `="` + link + `"`)
	})
}

// withQuery replaces the link parameters a link already carries (an
// edge's own token, signed for its origin request) with query's.
func withQuery(link, query string) string {
	path, old, ok := strings.Cut(link, "?")
	if !ok {
		if query == "" {
			return link
		}
		return link + "?" + query
	}
	var kept []string
	for _, kv := range strings.Split(old, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if kv != "" && !slices.Contains(LinkParams, k) {
			kept = append(kept, kv)
		}
	}
	if query != "" {
		kept = append(kept, query)
	}
	if len(kept) == 0 {
		return path
	}
	return path + "?" + strings.Join(kept, "&")
}
