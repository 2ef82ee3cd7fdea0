package ingest

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	rtmphandshake "github.com/yutopp/go-rtmp/handshake"
)

// Chunk stream IDs and sizes of the client's own messages, as ffmpeg
// numbers them.
const (
	csidClientCommand = 3
	csidClientPlay    = 8
	clientWindow      = 2_500_000
	clientBufferMS    = 3000
)

// rtmpSource plays one stream from an RTMP or RTMPS server: handshake
// (go-rtmp's), connect, createStream, play, then audio, video and data
// messages as tags. Only the goroutine of ReadTag uses it; Close may come
// from another.
type rtmpSource struct {
	nc       net.Conn
	cr       *chunkReader
	cw       chunkWriter
	idle     time.Duration
	stop     func() bool // ends the context watch
	app      string
	name     string
	tcURL    string
	streamID uint32
	playing  bool
	window   uint32 // the server's acknowledgement window
	acked    uint64
	pending  []flv.Tag // tags of an aggregate message not returned yet
}

// rtmpTarget splits a pull URL into the server address, the application,
// the tcUrl and the play name (with the URL's query, where servers look
// for keys).
func rtmpTarget(u *url.URL) (addr, app, tcURL, name string, err error) {
	path := strings.Trim(u.Path, "/")
	i := strings.LastIndexByte(path, '/')
	if i <= 0 || i == len(path)-1 {
		return "", "", "", "", errors.New("the URL path must be /{app}/{stream}")
	}
	app, name = path[:i], path[i+1:]
	if u.RawQuery != "" {
		name += "?" + u.RawQuery
	}
	addr = u.Host
	if u.Port() == "" {
		port := "1935"
		if u.Scheme == "rtmps" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	tcURL = u.Scheme + "://" + u.Host + "/" + app
	return addr, app, tcURL, name, nil
}

// dialRTMP connects and asks to play; it returns once the server has
// started the stream. setupTimeout bounds the whole exchange and idle
// each later read.
func dialRTMP(ctx context.Context, u *url.URL, setupTimeout, idle time.Duration) (_ *rtmpSource, err error) {
	addr, app, tcURL, name, err := rtmpTarget(u)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: setupTimeout}
	var nc net.Conn
	if u.Scheme == "rtmps" {
		nc, err = (&tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: u.Hostname()}}).DialContext(ctx, "tcp", addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	s := &rtmpSource{nc: nc, idle: idle, app: app, name: name, tcURL: tcURL}
	s.cw.w = nc
	s.stop = context.AfterFunc(ctx, func() { _ = nc.Close() })
	defer func() {
		if err != nil {
			s.Close()
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
			}
		}
	}()
	// I/O deadlines are wall-clock by nature.
	_ = nc.SetDeadline(time.Now().Add(setupTimeout))
	if err := rtmphandshake.HandshakeWithServer(nc, nc, &rtmphandshake.Config{SkipHandshakeVerification: true}); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	s.cr = newChunkReader(bufio.NewReaderSize(nc, 64<<10))
	if err := s.command(csidClientCommand, 0, "connect", 1, flv.Object{
		{Key: "app", Value: app},
		{Key: "flashVer", Value: "LNX 9,0,124,2"},
		{Key: "tcUrl", Value: tcURL},
		{Key: "fpad", Value: false},
		{Key: "capabilities", Value: 15.0},
		{Key: "audioCodecs", Value: 4071.0},
		{Key: "videoCodecs", Value: 252.0},
		{Key: "videoFunction", Value: 1.0},
	}); err != nil {
		return nil, err
	}
	for !s.playing {
		m, err := s.cr.next()
		if err != nil {
			return nil, fmt.Errorf("before play started: %w", noEOF(err))
		}
		tags, err := s.handle(m)
		if err != nil {
			return nil, err
		}
		if len(tags) > 0 { // a server that sends media without Play.Start
			s.playing = true
			s.pending = append(s.pending, tags...)
		}
	}
	_ = nc.SetDeadline(time.Time{})
	return s, nil
}

// ReadTag returns the next audio, video or script tag. A server that
// ends the stream makes it return an error wrapping errSourceEnded.
func (s *rtmpSource) ReadTag(ctx context.Context) (flv.Tag, error) {
	for len(s.pending) == 0 {
		if err := ctx.Err(); err != nil {
			return flv.Tag{}, context.Cause(ctx)
		}
		if s.idle > 0 {
			_ = s.nc.SetReadDeadline(time.Now().Add(s.idle))
		}
		m, err := s.cr.next()
		if err != nil {
			if ctx.Err() != nil {
				return flv.Tag{}, context.Cause(ctx)
			}
			if errors.Is(err, io.EOF) {
				return flv.Tag{}, fmt.Errorf("%w: connection closed by the server", errSourceEnded)
			}
			return flv.Tag{}, fmt.Errorf("read: %w", err)
		}
		tags, err := s.handle(m)
		if err != nil {
			return flv.Tag{}, err
		}
		s.pending = tags
	}
	t := s.pending[0]
	s.pending = s.pending[1:]
	return t, nil
}

// Close closes the connection.
func (s *rtmpSource) Close() error {
	s.stop()
	return s.nc.Close()
}

