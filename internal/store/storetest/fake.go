package storetest

import (
	"context"

	"github.com/livegrid/livegrid/internal/store"
)

var _ store.Store = (*Fake)(nil)

// Fake is a store made of function fields; a nil field does nothing and
// succeeds (Get then reports ErrNotFound).
type Fake struct {
	PutFunc    func(ctx context.Context, key string, data []byte, contentType string) error
	GetFunc    func(ctx context.Context, key string) ([]byte, error)
	DeleteFunc func(ctx context.Context, key string) error
	ListFunc   func(ctx context.Context, prefix string) ([]store.Object, error)
	CloseFunc  func() error
}

// Put calls PutFunc.
func (f *Fake) Put(ctx context.Context, key string, data []byte, contentType string) error {
	if f.PutFunc == nil {
		return nil
	}
	return f.PutFunc(ctx, key, data, contentType)
}

// Get calls GetFunc.
func (f *Fake) Get(ctx context.Context, key string) ([]byte, error) {
	if f.GetFunc == nil {
		return nil, store.ErrNotFound
	}
	return f.GetFunc(ctx, key)
}

// Delete calls DeleteFunc.
func (f *Fake) Delete(ctx context.Context, key string) error {
	if f.DeleteFunc == nil {
		return nil
	}
	return f.DeleteFunc(ctx, key)
}

// List calls ListFunc.
func (f *Fake) List(ctx context.Context, prefix string) ([]store.Object, error) {
	if f.ListFunc == nil {
		return nil, nil
	}
	return f.ListFunc(ctx, prefix)
}

// Close calls CloseFunc.
func (f *Fake) Close() error {
	if f.CloseFunc == nil {
		return nil
	}
	return f.CloseFunc()
}
