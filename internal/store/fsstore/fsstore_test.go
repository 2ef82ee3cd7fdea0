package fsstore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/internal/store"
	"github.com/livegrid/livegrid/internal/store/fsstore"
	"github.com/livegrid/livegrid/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	storetest.Conformance(t, storetest.Backend{
		Open: func(t *testing.T) store.Store {
			st, err := fsstore.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	})
}

func TestGetMissingWrapsErrNotExist(t *testing.T) {
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Get(context.Background(), "live/cam1/none.m4s")
	if !errors.Is(err, store.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get error = %v, want both ErrNotFound and fs.ErrNotExist", err)
	}
}

func TestLayoutOnDisk(t *testing.T) {
	dir := t.TempDir()
	st, err := fsstore.New(filepath.Join(dir, "data")) // created on open
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const key = "live/cam1/s1/720p/00000042.m4s"
	if err := st.Put(ctx, key, []byte("segment"), "video/iso.segment"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "data", "live", "cam1", "s1", "720p", "00000042.m4s")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("object file: %v", err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("object file mode = %v, want 0644", fi.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	// A write in progress (a temporary file) is not an object.
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), ".tmp-00000043.m4s-123"), []byte("part"), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(ctx, "live/")
	if err != nil || len(objs) != 1 || objs[0].Key != key {
		t.Errorf("List = %v, %v; want only %s", objs, err, key)
	}
	if err := st.Put(ctx, "live/cam1/.tmp-x", []byte("x"), ""); !errors.Is(err, store.ErrBadKey) {
		t.Errorf("Put of a temporary-file name error = %v, want ErrBadKey", err)
	}

	// Deleting a session's last object removes its empty folders.
	if err := os.Remove(filepath.Join(filepath.Dir(p), ".tmp-00000043.m4s-123")); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "live")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty folders left after Delete: stat live = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
		t.Errorf("the root itself must stay: %v", err)
	}
}

func TestPutOverFolderIsRejected(t *testing.T) {
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Put(ctx, "live/cam1/s1/index.m3u8", []byte("x"), ""); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "live/cam1/s1", []byte("x"), ""); !errors.Is(err, store.ErrRejected) {
		t.Errorf("Put over a folder error = %v, want ErrRejected", err)
	}
	if err := st.Put(ctx, "live/cam1/s1/index.m3u8/x", []byte("x"), ""); !errors.Is(err, store.ErrRejected) {
		t.Errorf("Put below an object error = %v, want ErrRejected", err)
	}
}

func TestNewOnAFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fsstore.New(p); err == nil {
		t.Error("New on a file succeeded")
	}
}

func TestCancelledContext(t *testing.T) {
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.Put(ctx, "a", []byte("x"), ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context error = %v", err)
	}
}
