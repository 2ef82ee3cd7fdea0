package s3store_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/internal/store"
	"github.com/livegrid/livegrid/internal/store/s3store"
	"github.com/livegrid/livegrid/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rawClient talks to the test server without the store, to check what the
// store wrote.
func rawClient(t *testing.T, srv *storetest.MinIO) *minio.Client {
	t.Helper()
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := minio.New(srv.Addr(), &minio.Options{
		Creds:     credentials.NewStaticV4(storetest.MinIOUser, storetest.MinIOPassword, ""),
		Region:    "us-east-1",
		Transport: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformance(t *testing.T) {
	srv := storetest.StartMinIO(t)
	raw := rawClient(t, srv)
	var n atomic.Int32
	var bucket string
	storetest.Conformance(t, storetest.Backend{
		Open: func(t *testing.T) store.Store {
			// A fresh bucket per case, made by Open.
			bucket = fmt.Sprintf("conformance-%d", n.Add(1))
			st, err := store.Open(context.Background(), srv.URL(bucket), store.Options{Getenv: srv.Getenv})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		ContentType: func(t *testing.T, key string) string {
			info, err := raw.StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
			if err != nil {
				t.Fatalf("StatObject(%q): %v", key, err)
			}
			return info.ContentType
		},
	})
}

func TestPrefix(t *testing.T) {
	srv := storetest.StartMinIO(t)
	raw := rawClient(t, srv)
	ctx := context.Background()
	st, err := store.Open(ctx, srv.URL("prefixed", "prefix=/tenant-a/"), store.Options{Getenv: srv.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Put(ctx, "live/cam1/index.m3u8", []byte("#EXTM3U\n"), "application/vnd.apple.mpegurl"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.StatObject(ctx, "prefixed", "tenant-a/live/cam1/index.m3u8", minio.StatObjectOptions{}); err != nil {
		t.Errorf("object not under the prefix in the bucket: %v", err)
	}
	// Objects outside the prefix are not the store's.
	if _, err := raw.PutObject(ctx, "prefixed", "other/x", nil, 0, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(ctx, "")
	if err != nil || len(objs) != 1 || objs[0].Key != "live/cam1/index.m3u8" {
		t.Errorf("List = %v, %v; want only live/cam1/index.m3u8", objs, err)
	}
	if got, err := st.Get(ctx, "live/cam1/index.m3u8"); err != nil || string(got) != "#EXTM3U\n" {
		t.Errorf("Get = %q, %v", got, err)
	}
}

func TestBucket(t *testing.T) {
	srv := storetest.StartMinIO(t)
	ctx := context.Background()

	_, err := store.Open(ctx, srv.URL("missing"), store.Options{Getenv: srv.Getenv, BucketMustExist: true})
	if err == nil {
		t.Error("Open with BucketMustExist of a missing bucket succeeded")
	}
	for range 2 { // creates the bucket, then finds it
		st, err := store.Open(ctx, srv.URL("made"), store.Options{Getenv: srv.Getenv})
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	st, err := store.Open(ctx, srv.URL("made"), store.Options{Getenv: srv.Getenv, BucketMustExist: true})
	if err != nil {
		t.Fatalf("Open with BucketMustExist of a made bucket: %v", err)
	}
	st.Close()

	wrong := func(name string) string {
		if name == "AWS_SECRET_ACCESS_KEY" {
			return "not-the-password"
		}
		return srv.Getenv(name)
	}
	if _, err := store.Open(ctx, srv.URL("made"), store.Options{Getenv: wrong}); err == nil {
		t.Error("Open with a wrong secret succeeded")
	}
}

func TestServerDown(t *testing.T) {
	srv := storetest.StartMinIO(t)
	ctx := context.Background()
	st, err := store.Open(ctx, srv.URL("down"), store.Options{Getenv: srv.Getenv, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv.Kill(t)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	err = st.Put(ctx, "live/x", []byte("x"), "")
	if err == nil || errors.Is(err, store.ErrRejected) || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Put to a stopped server error = %v, want a plain (retryable) error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Put to a stopped server took %v; the client retries too long", d)
	}
	srv.Start(t)
	if err := st.Put(ctx, "live/x", []byte("x"), ""); err != nil {
		t.Errorf("Put after restart: %v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  s3store.Config
	}{
		{"no bucket", s3store.Config{Endpoint: "127.0.0.1:1"}},
		{"prefix without slash", s3store.Config{Endpoint: "127.0.0.1:1", Bucket: "b", Prefix: "p"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s3store.New(context.Background(), tc.cfg); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}
