package ingest

// This file maps between RTMP messages and hub tags: the FLV tag model
// that RTMP audio, video and data messages share. server.go and
// session.go own the sockets and the go-rtmp connection.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/hub"
	"github.com/yutopp/go-rtmp/message"
)

// Chunk stream IDs for what the server sends, numbered as nginx-rtmp
// numbers them; players do not depend on them.
const (
	csidControl = 2 // protocol and user control messages
	csidStatus  = 5 // onStatus
	csidData    = 5 // onMetaData and other data messages
	csidAudio   = 6
	csidVideo   = 7
)

// outChunkSize is the chunk size the server writes with, announced to
// each client at once: 4 KiB keeps a video frame to a few chunks.
const outChunkSize = 4096

// errBadMessage marks a message that cannot be mapped; the message is
// dropped, the connection stays.
var errBadMessage = errors.New("ingest: bad message")

// mediaTag copies an RTMP audio or video message into a tag. The copy is
// needed: go-rtmp reuses the payload's buffer for the next message, and
// the hub keeps tag bodies.
func mediaTag(typ flv.TagType, timestamp uint32, payload io.Reader) (flv.Tag, error) {
	var body []byte
	if sized, ok := payload.(interface{ Len() int }); ok {
		body = make([]byte, sized.Len())
		if _, err := io.ReadFull(payload, body); err != nil {
			return flv.Tag{}, fmt.Errorf("ingest: read %s message: %w", typ, err)
		}
	} else {
		b, err := io.ReadAll(payload)
		if err != nil {
			return flv.Tag{}, fmt.Errorf("ingest: read %s message: %w", typ, err)
		}
		body = b
	}
	if len(body) == 0 {
		return flv.Tag{}, fmt.Errorf("%w: empty %s message", errBadMessage, typ)
	}
	return flv.Tag{Type: typ, Timestamp: timestamp, Data: body}, nil
}

// scriptTag turns the payload of an @setDataFrame data message (usually
// onMetaData) into a script tag: the payload is already the body FLV
// stores. Script data that is not valid AMF0 is refused, so it never
// reaches players.
func scriptTag(timestamp uint32, d *message.NetStreamSetDataFrame) (flv.Tag, error) {
	body := flv.TrimSetDataFrame(d.Payload)
	if _, _, err := splitScript(body); err != nil {
		return flv.Tag{}, err
	}
	if _, err := flv.DecodeAMF0(body); err != nil {
		return flv.Tag{}, fmt.Errorf("%w: @setDataFrame: %w", errBadMessage, err)
	}
	return flv.Tag{Type: flv.TagScript, Timestamp: timestamp, Data: body}, nil
}

// tagMessage turns a hub tag into the RTMP message a player gets and the
// chunk stream to send it on. The message reads the tag's body without
// copying it.
func tagMessage(t flv.Tag) (int, message.Message, error) {
	switch t.Type {
	case flv.TagAudio:
		return csidAudio, &message.AudioMessage{Payload: bytes.NewReader(t.Data)}, nil
	case flv.TagVideo:
		return csidVideo, &message.VideoMessage{Payload: bytes.NewReader(t.Data)}, nil
	case flv.TagScript:
		name, rest, err := splitScript(t.Data)
		if err != nil {
			return 0, nil, err
		}
		return csidData, &message.DataMessage{Name: name, Encoding: message.EncodingTypeAMF0, Body: bytes.NewReader(rest)}, nil
	}
	return 0, nil, fmt.Errorf("%w: tag type %s", errBadMessage, t.Type)
}

// splitScript splits a script body into its leading AMF0 string (the
// handler name, such as onMetaData) and the values after it, which is how
// an RTMP data message carries them.
func splitScript(b []byte) (string, []byte, error) {
	if len(b) < 3 || b[0] != 0x02 {
		return "", nil, fmt.Errorf("%w: script data does not start with an AMF0 string", errBadMessage)
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	if len(b) < 3+n {
		return "", nil, fmt.Errorf("%w: script data name of %d bytes is truncated", errBadMessage, n)
	}
	return string(b[3 : 3+n]), b[3+n:], nil
}

// parseStreamKey splits a publish or play name such as
// "test?key=abc" or "test?token=t&expires=1700000000" into the stream
// name and its query, and checks the name.
func parseStreamKey(raw string) (string, url.Values, error) {
	name, rawQuery, _ := strings.Cut(raw, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", nil, fmt.Errorf("ingest: stream %q: query: %w", name, err)
	}
	if err := hub.ValidateName(name); err != nil {
		return "", nil, fmt.Errorf("ingest: stream: %w", err)
	}
	return name, q, nil
}

// parseApp splits the connect command's app ("live", "live/",
// "live?key=abc") into the application name and its query.
func parseApp(raw string) (string, url.Values) {
	app, rawQuery, _ := strings.Cut(raw, "?")
	q, _ := url.ParseQuery(rawQuery) // a bad query here only loses a key
	return strings.Trim(app, "/"), q
}

// mergeQuery returns the stream's query with the connect query's keys
// that the stream's lacks: clients put the key in either place.
func mergeQuery(stream, connect url.Values) url.Values {
	out := url.Values{}
	for k, v := range connect {
		out[k] = v
	}
	for k, v := range stream {
		out[k] = v
	}
	return out
}

// Status codes sent to clients, beyond go-rtmp's own.
const (
	codePublishDenied      = "NetStream.Publish.Denied"
	codePublishBadName     = "NetStream.Publish.BadName"
	codePublishFailed      = "NetStream.Publish.Failed"
	codePlayStreamNotFound = "NetStream.Play.StreamNotFound"
	codePlayFailed         = "NetStream.Play.Failed"
	codePlayUnpublish      = "NetStream.Play.UnpublishNotify"
	codePlayStop           = "NetStream.Play.Stop"
)

// statusMessage builds an onStatus command. An error level makes
// clients such as ffmpeg stop and print the description.
func statusMessage(level message.NetStreamOnStatusLevel, code, description string) (message.Message, error) {
	var buf bytes.Buffer
	err := message.EncodeBodyAnyValues(message.NewAMFEncoder(&buf, message.EncodingTypeAMF0), &message.NetStreamOnStatus{
		InfoObject: message.NetStreamOnStatusInfoObject{
			Level:       level,
			Code:        message.NetStreamOnStatusCode(code),
			Description: description,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: encode onStatus %s: %w", code, err)
	}
	return &message.CommandMessage{
		CommandName: "onStatus",
		Encoding:    message.EncodingTypeAMF0,
		Body:        &buf,
	}, nil
}
