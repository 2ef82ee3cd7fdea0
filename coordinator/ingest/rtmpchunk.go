package ingest

// This file is the RTMP chunk layer (RTMP 1.0 section 5.3) of the pull
// client: it reassembles messages from the chunks a server sends and
// splits the client's few messages into chunks. go-rtmp's ChunkStreamer
// cannot serve a client that plays (it acknowledges through a hook only
// its own connection types set, and panics on some malformed input), so
// the puller frames messages itself and keeps go-rtmp for the handshake.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// errChunk marks a chunk stream the reader refuses.
var errChunk = errors.New("ingest: bad RTMP chunk stream")

// Bounds on what a server may make the client hold.
const (
	maxChunkStreams   = 64
	maxRTMPMessage    = 8 << 20 // as flv.DefaultMaxTagSize
	maxInChunkSize    = 1 << 24
	defaultChunkSize  = 128
	extendedTimestamp = 0xffffff
)

// rtmpMessage is one reassembled message.
type rtmpMessage struct {
	typeID    byte
	streamID  uint32
	timestamp uint32
	payload   []byte // valid until the next read of the same chunk stream
}

// chunkState is what the reader remembers per chunk stream ID.
type chunkState struct {
	timestamp uint32 // of the message being read or last read
	delta     uint32 // the last timestamp delta, for type 3 chunks
	length    int
	typeID    byte
	streamID  uint32
	extended  bool   // the last header had an extended timestamp
	buf       []byte // the message being reassembled
	started   bool   // buf holds the start of a message
}

// chunkReader reassembles messages. It is not safe for concurrent use.
type chunkReader struct {
	r         io.Reader
	chunkSize int
	streams   map[uint32]*chunkState
	hdr       [16]byte
	// n counts the bytes read, for acknowledgements.
	n uint64
}

func newChunkReader(r io.Reader) *chunkReader {
	return &chunkReader{r: r, chunkSize: defaultChunkSize, streams: map[uint32]*chunkState{}}
}

func (c *chunkReader) read(b []byte) error {
	n, err := io.ReadFull(c.r, b)
	c.n += uint64(n)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated chunk", errChunk)
	}
	return err
}

// setChunkSize applies the server's SetChunkSize.
func (c *chunkReader) setChunkSize(n uint32) error {
	if n < 1 || n > maxInChunkSize {
		return fmt.Errorf("%w: chunk size %d", errChunk, n)
	}
	c.chunkSize = int(n)
	return nil
}

// abort drops the partial message of a chunk stream (Abort message).
func (c *chunkReader) abort(csid uint32) {
	if st := c.streams[csid]; st != nil {
		st.buf, st.started = st.buf[:0], false
	}
}

// next reads chunks until a message is complete and returns it.
func (c *chunkReader) next() (rtmpMessage, error) {
	for {
		m, done, err := c.chunk()
		if err != nil || done {
			return m, err
		}
	}
}

