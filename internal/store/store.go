// Package store is livegrid's object-store port: where segments, init
// segments and playlists of every stream session are kept for look-back.
// Open picks a backend by URL: a local folder (file:///path, the standalone
// default, package fsstore) or S3/MinIO (s3://bucket?endpoint=..., package
// s3store). Package resilient wraps either so that a store outage never
// blocks the live path; Sweep applies retention.
//
// Store is the adapter surface; consumers declare the narrower interfaces
// they need (the packager an objectStore with Put, the look-back handler
// one with Get and List).
package store

import (
	"context"
	"errors"

	"github.com/livegrid/livegrid/internal/store/object"
)

// Store is an object store keyed by slash-separated relative paths (see
// CheckKey). Implementations are safe for concurrent use.
type Store interface {
	// Put stores data under key, replacing any object there. Readers see
	// the old object or the new one, never part of one.
	Put(ctx context.Context, key string, data []byte, contentType string) error
	// Get returns the object's bytes, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns every object whose key starts with prefix (a plain
	// string prefix, as in S3: "live/a" matches "live/ab/x"), sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Close releases the backend's connections.
	Close() error
}

// Object describes one stored object: its key, size in bytes and the time
// it was last written.
type Object = object.Info

var (
	// ErrNotFound means no object has the key.
	ErrNotFound = object.ErrNotFound
	// ErrBadKey means a key or listing prefix breaks the key rules.
	ErrBadKey = object.ErrBadKey
	// ErrRejected means the backend refused one object for good; retrying
	// the same Put cannot succeed.
	ErrRejected = object.ErrRejected
	// ErrBadURL means a store URL could not be used; the message names the
	// part or query key at fault.
	ErrBadURL = errors.New("store: bad URL")
	// ErrNoCredentials means an s3:// store was asked for without
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	ErrNoCredentials = errors.New("store: no S3 credentials")
)

// MaxKeyLen is the longest key in bytes.
const MaxKeyLen = object.MaxKeyLen

// CheckKey reports whether key is a valid object key: a relative,
// slash-separated path of at most MaxKeyLen bytes of UTF-8 with no empty,
// "." or ".." segment, no leading or trailing slash, no backslash and no
// control character (NUL included). The error wraps ErrBadKey.
func CheckKey(key string) error { return object.CheckKey(key) }

// CheckPrefix reports whether prefix is a valid List prefix: empty, or a
// valid key with an optional trailing slash.
func CheckPrefix(prefix string) error { return object.CheckPrefix(prefix) }
