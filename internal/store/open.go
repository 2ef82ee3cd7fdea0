package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/livegrid/livegrid/internal/store/fsstore"
	"github.com/livegrid/livegrid/internal/store/s3store"
)

var (
	_ Store = (*fsstore.Store)(nil)
	_ Store = (*s3store.Store)(nil)
)

// Options tune Open beyond what the URL says.
type Options struct {
	// Logger receives backend events; nil discards.
	Logger *slog.Logger
	// Getenv reads the S3 credentials (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); nil means os.Getenv.
	Getenv func(string) string
	// BucketMustExist makes Open fail on a missing bucket instead of
	// creating it.
	BucketMustExist bool
	// MaxRetries is how many times the S3 client tries one request;
	// 0 means s3store.DefaultMaxRetries.
	MaxRetries int
}

// Open opens the store a URL names (see ParseURL). An s3:// store is
// reached, and its bucket created if missing, before Open returns.
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	loc, err := ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch loc.Scheme {
	case "file":
		st, err := fsstore.New(loc.Dir)
		if err != nil {
			return nil, fmt.Errorf("store: open: %w", err)
		}
		return st, nil
	default: // "s3"
		getenv := opts.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
		if id == "" || secret == "" {
			return nil, fmt.Errorf("store: open s3://%s: %w: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", loc.Bucket, ErrNoCredentials)
		}
		region := loc.Region
		if region == "" && loc.Endpoint != "s3.amazonaws.com" {
			// MinIO and most S3 look-alikes answer to the default region;
			// naming it spares a location request per bucket.
			region = "us-east-1"
		}
		st, err := s3store.New(ctx, s3store.Config{
			Endpoint:        loc.Endpoint,
			Secure:          loc.Secure,
			Region:          region,
			Bucket:          loc.Bucket,
			Prefix:          loc.Prefix,
			AccessKey:       id,
			SecretKey:       secret,
			SessionToken:    getenv("AWS_SESSION_TOKEN"),
			BucketMustExist: opts.BucketMustExist,
			MaxRetries:      opts.MaxRetries,
			Logger:          log.With("component", "s3store", "bucket", loc.Bucket),
		})
		if err != nil {
			return nil, fmt.Errorf("store: open: %w", err)
		}
		return st, nil
	}
}