// chunk reads one chunk; done says it completed a message.
func (c *chunkReader) chunk() (rtmpMessage, bool, error) {
	if err := c.read(c.hdr[:1]); err != nil {
		return rtmpMessage{}, false, err
	}
	format := c.hdr[0] >> 6
	csid := uint32(c.hdr[0] & 0x3f)
	switch csid {
	case 0:
		if err := c.read(c.hdr[:1]); err != nil {
			return rtmpMessage{}, false, err
		}
		csid = 64 + uint32(c.hdr[0])
	case 1:
		if err := c.read(c.hdr[:2]); err != nil {
			return rtmpMessage{}, false, err
		}
		csid = 64 + uint32(c.hdr[0]) + uint32(c.hdr[1])<<8
	}
	st := c.streams[csid]
	if st == nil {
		// Servers start a chunk stream with a type 0 header; a type 1 or 2
		// one is taken with the fields it lacks as zero.
		if format == 3 {
			return rtmpMessage{}, false, fmt.Errorf("%w: chunk stream %d starts with a type 3 header", errChunk, csid)
		}
		if len(c.streams) >= maxChunkStreams {
			return rtmpMessage{}, false, fmt.Errorf("%w: more than %d chunk streams", errChunk, maxChunkStreams)
		}
		st = &chunkState{}
		c.streams[csid] = st
	}

	hdrLen := [4]int{11, 7, 3, 0}[format]
	h := c.hdr[:hdrLen]
	if err := c.read(h); err != nil {
		return rtmpMessage{}, false, err
	}
	var ts uint32
	if format < 3 {
		ts = u24(h)
		st.extended = ts == extendedTimestamp
	}
	if st.extended {
		var ext [4]byte
		if err := c.read(ext[:]); err != nil {
			return rtmpMessage{}, false, err
		}
		ts = binary.BigEndian.Uint32(ext[:])
	}
	if format <= 1 {
		length := int(u24(h[3:]))
		if st.started && length != st.length {
			return rtmpMessage{}, false, fmt.Errorf("%w: chunk stream %d changes length inside a message", errChunk, csid)
		}
		st.length, st.typeID = length, h[6]
		if st.length > maxRTMPMessage {
			return rtmpMessage{}, false, fmt.Errorf("%w: message of %d bytes, limit %d", errChunk, st.length, maxRTMPMessage)
		}
	}
	if format == 0 {
		st.streamID = binary.LittleEndian.Uint32(h[7:])
	}
	if !st.started {
		// The first chunk of a message sets its timestamp.
		switch format {
		case 0:
			st.timestamp, st.delta = ts, 0
		case 1, 2:
			st.timestamp += ts
			st.delta = ts
		case 3:
			if st.extended {
				st.timestamp += ts
				st.delta = ts
			} else {
				st.timestamp += st.delta
			}
		}
		st.started = true
		st.buf = st.buf[:0]
	}
	// Read the chunk's bytes in steps, so the buffer grows with what
	// arrives rather than with what a header announces.
	for want := min(st.length-len(st.buf), c.chunkSize); want > 0; {
		step := min(want, 64<<10)
		st.buf = slices.Grow(st.buf, step)
		if err := c.read(st.buf[len(st.buf) : len(st.buf)+step]); err != nil {
			return rtmpMessage{}, false, err
		}
		st.buf = st.buf[:len(st.buf)+step]
		want -= step
	}
	if len(st.buf) < st.length {
		return rtmpMessage{}, false, nil
	}
	st.started = false
	return rtmpMessage{typeID: st.typeID, streamID: st.streamID, timestamp: st.timestamp, payload: st.buf}, true, nil
}

func u24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

// chunkWriter writes the client's messages as chunks of the default size.
type chunkWriter struct {
	w         io.Writer
	chunkSize int
	buf       []byte
}

// write sends one message with a type 0 header and type 3 continuations.
func (c *chunkWriter) write(csid byte, typeID byte, streamID, timestamp uint32, payload []byte) error {
	if c.chunkSize == 0 {
		c.chunkSize = defaultChunkSize
	}
	b := c.buf[:0]
	ts := min(timestamp, extendedTimestamp)
	b = append(b, csid&0x3f, byte(ts>>16), byte(ts>>8), byte(ts),
		byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload)), typeID)
	b = binary.LittleEndian.AppendUint32(b, streamID)
	if ts == extendedTimestamp {
		b = binary.BigEndian.AppendUint32(b, timestamp)
	}
	for first := true; first || len(payload) > 0; first = false {
		if !first {
			b = append(b, 0xc0|csid&0x3f)
			if ts == extendedTimestamp {
				b = binary.BigEndian.AppendUint32(b, timestamp)
			}
		}
		n := min(len(payload), c.chunkSize)
		b = append(b, payload[:n]...)
		payload = payload[n:]
	}
	c.buf = b
	if _, err := c.w.Write(b); err != nil {
		return fmt.Errorf("ingest: rtmp write: %w", err)
	}
	return nil
}
