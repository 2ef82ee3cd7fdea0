// Package ingest is the coordinator's RTMP server: publishers push
// streams to rtmp://HOST:PORT/live/{stream} into the hub, and players
// read them back from the same address. It runs on go-rtmp; the mapping
// between RTMP messages and hub tags lives in mapping.go.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/internal/hub"
	"github.com/yutopp/go-rtmp"
)

// ErrServerClosed is what Serve returns after Shutdown.
var ErrServerClosed = errors.New("ingest: server closed")

// Defaults for a Server's zero fields.
const (
	DefaultAddr             = ":1935"
	DefaultApp              = "live"
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 30 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultAuthTimeout      = 5 * time.Second
)

// Server accepts RTMP publishers and players for the streams of a hub.
// Set its fields before the first Serve; it must not be copied after.
type Server struct {
	// Addr is the TCP address ListenAndServe listens on; default ":1935".
	Addr string
	// Hub receives published streams and serves played ones.
	Hub *hub.Hub
	// Auth decides about publishers; nil lets every publisher in, DenyAll
	// none.
	Auth Authorizer
	// AuthPlay, if set, decides about players; nil lets every player in.
	AuthPlay PlayAuthorizer
	// OnPlay, if set, is called for each authorized play before the hub
	// lookup; see PlayHook.
	OnPlay PlayHook
	Log    *slog.Logger

	// App is the one RTMP application accepted; default "live".
	App string
	// HandshakeTimeout bounds the time from accept until a client
	// publishes or plays; IdleTimeout bounds a publisher's silence;
	// WriteTimeout bounds each write. AuthTimeout bounds one Authorizer
	// call.
	HandshakeTimeout, IdleTimeout, WriteTimeout, AuthTimeout time.Duration

	once     sync.Once
	log      *slog.Logger
	ctx      context.Context // ends at Shutdown; parent of every session's
	cancel   context.CancelFunc
	mu       sync.Mutex
	shutdown bool
	serving  map[*listener]*rtmp.Server
	conns    map[*conn]struct{}
	idle     chan struct{} // closed once shut down with no connection left
	nextID   uint64
}

func (s *Server) init() {
	s.once.Do(func() {
		s.log = s.Log
		if s.log == nil {
			s.log = slog.New(slog.DiscardHandler)
		}
		s.log = s.log.With("component", "rtmp-ingest")
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.serving = make(map[*listener]*rtmp.Server)
		s.conns = make(map[*conn]struct{})
		s.idle = make(chan struct{})
	})
}

// ListenAndServe listens on Addr and serves until ctx ends, then shuts
// down: every connection is closed and its goroutines have ended when it
// returns. It returns nil after ctx ends, and an error if listening
// fails or the server stops for another reason.
func (s *Server) ListenAndServe(ctx context.Context) error {
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ingest: listen %s: %w", addr, err)
	}
	shut := make(chan error, 1)
	stop := context.AfterFunc(ctx, func() { shut <- s.Shutdown(context.Background()) })
	err = s.Serve(ln)
	if stop() {
		// Serve ended before ctx did: a failed listener, or another
		// caller's Shutdown. Either way, leave nothing running.
		if serr := s.Shutdown(context.Background()); serr != nil {
			return errors.Join(err, serr)
		}
		return err
	}
	if err := <-shut; err != nil {
		return err
	}
	if errors.Is(err, ErrServerClosed) {
		return nil
	}
	return err
}

// Serve accepts connections on ln until Shutdown, which makes it return
// ErrServerClosed. Each connection runs on go-rtmp's goroutines; the
// Server tracks them and Shutdown waits for them.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	l := &listener{Listener: ln, srv: s}
	rs := rtmp.NewServer(&rtmp.ServerConfig{OnConnect: s.onConnect})
	l.rs = rs
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.serving[l] = rs
	s.mu.Unlock()

	s.log.Info("rtmp ingest listening", "addr", ln.Addr().String())
	err := rs.Serve(l)
	s.mu.Lock()
	delete(s.serving, l)
	shut := s.shutdown
	s.mu.Unlock()
	switch {
	case shut:
		return ErrServerClosed
	case l.err != nil:
		return fmt.Errorf("ingest: serve %s: %w", ln.Addr(), l.err)
	}
	return fmt.Errorf("ingest: serve %s: %w", ln.Addr(), err)
}

// Shutdown stops accepting, closes every connection (publishers are
// unpublished, players stop) and waits until their goroutines have
// ended or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.shutdown {
		s.shutdown = true
		s.cancel()
		for l, rs := range s.serving {
			_ = rs.Close()
			_ = l.Close()
		}
		for c := range s.conns {
			c.abort()
		}
		if len(s.conns) == 0 {
			close(s.idle)
		}
		s.log.Info("rtmp ingest shutting down", "connections", len(s.conns))
	}
	s.mu.Unlock()
	select {
	case <-s.idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ingest: shutdown: %w", ctx.Err())
	}
}

