package ingest

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/livegrid/livegrid/internal/flv"
)

func TestChunkRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := chunkWriter{w: &buf}
	big := bytes.Repeat([]byte("0123456789"), 100) // 8 chunks of 128
	msgs := []rtmpMessage{
		{typeID: msgCommandAMF0, streamID: 0, timestamp: 0, payload: []byte("connect")},
		{typeID: msgVideo, streamID: 1, timestamp: 40, payload: big},
		{typeID: msgAudio, streamID: 1, timestamp: 0x1234567, payload: big[:300]}, // extended timestamp
		{typeID: msgAudio, streamID: 1, timestamp: 0x1234580, payload: []byte{0xaf, 1, 2}},
	}
	for i, m := range msgs {
		if err := w.write(byte(4+i%2), m.typeID, m.streamID, m.timestamp, m.payload); err != nil {
			t.Fatal(err)
		}
	}
	r := newChunkReader(&buf)
	for i, want := range msgs {
		got, err := r.next()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got.typeID != want.typeID || got.streamID != want.streamID || got.timestamp != want.timestamp || !bytes.Equal(got.payload, want.payload) {
			t.Errorf("message %d: type %d stream %d ts %d %d bytes, want type %d stream %d ts %d %d bytes",
				i, got.typeID, got.streamID, got.timestamp, len(got.payload), want.typeID, want.streamID, want.timestamp, len(want.payload))
		}
	}
	if _, err := r.next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last message: %v, want EOF", err)
	}
}

func TestChunkHeaderTypes(t *testing.T) {
	in := []byte{
		// Type 0 on chunk stream 4: ts 100, 3 bytes, audio, stream 1.
		0x04, 0, 0, 100, 0, 0, 3, 8, 1, 0, 0, 0, 'a', 'b', 'c',
		// Type 3: a new message of the same length and type, ts += 0.
		0xc4, 'd', 'e', 'f',
		// Type 2: delta 20.
		0x84, 0, 0, 20, 'g', 'h', 'i',
		// Type 3 again: the delta of 20 repeats.
		0xc4, 'j', 'k', 'l',
		// Type 1: delta 5, 2 bytes, video.
		0x44, 0, 0, 5, 0, 0, 2, 9, 'm', 'n',
		// Two-byte basic header: chunk stream 64+1, type 0.
		0x00, 1, 0, 0, 7, 0, 0, 1, 18, 1, 0, 0, 0, 'o',
		// Three-byte basic header: chunk stream 64+1+256.
		0x01, 1, 1, 0, 0, 9, 0, 0, 1, 18, 1, 0, 0, 0, 'p',
	}
	want := []struct {
		ts      uint32
		typeID  byte
		payload string
	}{{100, 8, "abc"}, {100, 8, "def"}, {120, 8, "ghi"}, {140, 8, "jkl"}, {145, 9, "mn"}, {7, 18, "o"}, {9, 18, "p"}}
	r := newChunkReader(bytes.NewReader(in))
	for i, w := range want {
		m, err := r.next()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.timestamp != w.ts || m.typeID != w.typeID || string(m.payload) != w.payload {
			t.Errorf("message %d: ts %d type %d %q, want ts %d type %d %q", i, m.timestamp, m.typeID, m.payload, w.ts, w.typeID, w.payload)
		}
	}
	if len(r.streams) != 3 {
		t.Errorf("%d chunk streams, want 3", len(r.streams))
	}
}

func TestChunkReaderRefuses(t *testing.T) {
	var tooMany []byte
	for i := range maxChunkStreams + 1 {
		// Two-byte basic headers: chunk streams 64, 65, ...
		tooMany = append(tooMany, 0x00, byte(i), 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 'x')
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"type 3 first", []byte{0xc4, 'x'}},
		{"too large", []byte{0x04, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0}},
		{"truncated", []byte{0x04, 0, 0, 0, 0, 0, 10, 9, 1, 0, 0, 0, 'x'}},
		{"too many chunk streams", tooMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newChunkReader(bytes.NewReader(tt.in))
			var err error
			for err == nil {
				_, err = r.next()
			}
			if !errors.Is(err, errChunk) {
				t.Errorf("err = %v, want errChunk", err)
			}
		})
	}
	if err := newChunkReader(nil).setChunkSize(0); !errors.Is(err, errChunk) {
		t.Errorf("chunk size 0: %v", err)
	}
}

func TestAggregateTags(t *testing.T) {
	sub := func(typ byte, ts uint32, body []byte) []byte {
		b := []byte{typ, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body)), byte(ts >> 16), byte(ts >> 8), byte(ts), byte(ts >> 24), 0, 0, 0}
		b = append(b, body...)
		n := uint32(11 + len(body))
		return append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	payload := append(sub(9, 5000, []byte{0x17, 1, 0, 0, 0, 1, 2}), sub(8, 5021, []byte{0xaf, 1, 3})...)
	payload = append(payload, sub(4, 5030, []byte{1})...) // not media: skipped
	tags, err := playTags(rtmpMessage{typeID: msgAggregate, timestamp: 100, payload: payload})
	if err != nil || len(tags) != 2 {
		t.Fatalf("%d tags: %v", len(tags), err)
	}
	if tags[0].Type != flv.TagVideo || tags[0].Timestamp != 100 || tags[1].Type != flv.TagAudio || tags[1].Timestamp != 121 {
		t.Errorf("tags %+v", tags)
	}
	if _, err := playTags(rtmpMessage{typeID: msgAggregate, payload: payload[:20]}); !errors.Is(err, errBadMessage) {
		t.Errorf("truncated aggregate: %v", err)
	}
}

// FuzzChunkReader feeds arbitrary bytes to the pull client's chunk reader
// and message handling: nothing may panic, no message may pass the size
// bound. Seeds: testdata/fuzz/FuzzChunkReader (a recorded exchange with
// ffmpeg's RTMP server, and hand-made header variants).
func FuzzChunkReader(f *testing.F) {
	var seed bytes.Buffer
	w := chunkWriter{w: &seed}
	_ = w.write(2, msgSetChunkSize, 0, 0, []byte{0, 0, 16, 0})
	_ = w.write(2, msgWinAckSize, 0, 0, []byte{0, 0x26, 0x25, 0xa0})
	status, _ := flv.EncodeAMF0("onStatus", 0.0, nil, map[string]any{"code": "NetStream.Play.Start", "level": "status"})
	_ = w.write(5, msgCommandAMF0, 1, 0, status)
	meta, _ := flv.EncodeAMF0("onMetaData", flv.ECMAArray{{Key: "width", Value: 320.0}})
	_ = w.write(5, msgDataAMF0, 1, 0, meta)
	_ = w.write(6, msgVideo, 1, 0x1000000, bytes.Repeat([]byte{0x17}, 300))
	f.Add(seed.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &rtmpSource{cr: newChunkReader(bytes.NewReader(b)), cw: chunkWriter{w: io.Discard}}
		for range 1000 {
			m, err := s.cr.next()
			if err != nil {
				return
			}
			if len(m.payload) > maxRTMPMessage {
				t.Fatalf("a %d-byte message", len(m.payload))
			}
			tags, err := s.handle(m)
			if err != nil {
				continue
			}
			for _, tag := range tags {
				if len(tag.Data) == 0 || len(tag.Data) > len(b) {
					t.Fatalf("%s tag of %d bytes from %d", tag.Type, len(tag.Data), len(b))
				}
			}
		}
	})
}
