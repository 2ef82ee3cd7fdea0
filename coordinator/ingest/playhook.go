package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
)

var (
	// ErrPublishDisabled is DenyAll's refusal.
	ErrPublishDisabled = errors.New("ingest: this server takes no publishers")
	// ErrPlayNotAuthorized wraps the AuthPlay hook's refusal of a play.
	ErrPlayNotAuthorized = errors.New("ingest: play not authorized")
)

// DenyAll refuses every publisher: an edge plays streams it relays from
// origins and never takes a publish.
var DenyAll Authorizer = AuthorizerFunc(func(context.Context, string, url.Values, string) error {
	return ErrPublishDisabled
})

// PlayHook is called when a player asks for a stream, before the hub is
// looked up, so that a stream not in the hub yet can be brought in: an
// edge opens it from an origin. ctx ends with the connection or after the
// Server's HandshakeTimeout. An error refuses the play as a stream that is
// not live; otherwise release, if not nil, is called once when the play
// ends (or fails after all).
type PlayHook func(ctx context.Context, stream string) (release func(), err error)

// PlayAuthorizer decides whether a player may play a stream, as an
// Authorizer does for publishers: query holds the keys of the play URL
// (token and expires), remoteAddr is the player's "host:port". A non-nil
// error refuses the play; its text is logged, never sent to the client.
type PlayAuthorizer func(ctx context.Context, stream string, query url.Values, remoteAddr string) error

// authorizePlay runs the AuthPlay hook, if any.
func (s *session) authorizePlay(name string, q url.Values) error {
	authorize := s.srv.AuthPlay
	if authorize == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, orDefault(s.srv.AuthTimeout, DefaultAuthTimeout))
	defer cancel()
	if err := authorize(ctx, name, mergeQuery(q, s.appQuery), s.c.RemoteAddr().String()); err != nil {
		return fmt.Errorf("%w: stream %q: %w", ErrPlayNotAuthorized, name, err)
	}
	return nil
}

// openPlay runs the OnPlay hook, if any; the release it returns is never
// nil.
func (s *session) openPlay(name string) (func(), error) {
	hook := s.srv.OnPlay
	if hook == nil {
		return func() {}, nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, orDefault(s.srv.HandshakeTimeout, DefaultHandshakeTimeout))
	defer cancel()
	release, err := hook(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("ingest: play %q: open: %w", name, err)
	}
	if release == nil {
		release = func() {}
	}
	return release, nil
}