// track registers an accepted connection; false after Shutdown.
func (s *Server) track(nc net.Conn) (*conn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return nil, false
	}
	s.nextID++
	c := &conn{Conn: nc, srv: s, id: s.nextID, writeTimeout: orDefault(s.WriteTimeout, DefaultWriteTimeout)}
	c.readUntil.Store(time.Now().Add(orDefault(s.HandshakeTimeout, DefaultHandshakeTimeout)).UnixNano())
	s.conns[c] = struct{}{}
	return c, true
}

// forget drops a connection whose go-rtmp goroutine is finishing.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.shutdown && len(s.conns) == 0 {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
}

// onConnect is go-rtmp's hook for a new connection, on the connection's
// goroutine.
func (s *Server) onConnect(nc net.Conn) (io.ReadWriteCloser, *rtmp.ConnConfig) {
	c := nc.(*conn) // every connection comes from listener.Accept
	sess := newSession(s, c)
	return c, &rtmp.ConnConfig{
		Handler: sess,
		ControlState: rtmp.StreamControlStateConfig{
			// What go-rtmp's own servers announce; OBS and ffmpeg are
			// happy with it.
			DefaultBandwidthWindowSize: 6 * 1024 * 1024 / 8,
			// Real clients use a handful of each; go-rtmp's defaults
			// (2^32) let one connection make unbounded state.
			MaxChunkStreams:   64,
			MaxMessageStreams: 16,
		},
		Logger: rtmpLogger(sess.log),
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// listener hands go-rtmp tracked connections, backs off on accept
// errors that may pass (too many open files), and stops go-rtmp's accept
// loop, which would otherwise spin, on one that will not.
type listener struct {
	net.Listener
	srv *Server
	rs  *rtmp.Server
	err error // the accept error that stopped serving
}

func (l *listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		nc, err := l.Listener.Accept()
		if err == nil {
			c, ok := l.srv.track(nc)
			if !ok {
				_ = nc.Close()
				continue
			}
			return c, nil
		}
		if errors.Is(err, net.ErrClosed) || l.srv.ctx.Err() != nil {
			if l.srv.ctx.Err() == nil {
				l.err = err
			}
			_ = l.rs.Close() // makes go-rtmp's Serve return
			return nil, err
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		l.srv.log.Warn("rtmp accept failed; retrying", "err", err, "delay", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.srv.ctx.Done():
			t.Stop()
		}
	}
}

// conn is one client connection as go-rtmp sees it. It applies the
// read and write timeouts, tells the session when go-rtmp's goroutine
// next reads, and tells the Server when go-rtmp has closed it.
type conn struct {
	net.Conn
	srv          *Server
	id           uint64
	writeTimeout time.Duration
	readUntil    atomic.Int64 // Unix ns: an absolute read deadline; 0 for none
	readTimeout  atomic.Int64 // time.Duration per read when readUntil is 0; 0 for none
	readGate     atomic.Pointer[chan struct{}]
	closeOnce    sync.Once
}

func (c *conn) Read(b []byte) (int, error) {
	if g := c.readGate.Swap(nil); g != nil {
		close(*g)
	}
	// I/O deadlines are wall-clock by nature.
	var deadline time.Time
	if until := c.readUntil.Load(); until != 0 {
		deadline = time.Unix(0, until)
	} else if d := time.Duration(c.readTimeout.Load()); d > 0 {
		deadline = time.Now().Add(d)
	}
	_ = c.Conn.SetReadDeadline(deadline)
	return c.Conn.Read(b)
}

// setReadTimeout ends the handshake deadline: from now on each read may
// wait d, or forever when d is 0.
func (c *conn) setReadTimeout(d time.Duration) {
	c.readTimeout.Store(int64(d))
	c.readUntil.Store(0)
}

func (c *conn) Write(b []byte) (int, error) {
	if c.writeTimeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	return c.Conn.Write(b)
}

// Close is go-rtmp's last act on the connection.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.srv.forget(c) })
	return err
}

// abort closes the socket from another goroutine: go-rtmp's goroutine
// then fails its read or write, ends the connection and calls Close.
func (c *conn) abort() { _ = c.Conn.Close() }

// nextRead returns a channel closed when go-rtmp's goroutine next reads
// from the socket, that is, when it has finished with the message it was
// handling.
func (c *conn) nextRead() <-chan struct{} {
	ch := make(chan struct{})
	c.readGate.Store(&ch)
	return ch
}
