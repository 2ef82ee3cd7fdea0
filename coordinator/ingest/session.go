package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"runtime/debug"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/hub"
	"github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"
)

var (
	// ErrUnknownApp refuses a connect to an application other than the
	// Server's App.
	ErrUnknownApp = errors.New("ingest: unknown RTMP application")
	// ErrNotAuthorized wraps the Authorizer's refusal of a publish.
	ErrNotAuthorized = errors.New("ingest: publish not authorized")
	// errBusy refuses a second publish or play on one connection.
	errBusy = errors.New("ingest: connection already publishes or plays")
)

// playEndGrace is how long a player may stay connected after its stream
// ended and it was told so, before the server closes the connection.
const playEndGrace = 2 * time.Second

// session handles one RTMP connection. go-rtmp calls its methods on the
// connection's goroutine, which owns every field but those the play
// goroutine is handed; the play goroutine, when there is one, is the
// only other writer to the connection and OnClose waits for it.
type session struct {
	rtmp.DefaultHandler
	srv    *Server
	c      *conn
	log    *slog.Logger
	ctx    context.Context // ends with the connection or the Server
	cancel context.CancelFunc
	rc     *rtmp.Conn
	start  time.Time

	appQuery url.Values
	pub      *hub.Stream
	playing  bool
	playDone chan struct{} // closed when the play goroutine has ended
}

var _ rtmp.Handler = (*session)(nil)

func newSession(srv *Server, c *conn) *session {
	ctx, cancel := context.WithCancel(srv.ctx)
	return &session{
		srv:    srv,
		c:      c,
		log:    srv.log.With("conn", c.id, "remote", c.RemoteAddr().String()),
		ctx:    ctx,
		cancel: cancel,
		start:  time.Now(),
	}
}

