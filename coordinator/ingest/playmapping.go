package ingest

// This file maps the messages an RTMP server sends a player to hub tags,
// with the same functions that map a publisher's messages (mapping.go):
// the puller's RTMP client plays a remote stream and publishes what it
// gets. pull_rtmp.go owns the socket and the command exchange.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/yutopp/go-rtmp/message"
)

// RTMP message type IDs the client handles.
const (
	msgSetChunkSize     = 1
	msgAbort            = 2
	msgAck              = 3
	msgUserControl      = 4
	msgWinAckSize       = 5
	msgSetPeerBandwidth = 6
	msgAudio            = 8
	msgVideo            = 9
	msgDataAMF3         = 15
	msgCommandAMF3      = 17
	msgDataAMF0         = 18
	msgCommandAMF0      = 20
	msgAggregate        = 22
)

// playTags returns the tags a media or data message carries: audio and
// video as mediaTag maps a publisher's, script data as scriptTag does
// (server bookkeeping such as |RtmpSampleAccess dropped), and each
// sub-message of an aggregate. Other messages carry none. A message that
// cannot be mapped is an error wrapping errBadMessage; the caller drops
// it and goes on.
func playTags(m rtmpMessage) ([]flv.Tag, error) {
	switch m.typeID {
	case msgAudio, msgVideo:
		t, err := mediaTag(flv.TagType(m.typeID), m.timestamp, bytes.NewReader(m.payload))
		if err != nil {
			return nil, err
		}
		return []flv.Tag{t}, nil
	case msgDataAMF3:
		if len(m.payload) == 0 || m.payload[0] != 0 {
			return nil, fmt.Errorf("%w: AMF3 data message", errBadMessage)
		}
		m.payload = m.payload[1:] // AMF0 values after a zero format byte
		fallthrough
	case msgDataAMF0:
		name, _, err := splitScript(flv.TrimSetDataFrame(m.payload))
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(name, "|") || name == "onStatus" {
			return nil, nil
		}
		t, err := scriptTagFromBody(m.timestamp, bytes.Clone(m.payload))
		if err != nil {
			return nil, err
		}
		return []flv.Tag{t}, nil
	case msgAggregate:
		return aggregateTags(m)
	}
	return nil, nil
}

// aggregateTags splits an aggregate message: FLV tags (header, body,
// back pointer) whose timestamps are moved so that the first lands on
// the aggregate's own.
func aggregateTags(m rtmpMessage) ([]flv.Tag, error) {
	var tags []flv.Tag
	b := m.payload
	var first uint32
	for i := 0; len(b) > 0; i++ {
		if len(b) < 11 {
			return tags, fmt.Errorf("%w: aggregate sub-message header truncated", errBadMessage)
		}
		typ := b[0] & 0x1f
		size := int(u24(b[1:4]))
		ts := u24(b[4:7]) | uint32(b[7])<<24
		if len(b) < 11+size+4 {
			return tags, fmt.Errorf("%w: aggregate sub-message of %d bytes truncated", errBadMessage, size)
		}
		if binary.BigEndian.Uint32(b[11+size:]) != uint32(11+size) {
			return tags, fmt.Errorf("%w: aggregate back pointer", errBadMessage)
		}
		if i == 0 {
			first = ts
		}
		sub := rtmpMessage{typeID: typ, streamID: m.streamID, timestamp: m.timestamp + (ts - first), payload: b[11 : 11+size]}
		b = b[11+size+4:]
		if typ != msgAudio && typ != msgVideo && typ != msgDataAMF0 {
			continue
		}
		more, err := playTags(sub)
		if err != nil && !errors.Is(err, errBadMessage) {
			return tags, err
		}
		tags = append(tags, more...)
	}
	return tags, nil
}

// scriptTagFromBody checks a script body (with or without a leading
// @setDataFrame) as scriptTag checks a publisher's and returns its tag.
func scriptTagFromBody(timestamp uint32, body []byte) (flv.Tag, error) {
	return scriptTag(timestamp, &message.NetStreamSetDataFrame{Payload: body})
}
