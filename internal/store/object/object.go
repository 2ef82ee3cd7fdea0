// Package object holds what livegrid's object-store backends share with the
// store port: the rules for object keys, object metadata and the errors every
// backend returns. It imports nothing from livegrid so that the backends can
// use it while package store opens them; users should reach these names
// through package store.
package object

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxKeyLen is the longest key in bytes, S3's limit.
const MaxKeyLen = 1024

var (
	// ErrNotFound means no object has the key.
	ErrNotFound = errors.New("store: object not found")
	// ErrBadKey means a key or listing prefix breaks the key rules.
	ErrBadKey = errors.New("store: bad key")
	// ErrRejected means the backend refused this one object for a reason
	// that retrying will not change (too large, a folder in the way).
	ErrRejected = errors.New("store: object rejected")
)

// Info describes one stored object.
type Info struct {
	Key      string
	Size     int64
	Modified time.Time
}

// CheckKey reports whether key is a valid object key: a relative,
// slash-separated path such as "live/cam1/s1/720p/00000042.m4s" of at most
// MaxKeyLen bytes of UTF-8, with no empty, "." or ".." segment, no leading
// or trailing slash, no backslash and no control character. The rules keep
// a key the same object on a filesystem and in S3.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrBadKey)
	}
	return checkPath(key)
}

// CheckPrefix reports whether prefix is a valid listing prefix: empty (all
// objects), or a key with an optional trailing slash.
func CheckPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkPath(strings.TrimSuffix(prefix, "/"))
}

func checkPath(p string) error {
	if len(p) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrBadKey, len(p), MaxKeyLen)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w %s: not UTF-8", ErrBadKey, quote(p))
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\':
			return fmt.Errorf("%w %s: backslash", ErrBadKey, quote(p))
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("%w %s: control character %#02x", ErrBadKey, quote(p), c)
		}
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w %s: leading slash", ErrBadKey, quote(p))
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w %s: empty path segment", ErrBadKey, quote(p))
		case ".", "..":
			return fmt.Errorf("%w %s: %q segment", ErrBadKey, quote(p), seg)
		}
	}
	return nil
}

// quote shortens a key for an error message.
func quote(p string) string {
	const max = 96
	if len(p) > max {
		return fmt.Sprintf("%q...", p[:max])
	}
	return fmt.Sprintf("%q", p)
}