// recoverPanic turns a panic in a handler into that connection's error:
// it is logged with its stack, the connection is closed and the server
// goes on. It must be deferred directly.
func (s *session) recoverPanic(op string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	s.log.Error("rtmp handler panic", "op", op, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	s.c.abort()
	if err != nil {
		*err = fmt.Errorf("ingest: %s: panic: %v", op, r)
	}
}

func (s *session) OnServe(rc *rtmp.Conn) {
	defer s.recoverPanic("serve", nil)
	s.rc = rc
	// Set before anything is written, so go-rtmp's writer goroutine sees
	// it from its first message on.
	if err := rc.GetChunkStreamer().SelfState().SetChunkSize(outChunkSize); err != nil {
		s.log.Warn("rtmp set chunk size", "err", err)
		return
	}
	if err := s.write(csidControl, 0, 0, &message.SetChunkSize{ChunkSize: outChunkSize}); err != nil {
		s.log.Debug("rtmp send chunk size", "err", err)
	}
}

func (s *session) OnConnect(_ uint32, cmd *message.NetConnectionConnect) (err error) {
	defer s.recoverPanic("connect", &err)
	app, q := parseApp(cmd.Command.App)
	if len(q) == 0 {
		if u, err := url.Parse(cmd.Command.TCURL); err == nil {
			q = u.Query()
		}
	}
	if want := s.srv.app(); app != want {
		s.log.Warn("rtmp connect refused", "app", app, "want", want)
		return fmt.Errorf("ingest: connect to %q: %w", app, ErrUnknownApp)
	}
	s.appQuery = q
	return nil
}

func (s *session) OnPublish(sc *rtmp.StreamContext, _ uint32, cmd *message.NetStreamPublish) (err error) {
	defer s.recoverPanic("publish", &err)
	if s.pub != nil || s.playing {
		return s.refuse(sc.StreamID, codePublishFailed, "this connection already publishes or plays", errBusy)
	}
	name, q, err := parseStreamKey(cmd.PublishingName)
	if err != nil {
		return s.refuse(sc.StreamID, codePublishBadName, "bad stream name", err)
	}
	remote := s.c.RemoteAddr().String()
	actx, cancel := context.WithTimeout(s.ctx, orDefault(s.srv.AuthTimeout, DefaultAuthTimeout))
	err = s.srv.auth().AuthorizePublish(actx, name, mergeQuery(q, s.appQuery), remote)
	cancel()
	if err != nil {
		// The reason stays in the log; the client learns only the refusal.
		return s.refuse(sc.StreamID, codePublishDenied, fmt.Sprintf("publish to %q refused: not authorized", name),
			fmt.Errorf("%w: stream %q: %w", ErrNotAuthorized, name, err))
	}

	log := s.log.With("stream", name)
	c := s.c
	st, err := s.srv.Hub.Publish(name, hub.Publisher{
		RemoteAddr: remote,
		Evict: func(reason error) {
			log.Info("rtmp publisher evicted", "reason", reason)
			c.abort()
		},
	})
	if err != nil {
		code, desc := codePublishFailed, fmt.Sprintf("publish to %q failed", name)
		if errors.Is(err, hub.ErrAlreadyPublishing) {
			code, desc = codePublishBadName, fmt.Sprintf("stream %q is already being published", name)
		}
		return s.refuse(sc.StreamID, code, desc, fmt.Errorf("ingest: publish: %w", err))
	}
	s.pub = st
	s.log = log
	s.c.setReadTimeout(orDefault(s.srv.IdleTimeout, DefaultIdleTimeout))
	log.Info("rtmp publish started")
	return nil
}

// refuse tells the client why its publish or play failed, logs it and
// returns err, which makes go-rtmp send its own failure status and close
// the connection.
func (s *session) refuse(streamID uint32, code, description string, err error) error {
	s.log.Warn("rtmp request refused", "code", code, "err", err)
	msg, merr := statusMessage(message.NetStreamOnStatusLevelError, code, description)
	if merr == nil {
		merr = s.write(csidStatus, streamID, 0, msg)
	}
	if merr != nil {
		s.log.Debug("rtmp send status", "code", code, "err", merr)
	}
	return err
}

func (s *session) OnSetDataFrame(timestamp uint32, data *message.NetStreamSetDataFrame) (err error) {
	defer s.recoverPanic("metadata", &err)
	t, err := scriptTag(timestamp, data)
	if err != nil {
		s.log.Debug("rtmp script data dropped", "err", err)
		return nil
	}
	return s.publishTag(t)
}

func (s *session) OnAudio(timestamp uint32, payload io.Reader) (err error) {
	defer s.recoverPanic("audio", &err)
	return s.media(flv.TagAudio, timestamp, payload)
}

func (s *session) OnVideo(timestamp uint32, payload io.Reader) (err error) {
	defer s.recoverPanic("video", &err)
	return s.media(flv.TagVideo, timestamp, payload)
}

func (s *session) media(typ flv.TagType, timestamp uint32, payload io.Reader) error {
	t, err := mediaTag(typ, timestamp, payload)
	if errors.Is(err, errBadMessage) {
		s.log.Debug("rtmp message dropped", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	return s.publishTag(t)
}

func (s *session) publishTag(t flv.Tag) error {
	if s.pub == nil {
		return nil // after the publisher's own unpublish
	}
	if err := s.pub.WriteTag(t); err != nil {
		return fmt.Errorf("ingest: publish: %w", err) // ends the connection
	}
	return nil
}

func (s *session) OnFCUnpublish(_ uint32, _ *message.NetStreamFCUnpublish) (err error) {
	defer s.recoverPanic("unpublish", &err)
	s.endPublish("unpublished")
	return nil
}

func (s *session) OnDeleteStream(_ uint32, _ *message.NetStreamDeleteStream) (err error) {
	defer s.recoverPanic("delete stream", &err)
	s.endPublish("stream deleted")
	return nil
}

func (s *session) endPublish(why string) {
	if s.pub == nil {
		return
	}
	st := s.pub.Stats()
	_ = s.pub.Close()
	s.pub = nil
	s.log.Info("rtmp publish ended", "why", why, "bytes_in", st.BytesIn, "tags", st.Tags,
		"duration", time.Since(s.start).Round(time.Millisecond))
}

func (s *session) OnPlay(sc *rtmp.StreamContext, _ uint32, cmd *message.NetStreamPlay) (err error) {
	defer s.recoverPanic("play", &err)
	if s.pub != nil || s.playing {
		return s.refuse(sc.StreamID, codePlayFailed, "this connection already publishes or plays", errBusy)
	}
	name, q, err := parseStreamKey(cmd.StreamName)
	if err != nil {
		return s.refuse(sc.StreamID, codePlayStreamNotFound, "bad stream name", err)
	}
	if err := s.authorizePlay(name, q); err != nil {
		return s.refuse(sc.StreamID, codePlayFailed, fmt.Sprintf("play of %q refused: not authorized", name), err)
	}
	release, err := s.openPlay(name)
	if err != nil {
		return s.refuse(sc.StreamID, codePlayStreamNotFound, fmt.Sprintf("stream %q is not live", name), err)
	}
	rd, err := s.srv.Hub.Subscribe(name)
	if err != nil {
		release()
		return s.refuse(sc.StreamID, codePlayStreamNotFound, fmt.Sprintf("stream %q is not live", name), fmt.Errorf("ingest: play: %w", err))
	}
	s.playing = true
	s.log = s.log.With("stream", name)
	s.c.setReadTimeout(0) // players send little
	// go-rtmp writes Play.Start after this returns, through a message
	// encoder that is not safe for two writers: the play goroutine starts
	// writing once this goroutine is back to reading. From then on it is
	// the only writer, unless the player sends a command go-rtmp answers
	// (a second createStream) or enough bytes to be owed an acknowledgement
	// (half its announced window); such a player garbles only its own
	// connection.
	gate := s.c.nextRead()
	s.playDone = make(chan struct{})
	go s.play(rd, sc.StreamID, gate, release)
	s.log.Info("rtmp play started")
	return nil
}

// play sends the stream's tags to the player until the stream ends, the
// player is too slow or the connection closes.
func (s *session) play(rd *hub.Reader, streamID uint32, gate <-chan struct{}, release func()) {
	defer close(s.playDone)
	defer release()
	defer rd.Close()
	defer s.recoverPanic("play", nil)
	select {
	case <-gate:
	case <-s.ctx.Done():
		return
	}
	if err := s.write(csidControl, 0, 0, &message.UserCtrl{Event: &message.UserCtrlEventStreamBegin{StreamID: streamID}}); err != nil {
		s.c.abort()
		return
	}
	var last uint32
	for {
		t, err := rd.Next(s.ctx)
		switch {
		case errors.Is(err, io.EOF):
			s.endPlay(streamID, last)
			return
		case errors.Is(err, hub.ErrSlowReader):
			s.log.Info("rtmp player dropped", "err", err)
			s.c.abort()
			return
		case err != nil:
			return // the connection is closing
		}
		csid, msg, err := tagMessage(t)
		if err != nil {
			s.log.Debug("rtmp tag not sent", "err", err)
			continue
		}
		last = t.Timestamp
		if err := s.write(csid, streamID, t.Timestamp, msg); err != nil {
			s.log.Debug("rtmp player write", "err", err)
			s.c.abort()
			return
		}
	}
}

// endPlay tells the player that the stream ended and closes the
// connection if the player does not.
func (s *session) endPlay(streamID, timestamp uint32) {
	s.log.Info("rtmp play ended: stream unpublished")
	if msg, err := statusMessage(message.NetStreamOnStatusLevelStatus, codePlayUnpublish, "stream unpublished"); err == nil {
		_ = s.write(csidStatus, streamID, timestamp, msg)
	}
	_ = s.write(csidControl, 0, 0, &message.UserCtrl{Event: &message.UserCtrlEventStreamEOF{StreamID: streamID}})
	t := time.NewTimer(playEndGrace)
	defer t.Stop()
	select {
	case <-t.C:
		s.c.abort()
	case <-s.ctx.Done():
	}
}

func (s *session) OnClose() {
	defer s.recoverPanic("close", nil)
	s.cancel()
	if s.playDone != nil {
		<-s.playDone
	}
	s.endPublish("connection closed")
	s.log.Debug("rtmp connection closed", "duration", time.Since(s.start).Round(time.Millisecond))
}

// write queues one message on go-rtmp's writer.
func (s *session) write(csid int, streamID, timestamp uint32, msg message.Message) error {
	return s.rc.Write(s.ctx, csid, timestamp, &rtmp.ChunkMessage{StreamID: streamID, Message: msg})
}

func (s *Server) app() string {
	if s.App == "" {
		return DefaultApp
	}
	return s.App
}

func (s *Server) auth() Authorizer {
	if s.Auth == nil {
		return AllowAll
	}
	return s.Auth
}
