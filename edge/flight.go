package edge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// errPassedThrough tells a coalesced viewer that the leader's object was
// too big to share: the viewer fetches it on its own.
var errPassedThrough = errors.New("edge: object streamed through, not shared")

// flight coalesces concurrent fetches of one key: the first caller (the
// leader) fetches, the others wait for its result.
type flight struct {
	mu      sync.Mutex
	calls   map[string]*call
	waiting atomic.Int64 // callers waiting on another's fetch now
}

// call is one fetch in progress; its result fields are written once, by
// the leader, before done closes.
type call struct {
	done chan struct{}
	obj  *object
	pass bool
	err  error
}

// do runs fetch for key unless a fetch of key is already running, in
// which case it waits for that one (coalesced is true) or for ctx. Only
// the leader gets a passthrough; a waiter whose leader streamed the object
// through gets errPassedThrough.
func (g *flight) do(ctx context.Context, key string, fetch func() (*object, *passthrough, error)) (obj *object, pt *passthrough, coalesced bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[string]*call)
	}
	if c, ok := g.calls[key]; ok {
		g.waiting.Add(1)
		g.mu.Unlock()
		select {
		case <-c.done:
			g.waiting.Add(-1)
		case <-ctx.Done():
			g.waiting.Add(-1)
			return nil, nil, true, ctx.Err()
		}
		if c.pass {
			return nil, nil, true, errPassedThrough
		}
		return c.obj, nil, true, c.err
	}
	c := &call{done: make(chan struct{})}
	g.calls[key] = c
	g.mu.Unlock()

	// Deferred, so waiters are released even if fetch panics.
	defer func() {
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.err = errors.New("edge: fetch did not return") // replaced unless fetch panics
	obj, pt, err = fetch()
	c.obj, c.pass, c.err = obj, pt != nil, err
	return obj, pt, false, err
}