// handle acts on one message and returns the tags it carries.
func (s *rtmpSource) handle(m rtmpMessage) ([]flv.Tag, error) {
	if err := s.ack(); err != nil {
		return nil, err
	}
	p := m.payload
	switch m.typeID {
	case msgSetChunkSize:
		if len(p) < 4 {
			return nil, fmt.Errorf("%w: SetChunkSize of %d bytes", errChunk, len(p))
		}
		return nil, s.cr.setChunkSize(binary.BigEndian.Uint32(p) & 0x7fffffff)
	case msgAbort:
		if len(p) >= 4 {
			s.cr.abort(binary.BigEndian.Uint32(p))
		}
	case msgWinAckSize:
		if len(p) >= 4 {
			s.window = binary.BigEndian.Uint32(p)
		}
	case msgSetPeerBandwidth:
		return nil, s.cw.write(2, msgWinAckSize, 0, 0, binary.BigEndian.AppendUint32(nil, clientWindow))
	case msgUserControl:
		return nil, s.userControl(p)
	case msgCommandAMF3:
		if len(p) == 0 {
			return nil, nil
		}
		return nil, s.onCommand(p[1:])
	case msgCommandAMF0:
		return nil, s.onCommand(p)
	case msgAudio, msgVideo, msgDataAMF0, msgDataAMF3, msgAggregate:
		tags, err := playTags(m)
		if errors.Is(err, errBadMessage) {
			return tags, nil // dropped, as ingest drops a publisher's
		}
		return tags, err
	}
	return nil, nil
}

// ack acknowledges what was read once half the server's window passed.
func (s *rtmpSource) ack() error {
	if s.window == 0 || s.cr.n-s.acked < uint64(s.window/2) {
		return nil
	}
	s.acked = s.cr.n
	return s.cw.write(2, msgAck, 0, 0, binary.BigEndian.AppendUint32(nil, uint32(s.cr.n)))
}

// User control events.
const (
	ucStreamBegin  = 0
	ucStreamEOF    = 1
	ucSetBufferLen = 3
	ucPingRequest  = 6
	ucPingResponse = 7
)

func (s *rtmpSource) userControl(p []byte) error {
	if len(p) < 2 {
		return nil
	}
	switch binary.BigEndian.Uint16(p) {
	case ucPingRequest:
		if len(p) < 6 {
			return nil
		}
		return s.cw.write(2, msgUserControl, 0, 0, append([]byte{0, ucPingResponse}, p[2:6]...))
	case ucStreamEOF:
		if s.playing {
			return fmt.Errorf("%w: StreamEOF", errSourceEnded)
		}
	}
	return nil
}

// onCommand follows the connect, createStream, play exchange and the
// stream's status.
func (s *rtmpSource) onCommand(p []byte) error {
	vals, err := flv.DecodeAMF0(p)
	if err != nil || len(vals) < 2 {
		return nil // a command the client cannot read is not for it
	}
	name, _ := vals[0].(string)
	txn, _ := vals[1].(float64)
	info := func() (code, level, desc string) {
		for _, v := range vals[2:] {
			if m, ok := v.(map[string]any); ok {
				code, _ = m["code"].(string)
				level, _ = m["level"].(string)
				desc, _ = m["description"].(string)
				if code != "" {
					return
				}
			}
		}
		return
	}
	switch name {
	case "_result":
		switch txn {
		case 1:
			if err := s.cw.write(2, msgWinAckSize, 0, 0, binary.BigEndian.AppendUint32(nil, clientWindow)); err != nil {
				return err
			}
			return s.command(csidClientCommand, 0, "createStream", 2)
		case 2:
			if len(vals) < 4 {
				return fmt.Errorf("createStream result without a stream ID")
			}
			id, ok := vals[3].(float64)
			if !ok || id < 0 || id > 1<<31 {
				return fmt.Errorf("createStream result: stream ID %v", vals[3])
			}
			s.streamID = uint32(id)
			if err := s.command(csidClientPlay, s.streamID, "play", 0, s.name, -1000.0); err != nil {
				return err
			}
			buf := binary.BigEndian.AppendUint32([]byte{0, ucSetBufferLen}, s.streamID)
			return s.cw.write(2, msgUserControl, 0, 0, binary.BigEndian.AppendUint32(buf, clientBufferMS))
		}
	case "_error":
		code, _, desc := info()
		what := "connect"
		if txn == 2 {
			what = "createStream"
		}
		return fmt.Errorf("%s refused by the server: %s %s", what, code, desc)
	case "onStatus":
		code, level, desc := info()
		switch {
		case level == "error":
			return fmt.Errorf("play refused by the server: %s %s", code, desc)
		case code == "NetStream.Play.Start" || code == "NetStream.Play.Reset":
			s.playing = true
		case code == "NetStream.Play.Stop" || code == "NetStream.Play.UnpublishNotify" || code == "NetStream.Play.Complete":
			return fmt.Errorf("%w: %s", errSourceEnded, code)
		}
	case "close":
		return fmt.Errorf("%w: the server sent close", errSourceEnded)
	}
	return nil
}

// command sends an AMF0 command: the name, the transaction ID, a null
// command object or the one given, then the arguments.
func (s *rtmpSource) command(csid byte, streamID uint32, name string, txn float64, args ...any) error {
	vals := []any{name, txn}
	if len(args) > 0 {
		if _, ok := args[0].(flv.Object); ok {
			vals = append(vals, args[0])
			args = args[1:]
		} else {
			vals = append(vals, nil)
		}
	} else {
		vals = append(vals, nil)
	}
	body, err := flv.EncodeAMF0(append(vals, args...)...)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return s.cw.write(csid, msgCommandAMF0, streamID, 0, body)
}

// noEOF turns an end of stream during setup into an error that says so.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("connection closed by the server")
	}
	return err
}
