package ingest

import (
	"context"
	"net/url"
)

// Authorizer decides whether a publisher may publish a stream. query
// holds the keys of the publish URL (key, or token and expires) and
// remoteAddr is the publisher's "host:port". A non-nil error refuses the
// publish; its text is logged, never sent to the client.
type Authorizer interface {
	AuthorizePublish(ctx context.Context, stream string, query url.Values, remoteAddr string) error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, stream string, query url.Values, remoteAddr string) error

// AuthorizePublish calls f.
func (f AuthorizerFunc) AuthorizePublish(ctx context.Context, stream string, query url.Values, remoteAddr string) error {
	return f(ctx, stream, query, remoteAddr)
}

// AllowAll lets every publisher in; it is what a Server with no
// Authorizer uses.
var AllowAll Authorizer = AuthorizerFunc(func(context.Context, string, url.Values, string) error { return nil })
