package auth

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrBadPath means a request path is refused: traversal, an encoded
// separator, a backslash, a control character or broken escaping.
var ErrBadPath = errors.New("auth: bad request path")

// CleanPath decodes raw, a request path as sent (percent-encoded, without
// the query), and returns the decoded path with repeated slashes folded.
// It refuses rather than resolves anything a file server, cache or proxy
// behind the edge could read as a different path: "." and ".." segments
// (also encoded, with ";params", or with trailing dots and spaces), any
// backslash, encoded slashes, "%25" (double encoding), control characters,
// malformed escapes and invalid UTF-8 (overlong dots such as %c0%ae).
func CleanPath(raw string) (string, error) {
	if raw == "" || raw[0] != '/' {
		return "", fmt.Errorf("%w: does not start with /", ErrBadPath)
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return "", fmt.Errorf("%w: malformed escape", ErrBadPath)
			}
			d := unhex(raw[i+1])<<4 | unhex(raw[i+2])
			switch {
			case d == '/' || d == '\\':
				return "", fmt.Errorf("%w: encoded separator", ErrBadPath)
			case d == '%':
				return "", fmt.Errorf("%w: double encoding", ErrBadPath)
			case d < 0x20 || d == 0x7f:
				return "", fmt.Errorf("%w: control character", ErrBadPath)
			}
			b.WriteByte(d)
			i += 2
		case c == '\\':
			return "", fmt.Errorf("%w: backslash", ErrBadPath)
		case c == '?' || c == '#':
			return "", fmt.Errorf("%w: query or fragment in the path", ErrBadPath)
		case c < 0x20 || c == 0x7f:
			return "", fmt.Errorf("%w: control character", ErrBadPath)
		default:
			b.WriteByte(c)
		}
	}
	dec := b.String()
	if !utf8.ValidString(dec) {
		return "", fmt.Errorf("%w: invalid UTF-8", ErrBadPath)
	}

	segs := strings.Split(dec, "/")
	out := segs[:0]
	for _, s := range segs {
		if s == "" {
			continue
		}
		if isDotSegment(s) {
			return "", fmt.Errorf("%w: traversal", ErrBadPath)
		}
		out = append(out, s)
	}
	p := "/" + strings.Join(out, "/")
	if len(out) > 0 && strings.HasSuffix(dec, "/") {
		p += "/"
	}
	return p, nil
}

// isDotSegment reports whether a segment may mean "here" or "up" to some
// server: dots (ASCII or look-alikes) and spaces only, before any ';'.
func isDotSegment(s string) bool {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	dots := false
	for _, r := range s {
		switch r {
		case '.', '\uff0e', '\u2024', '\ufe52':
			dots = true
		case ' ':
		default:
			return false
		}
	}
	return dots || s == ""
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
