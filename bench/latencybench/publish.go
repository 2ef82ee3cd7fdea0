package latencybench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/livegrid/livegrid/internal/flv"
)

// Chunk streams the publisher sends on, as FFmpeg numbers them.
const (
	csidData  = 5
	csidAudio = 4
	csidVideo = 6
)

// rtmpTarget is a parsed --rtmp URL.
type rtmpTarget struct {
	host   string // host:port
	app    string // like live
	stream string // "" when the URL names none
	tcURL  string
}

// parseRTMP reads rtmp://HOST[:PORT]/APP[/STREAM].
func parseRTMP(raw string) (rtmpTarget, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "rtmp" || u.Host == "" {
		return rtmpTarget{}, fmt.Errorf("'rtmp' must be an rtmp:// URL like rtmp://origin:1935/live, not %q", raw)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "1935")
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if parts[0] == "" || len(parts) > 2 {
		return rtmpTarget{}, fmt.Errorf("'rtmp' must be rtmp://HOST:PORT/APP or rtmp://HOST:PORT/APP/STREAM, not %q", raw)
	}
	t := rtmpTarget{host: host, app: parts[0], tcURL: "rtmp://" + host + "/" + parts[0]}
	if len(parts) == 2 {
		t.stream = parts[1]
	}
	return t, nil
}

// publisher sends FLV tags over one RTMP connection.
type publisher struct {
	conn   *rtmp.ClientConn
	stream *rtmp.Stream
}

// handshakeTimeout bounds connect, createStream and publish together.
const handshakeTimeout = 10 * time.Second

// dialPublisher connects and publishes name. go-rtmp's Connect and
// CreateStream wait for the server's answer without a deadline, so they
// run aside and the connection is closed if the answer is late; the
// goroutine stays blocked in the library then, until the process ends.
func dialPublisher(ctx context.Context, t rtmpTarget, name string) (*publisher, error) {
	quiet := logrus.New()
	quiet.Out = io.Discard
	conn, err := rtmp.DialWithDialer(&net.Dialer{Timeout: handshakeTimeout}, "rtmp", t.host, &rtmp.ConnConfig{Logger: quiet})
	if err != nil {
		return nil, fmt.Errorf("latency: RTMP connect to %s: %w", t.host, err)
	}
	p := &publisher{conn: conn}
	done := make(chan error, 1)
	go func() {
		if err := conn.Connect(&message.NetConnectionConnect{Command: message.NetConnectionConnectCommand{
			App: t.app, Type: "nonprivate", FlashVer: "FMLE/3.0 (compatible; livegrid bench)", TCURL: t.tcURL}}); err != nil {
			done <- fmt.Errorf("connect: %w", err)
			return
		}
		// Chunk size 0 keeps the default (128): go-rtmp logs a change to
		// the global logrus logger.
		st, err := conn.CreateStream(nil, 0)
		if err != nil {
			done <- fmt.Errorf("createStream: %w", err)
			return
		}
		p.stream = st
		if err := st.Publish(&message.NetStreamPublish{PublishingName: name, PublishingType: "live"}); err != nil {
			done <- fmt.Errorf("publish: %w", err)
			return
		}
		done <- nil
	}()
	timer := time.NewTimer(handshakeTimeout)
	defer timer.Stop()
	select {
	case err = <-done:
	case <-timer.C:
		err = fmt.Errorf("no answer in %s", handshakeTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("latency: RTMP publish %s/%s: %w", t.tcURL, name, err)
	}
	return p, nil
}

// send writes one tag as the RTMP message it maps to.
func (p *publisher) send(t flv.Tag) error {
	if err := p.conn.LastError(); err != nil {
		return fmt.Errorf("latency: RTMP connection: %w", err)
	}
	var (
		csid int
		msg  message.Message
	)
	switch t.Type {
	case flv.TagAudio:
		csid, msg = csidAudio, &message.AudioMessage{Payload: bytes.NewReader(t.Data)}
	case flv.TagVideo:
		csid, msg = csidVideo, &message.VideoMessage{Payload: bytes.NewReader(t.Data)}
	case flv.TagScript:
		// An FLV script body is what @setDataFrame carries after its name.
		csid, msg = csidData, &message.DataMessage{Name: "@setDataFrame", Encoding: message.EncodingTypeAMF0, Body: bytes.NewReader(t.Data)}
	default:
		return nil
	}
	if err := p.stream.Write(csid, t.Timestamp, msg); err != nil {
		return fmt.Errorf("latency: RTMP send %s at %d ms: %w", t.Type, t.Timestamp, err)
	}
	return nil
}

// close ends the publish: deleteStream tells the server at once that the
// publisher is done, then the connection closes.
func (p *publisher) close() {
	if p.stream != nil {
		_ = p.conn.DeleteStream(&message.NetStreamDeleteStream{StreamID: p.stream.StreamID()})
	}
	p.conn.Close()
}
