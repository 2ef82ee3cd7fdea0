package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/store"
	"github.com/livegrid/livegrid/internal/store/storetest"
)

func TestSweep(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const retention = 24 * time.Hour
	objs := []store.Object{
		{Key: "live/cam1/s1/720p/00000001.m4s", Modified: now.Add(-72 * time.Hour)},
		{Key: "live/cam1/s1/index.m3u8", Modified: now.Add(-48 * time.Hour)},
		{Key: "live/cam1/s2/720p/00000001.m4s", Modified: now.Add(-retention)}, // exactly at the cutoff: kept
		{Key: "live/cam1/s2/index.m3u8", Modified: now.Add(-time.Minute)},
	}
	tests := []struct {
		name        string
		failDelete  string
		wantDeleted []string
		wantErr     bool
	}{
		{"deletes what is older than the cutoff", "", []string{"live/cam1/s1/720p/00000001.m4s", "live/cam1/s1/index.m3u8"}, false},
		{"a failed delete does not stop the sweep", "live/cam1/s1/720p/00000001.m4s", []string{"live/cam1/s1/index.m3u8"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var deleted []string
			var listed string
			st := &storetest.Fake{
				ListFunc: func(_ context.Context, prefix string) ([]store.Object, error) {
					listed = prefix
					return objs, nil
				},
				DeleteFunc: func(_ context.Context, key string) error {
					if key == tc.failDelete {
						return errors.New("disk on fire")
					}
					deleted = append(deleted, key)
					return nil
				},
			}
			n, err := store.Sweep(context.Background(), st, "live/cam1/", now.Add(-retention))
			if (err != nil) != tc.wantErr {
				t.Errorf("Sweep error = %v, want error %v", err, tc.wantErr)
			}
			if listed != "live/cam1/" {
				t.Errorf("listed prefix %q", listed)
			}
			if n != len(tc.wantDeleted) || !slices.Equal(deleted, tc.wantDeleted) {
				t.Errorf("Sweep deleted %d: %q, want %q", n, deleted, tc.wantDeleted)
			}
		})
	}
}

func TestSweepListFails(t *testing.T) {
	st := &storetest.Fake{ListFunc: func(context.Context, string) ([]store.Object, error) {
		return nil, errors.New("store down")
	}}
	if n, err := store.Sweep(context.Background(), st, "live/", time.Now()); err == nil || n != 0 {
		t.Errorf("Sweep = %d, %v; want 0 and an error", n, err)
	}
}

func TestSweepStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var deletes int
	st := &storetest.Fake{
		ListFunc: func(context.Context, string) ([]store.Object, error) {
			return []store.Object{{Key: "a"}, {Key: "b"}, {Key: "c"}}, nil
		},
		DeleteFunc: func(context.Context, string) error {
			deletes++
			cancel()
			return nil
		},
	}
	n, err := store.Sweep(ctx, st, "", time.Now())
	if !errors.Is(err, context.Canceled) || n != 1 || deletes != 1 {
		t.Errorf("Sweep = %d, %v after %d deletes; want 1, context.Canceled", n, err, deletes)
	}
}

// TestSweepFileStore runs retention on real files whose times are set.
func TestSweepFileStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "file://"+t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, k := range []string{"live/cam1/s1/index.m3u8", "live/cam1/s2/index.m3u8"} {
		if err := st.Put(ctx, k, []byte("#EXTM3U\n"), ""); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := st.List(ctx, "")
	if err != nil || len(objs) != 2 {
		t.Fatalf("List = %v, %v", objs, err)
	}
	// Everything written so far is older than a cutoff a day ahead.
	n, err := store.Sweep(ctx, st, "live/cam1/s1/", objs[0].Modified.Add(24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	left, _ := st.List(ctx, "")
	if len(left) != 1 || left[0].Key != "live/cam1/s2/index.m3u8" {
		t.Errorf("left after sweep: %v", left)
	}
}
