package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ListDeleter is what Sweep needs of a store.
type ListDeleter interface {
	List(ctx context.Context, prefix string) ([]Object, error)
	Delete(ctx context.Context, key string) error
}

// Sweep applies retention: it deletes every object under prefix last
// written before olderThan and returns how many it deleted. The caller
// decides the cutoff from its own clock (now minus the retention), so that
// look-back of a stream session lasts as configured. A failed delete does
// not stop the sweep; the errors are joined. A cancelled ctx stops it.
func Sweep(ctx context.Context, st ListDeleter, prefix string, olderThan time.Time) (deleted int, err error) {
	objs, err := st.List(ctx, prefix)
	if err != nil {
		return 0, fmt.Errorf("store: sweep %q: %w", prefix, err)
	}
	var errs []error
	for _, o := range objs {
		if !o.Modified.Before(olderThan) {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := st.Delete(ctx, o.Key); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted++
	}
	if err := errors.Join(errs...); err != nil {
		return deleted, fmt.Errorf("store: sweep %q: %w", prefix, err)
	}
	return deleted, nil
}
