// Package s3store keeps objects in an S3 bucket (MinIO, AWS S3 or any
// S3-compatible server). It is the only livegrid package that imports
// minio-go.
package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/livegrid/livegrid/internal/store/object"
)

// DefaultMaxRetries is how many times the client tries one request before
// it returns the error. It is kept low: package resilient retries uploads
// with its own backoff, and a request must not hang through an outage.
const DefaultMaxRetries = 3

// Config says which bucket to use and how to reach it.
type Config struct {
	// Endpoint is the server as host[:port], e.g. "127.0.0.1:9000".
	Endpoint string
	// Secure selects HTTPS.
	Secure bool
	// Region is the bucket's region; empty lets the client discover it.
	Region string
	// Bucket is the bucket name.
	Bucket string
	// Prefix is prepended to every key ("" or ending in "/").
	Prefix string
	// AccessKey, SecretKey and SessionToken are the credentials.
	AccessKey, SecretKey, SessionToken string
	// BucketMustExist makes New fail when the bucket is missing instead of
	// creating it.
	BucketMustExist bool
	// MaxRetries is how many times one request is tried; 0 means
	// DefaultMaxRetries.
	MaxRetries int
	// Logger receives bucket creation; nil discards.
	Logger *slog.Logger
}

// Store is a bucket, or the part of one under Config.Prefix.
type Store struct {
	client    *minio.Client
	transport *http.Transport
	bucket    string
	prefix    string
}

// New connects to the server and makes sure the bucket exists, creating
// it unless cfg.BucketMustExist.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3store: no bucket")
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("s3store: prefix %q must end with '/'", cfg.Prefix)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	retries := cfg.MaxRetries
	if retries <= 0 {
		retries = DefaultMaxRetries
	}
	// An own transport, so Close can drop its idle connections.
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, fmt.Errorf("s3store: transport: %w", err)
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:     cfg.Secure,
		Region:     cfg.Region,
		Transport:  tr,
		MaxRetries: retries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: client for %q: %w", cfg.Endpoint, err)
	}
	s := &Store{client: client, transport: tr, bucket: cfg.Bucket, prefix: cfg.Prefix}
	if err := s.ensureBucket(ctx, cfg, log); err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	return s, nil
}

func (s *Store) ensureBucket(ctx context.Context, cfg Config, log *slog.Logger) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3store: bucket %q at %s: %w", s.bucket, cfg.Endpoint, err)
	}
	if ok {
		return nil
	}
	if cfg.BucketMustExist {
		return fmt.Errorf("s3store: bucket %q does not exist at %s", s.bucket, cfg.Endpoint)
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: cfg.Region})
	if err != nil {
		// Another coordinator may have made it first.
		switch minio.ToErrorResponse(err).Code {
		case minio.BucketAlreadyOwnedByYou, minio.BucketAlreadyExists:
			return nil
		}
		return fmt.Errorf("s3store: create bucket %q: %w", s.bucket, err)
	}
	log.Info("created bucket", "bucket", s.bucket, "endpoint", cfg.Endpoint)
	return nil
}

// Put uploads data with the given content type (application/octet-stream
// when empty).
func (s *Store) Put(ctx context.Context, key string, data []byte, contentType string) error {
	if err := object.CheckKey(key); err != nil {
		return fmt.Errorf("s3store: put: %w", err)
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: contentType})
	if err != nil {
		return fmt.Errorf("s3store: put %q: %w", key, mapError(err))
	}
	return nil
}

// Get downloads the object; NoSuchKey becomes ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := object.CheckKey(key); err != nil {
		return nil, fmt.Errorf("s3store: get: %w", err)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("s3store: get %q: %w", key, mapError(err))
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, fmt.Errorf("s3store: get %q: %w", key, mapError(err))
	}
	return data, nil
}

// Delete removes the object; S3 does not report a missing key.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := object.CheckKey(key); err != nil {
		return fmt.Errorf("s3store: delete: %w", err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("s3store: delete %q: %w", key, mapError(err))
	}
	return nil
}

// List lists every object under prefix, recursively, sorted by key.
func (s *Store) List(ctx context.Context, prefix string) ([]object.Info, error) {
	if err := object.CheckPrefix(prefix); err != nil {
		return nil, fmt.Errorf("s3store: list: %w", err)
	}
	// The iterator must be cancelled if it is left early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []object.Info
	for o := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("s3store: list %q: %w", prefix, mapError(o.Err))
		}
		key, ok := strings.CutPrefix(o.Key, s.prefix)
		if !ok || strings.HasSuffix(key, "/") {
			continue // folder markers made by other tools
		}
		out = append(out, object.Info{Key: key, Size: o.Size, Modified: o.LastModified})
	}
	slices.SortFunc(out, func(a, b object.Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Close drops the idle connections to the server.
func (s *Store) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// mapError turns S3 error codes into the store's sentinels, keeping the
// original error in the chain.
func mapError(err error) error {
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		return err
	}
	switch resp.Code {
	case minio.NoSuchKey:
		return fmt.Errorf("%w: %w", object.ErrNotFound, err)
	case "EntityTooLarge", "KeyTooLongError", "InvalidObjectName", "XMinioInvalidObjectName", "XMinioObjectExistsAsDirectory":
		return fmt.Errorf("%w: %w", object.ErrRejected, err)
	}
	return err
}
