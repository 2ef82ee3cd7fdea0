package hub

import (
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/livegrid/livegrid/internal/flv"
)

// env is one scenario's hub, stream and reader.
type env struct {
	h *Hub
	s *Stream
	r *Reader
}

type step func(t *testing.T, e *env)

func pub(tags ...flv.Tag) step {
	return func(t *testing.T, e *env) { write(t, e.s, tags...) }
}

func sub() step {
	return func(t *testing.T, e *env) {
		r, err := e.s.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		e.r = r
	}
}

// expect drains the reader and compares what it had queued.
func expect(want ...string) step {
	return func(t *testing.T, e *env) {
		t.Helper()
		got, err := drain(t, e.r)
		if err != nil {
			t.Fatalf("reader ended with %v after %q", err, got)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("reader got\n  %q\nwant\n  %q", got, want)
		}
	}
}

// expectEnd drains the reader, which must have ended with err.
func expectEnd(err error, want ...string) step {
	return func(t *testing.T, e *env) {
		t.Helper()
		got, gotErr := drain(t, e.r)
		if !errors.Is(gotErr, err) {
			t.Fatalf("reader ended with %v, want %v", gotErr, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("reader got\n  %q\nwant\n  %q", got, want)
		}
	}
}

func closeStream() step {
	return func(t *testing.T, e *env) { _ = e.s.Close() }
}

func stats(check func(Stats) bool, what string) step {
	return func(t *testing.T, e *env) {
		t.Helper()
		if st := e.s.Stats(); !check(st) {
			t.Fatalf("stats %+v: want %s", st, what)
		}
	}
}

func TestGOPCache(t *testing.T) {
	hdrs := []flv.Tag{metaTag(0, 320), avcHeader(0, 1), aacHeader(0)}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "joiner gets headers then the GOP from its keyframe, then live tags",
			steps: []step{
				pub(hdrs...),
				pub(keyframe(0, 10), aacFrame(10), interFrame(33, 10), keyframe(66, 10), aacFrame(70), interFrame(100, 10)),
				sub(),
				expect("meta@66", "avc-hdr@66", "aac-hdr@66", "key@66", "aac@70", "inter@100"),
				pub(interFrame(133, 10)),
				expect("inter@133"),
			},
		},
		{
			name: "joiner before any keyframe gets audio, and video from the next keyframe",
			steps: []step{
				pub(hdrs...),
				pub(aacFrame(5)),
				sub(),
				pub(interFrame(10, 10), aacFrame(20), keyframe(33, 10), interFrame(66, 10)),
				expect("meta@5", "avc-hdr@5", "aac-hdr@5", "aac@20", "key@33", "inter@66"),
			},
		},
		{
			name: "GOP over the tag cap is dropped until the next keyframe",
			cfg:  Config{GOPMaxTags: 3},
			steps: []step{
				pub(avcHeader(0, 1), keyframe(0, 10), interFrame(33, 10), interFrame(66, 10)),
				stats(func(s Stats) bool { return s.GOPTags == 3 && s.GOPDrops == 0 }, "3 tags cached"),
				pub(interFrame(100, 10)),
				stats(func(s Stats) bool { return s.GOPTags == 0 && s.GOPDrops == 1 }, "cache dropped"),
				sub(),
				pub(interFrame(133, 10), keyframe(166, 10), interFrame(200, 10)),
				expect("avc-hdr@100", "key@166", "inter@200"),
				stats(func(s Stats) bool { return s.GOPTags == 2 }, "a new GOP cached"),
			},
		},
		{
			name: "GOP over the byte cap is dropped until the next keyframe",
			cfg:  Config{GOPMaxBytes: 1000},
			steps: []step{
				pub(avcHeader(0, 1), keyframe(0, 600), interFrame(33, 600)),
				sub(),
				expect("avc-hdr@33"),
				pub(keyframe(66, 100)),
				expect("key@66"),
			},
		},
		{
			name: "a keyframe alone over the byte cap is not cached",
			cfg:  Config{GOPMaxBytes: 100},
			steps: []step{
				pub(avcHeader(0, 1), keyframe(0, 200)),
				stats(func(s Stats) bool { return s.GOPTags == 0 && s.GOPDrops == 1 }, "nothing cached"),
			},
		},
		{
			name: "changed video header drops the cached GOP",
			steps: []step{
				pub(avcHeader(0, 1), keyframe(0, 10), interFrame(33, 10), avcHeader(50, 2)),
				sub(),
				expect("avc-hdr@50"),
				pub(interFrame(66, 10), keyframe(100, 10)),
				expect("key@100"),
			},
		},
		{
			name: "repeated identical header keeps the cached GOP",
			steps: []step{
				pub(avcHeader(0, 1), keyframe(0, 10), interFrame(33, 10), avcHeader(50, 1), interFrame(66, 10)),
				sub(),
				expect("avc-hdr@0", "key@0", "inter@33", "inter@66"),
			},
		},
		{
			name: "slow reader skips to the next keyframe",
			cfg:  Config{ReaderMaxTags: 4},
			steps: []step{
				pub(avcHeader(0, 1), keyframe(0, 10)),
				sub(),
				pub(interFrame(33, 10), interFrame(66, 10)),
				pub(interFrame(100, 10), aacFrame(110), interFrame(133, 10)), // full: skipped
				stats(func(s Stats) bool { return s.ReaderSkips == 1 && s.Readers == 1 }, "one skip"),
				expect("avc-hdr@0", "key@0", "inter@33", "inter@66"),
				pub(interFrame(166, 10)), // still skipping
				pub(keyframe(200, 10), aacFrame(210), interFrame(233, 10)),
				expect("key@200", "aac@210", "inter@233"),
			},
		},
		{
			name: "slow reader over the byte bound skips too",
			cfg:  Config{ReaderMaxBytes: 100},
			steps: []step{
				pub(avcHeader(0, 1), keyframe(0, 10)),
				sub(),
				pub(interFrame(33, 40), interFrame(66, 40)), // 9+15+45+45 > 100: skipped
				expect("avc-hdr@0", "key@0", "inter@33"),
				pub(keyframe(100, 10)),
				expect("key@100"),
			},
		},
		{
			name: "reader still behind at the next keyframe is dropped",
			cfg:  Config{ReaderMaxTags: 4},
			steps: []step{
				pub(avcHeader(0, 1), keyframe(0, 10)),
				sub(),
				pub(interFrame(33, 10), interFrame(66, 10), interFrame(100, 10), keyframe(133, 10)),
				expectEnd(ErrSlowReader),
				stats(func(s Stats) bool { return s.DroppedReaders == 1 && s.Readers == 0 }, "one reader dropped"),
				pub(interFrame(166, 10)), // the publisher goes on
			},
		},
		{
			name: "header changed while skipping is sent again before the keyframe",
			cfg:  Config{ReaderMaxTags: 4},
			steps: []step{
				pub(avcHeader(0, 1), keyframe(0, 10)),
				sub(),
				pub(interFrame(33, 10), interFrame(66, 10), interFrame(100, 10), avcHeader(110, 2)),
				expect("avc-hdr@0", "key@0", "inter@33", "inter@66"),
				pub(keyframe(133, 10)),
				expect("avc-hdr@133", "key@133"),
			},
		},
		{
			name: "audio-only reader that fills up is dropped",
			cfg:  Config{ReaderMaxTags: 2},
			steps: []step{
				pub(aacHeader(0)),
				sub(),
				pub(aacFrame(10), aacFrame(20)),
				expectEnd(ErrSlowReader),
			},
		},
		{
			name: "readers get their queued tags, then the end",
			steps: []step{
				pub(avcHeader(0, 1), keyframe(0, 10)),
				sub(),
				pub(interFrame(33, 10)),
				closeStream(),
				expectEnd(io.EOF, "avc-hdr@0", "key@0", "inter@33"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(tt.cfg)
			defer h.Close()
			e := &env{h: h, s: mustPublish(t, h, "test")}
			for _, st := range tt.steps {
				st(t, e)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	withSetDataFrame := metaTag(0, 1)
	withSetDataFrame.Data = append([]byte("\x02\x00\x0d@setDataFrame"), withSetDataFrame.Data...)
	cue, err := flv.EncodeAMF0("onCuePoint", flv.Object{{Key: "name", Value: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tag  flv.Tag
		want tagKind
	}{
		{"onMetaData", metaTag(0, 1), kindHeader},
		{"@setDataFrame onMetaData", withSetDataFrame, kindHeader},
		{"onCuePoint", flv.Tag{Type: flv.TagScript, Data: cue}, kindFrame},
		{"AVC sequence header", avcHeader(0, 1), kindHeader},
		{"AVC keyframe", keyframe(0, 1), kindKeyframe},
		{"AVC inter frame", interFrame(0, 1), kindFrame},
		{"AAC sequence header", aacHeader(0), kindHeader},
		{"AAC frame", aacFrame(0), kindFrame},
		{"truncated video", flv.Tag{Type: flv.TagVideo, Data: []byte{0x17}}, kindFrame},
		{"empty video", flv.Tag{Type: flv.TagVideo}, kindFrame},
		{"unknown type", flv.Tag{Type: 7, Data: []byte{1}}, kindFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.tag); got != tt.want {
				t.Errorf("classify = %d, want %d", got, tt.want)
			}
		})
	}
}
