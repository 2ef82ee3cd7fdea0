// Package fsstore keeps objects as files under a root folder, one file per
// key: the standalone default, and the layout an operator can browse
// (data/live/{stream}/{session}/720p/00000042.m4s).
//
// Writes are atomic: a temporary file in the target folder, renamed over
// the key, so a viewer never reads part of a segment. Files are not synced
// to disk on each write; a power cut may lose the last seconds of
// look-back, which costs less than an fsync per segment on the live path.
// Content types are not kept: the HTTP layer derives them from the key's
// extension.
package fsstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/livegrid/livegrid/internal/store/object"
)

// tempPrefix starts the name of a file being written; List skips such files
// and Put refuses keys whose last segment starts with it.
const tempPrefix = ".tmp-"

// Store is a folder of objects. It holds no open files and is safe for
// concurrent use.
type Store struct {
	root string
}

// New opens the store rooted at dir, creating the folder if needed.
func New(dir string) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fsstore: open %q: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("fsstore: open: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("fsstore: open: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("fsstore: open %q: not a folder", root)
	}
	return &Store{root: root}, nil
}

// Root is the absolute path of the store's folder.
func (s *Store) Root() string { return s.root }

func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put writes data to a temporary file beside the key's file and renames it
// into place, creating folders as needed. contentType is not kept.
func (s *Store) Put(ctx context.Context, key string, data []byte, contentType string) error {
	if err := object.CheckKey(key); err != nil {
		return fmt.Errorf("fsstore: put: %w", err)
	}
	if strings.HasPrefix(filepath.Base(key), tempPrefix) {
		return fmt.Errorf("fsstore: put %q: %w: names starting with %q are reserved for files being written", key, object.ErrBadKey, tempPrefix)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fsstore: put %q: %w", key, err)
	}
	p := s.path(key)
	tmp, err := s.createTemp(p)
	if err != nil {
		return fmt.Errorf("fsstore: put %q: %w", key, err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		if fi, serr := os.Lstat(p); serr == nil && fi.IsDir() {
			return fmt.Errorf("fsstore: put %q: %w: a folder of that name holds other objects", key, object.ErrRejected)
		}
		return fmt.Errorf("fsstore: put %q: %w", key, err)
	}
	return nil
}

// createTemp makes the key's folder and a temporary file in it. A Delete
// pruning empty folders may remove the folder in between, so it tries again.
func (s *Store) createTemp(p string) (*os.File, error) {
	dir, base := filepath.Split(p)
	var err error
	for range 3 {
		if err = os.MkdirAll(dir, 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("%w: an object is in the way of a folder: %v", object.ErrRejected, err)
			}
			return nil, err
		}
		var f *os.File
		f, err = os.CreateTemp(dir, tempPrefix+base+"-*")
		if err == nil {
			// CreateTemp makes 0600 files; objects are for serving.
			if err = f.Chmod(0o644); err != nil {
				_ = f.Close()
				_ = os.Remove(f.Name())
				return nil, err
			}
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// Get reads the object. A missing key, or one naming a folder, gives an
// error wrapping both ErrNotFound and fs.ErrNotExist.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := object.CheckKey(key); err != nil {
		return nil, fmt.Errorf("fsstore: get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fsstore: get %q: %w", key, err)
	}
	data, err := os.ReadFile(s.path(key))
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return nil, fmt.Errorf("fsstore: get %q: %w: %w", key, object.ErrNotFound, fs.ErrNotExist)
	case errors.Is(err, syscall.EISDIR):
		return nil, fmt.Errorf("fsstore: get %q: %w: %w (a folder)", key, object.ErrNotFound, fs.ErrNotExist)
	default:
		return nil, fmt.Errorf("fsstore: get %q: %w", key, err)
	}
}

// Delete removes the object's file, then the folders it leaves empty up to
// the root, so swept sessions leave no folder behind.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := object.CheckKey(key); err != nil {
		return fmt.Errorf("fsstore: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fsstore: delete %q: %w", key, err)
	}
	p := s.path(key)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsstore: delete %q: %w", key, err)
	}
	// os.Remove refuses a folder that is not empty, which ends the climb.
	for dir := filepath.Dir(p); dir != s.root && strings.HasPrefix(dir, s.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// List walks the folder the prefix points into and returns the files whose
// keys start with prefix, sorted by key.
func (s *Store) List(ctx context.Context, prefix string) ([]object.Info, error) {
	if err := object.CheckPrefix(prefix); err != nil {
		return nil, fmt.Errorf("fsstore: list: %w", err)
	}
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = s.path(prefix[:i])
	}
	var out []object.Info
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil // nothing there, or removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out = append(out, object.Info{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fsstore: list %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b object.Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Close does nothing: the store holds no resources.
func (s *Store) Close() error { return nil }
