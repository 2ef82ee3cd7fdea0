package flv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

var fileHeader = []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}

// rawTag builds a tag as it is on the wire, with its PreviousTagSize.
func rawTag(typ byte, ts uint32, body []byte) []byte {
	b := []byte{typ, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body)),
		byte(ts >> 16), byte(ts >> 8), byte(ts), byte(ts >> 24), 0, 0, 0}
	b = append(b, body...)
	return binary.BigEndian.AppendUint32(b, uint32(11+len(body)))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestReaderMalformed(t *testing.T) {
	good := rawTag(9, 0x01020304, []byte{0x17, 1, 0, 0, 0})
	badSize := slicesClone(good)
	badSize[len(badSize)-1]++
	tests := []struct {
		name     string
		in       []byte
		maxTag   int
		tags     int   // read before the error
		want     error // io.EOF for a clean end
		inMsg    string
		readMore bool // the error is not sticky: the reader goes on
	}{
		{name: "empty", in: nil, want: ErrTruncated},
		{name: "short header", in: fileHeader[:5], want: ErrTruncated},
		{name: "signature", in: cat([]byte("FLX"), fileHeader[3:]), want: ErrBadHeader},
		{name: "version", in: cat([]byte("FLV\x02"), fileHeader[4:]), want: ErrBadHeader},
		{name: "data offset under 9", in: cat(fileHeader[:5], []byte{0, 0, 0, 8, 0, 0, 0, 0}), want: ErrBadHeader},
		{name: "data offset huge", in: cat(fileHeader[:5], []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}), want: ErrBadHeader},
		{name: "data offset skips bytes", in: cat(fileHeader[:5], []byte{0, 0, 0, 12, 1, 2, 3, 0, 0, 0, 0}, good), tags: 1, want: io.EOF},
		{name: "PreviousTagSize0", in: cat(fileHeader[:9], []byte{0, 0, 0, 1}), want: ErrMalformed},
		{name: "header only", in: fileHeader, want: io.EOF},
		{name: "clean end", in: cat(fileHeader, good, good), tags: 2, want: io.EOF},
		{name: "truncated tag header", in: cat(fileHeader, good, good[:6]), tags: 1, want: ErrTruncated, inMsg: "offset 33"},
		{name: "truncated body", in: cat(fileHeader, good[:13]), want: ErrTruncated, inMsg: "offset 13"},
		{name: "missing PreviousTagSize", in: cat(fileHeader, good[:len(good)-2]), want: ErrTruncated},
		{name: "wrong PreviousTagSize", in: cat(fileHeader, good, badSize), tags: 1, want: ErrMalformed, inMsg: "offset 49"},
		{name: "too large", in: cat(fileHeader, rawTag(9, 0, make([]byte, 100))), maxTag: 99, want: ErrTooLarge},
		{name: "body length over what is sent", in: cat(fileHeader, []byte{9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 100000)), maxTag: 1<<24 - 1, want: ErrTruncated},
		{name: "encrypted tag skipped", in: cat(fileHeader, rawTag(0x29, 0, []byte{1}), good), want: ErrUnsupported, readMore: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.in))
			r.MaxTagSize = tt.maxTag
			var err error
			var n int
			for {
				var tag Tag
				if tag, err = r.ReadTag(); err != nil {
					break
				}
				if tag.Type != TagVideo || tag.Timestamp != 0x01020304 || len(tag.Data) != 5 {
					t.Fatalf("tag %d = %+v", n, tag)
				}
				n++
			}
			if n != tt.tags || !errors.Is(err, tt.want) {
				t.Fatalf("read %d tags, then %v; want %d, then %v", n, err, tt.tags, tt.want)
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("error %q does not name %q", err, tt.inMsg)
			}
			_, again := r.ReadTag()
			if tt.readMore {
				if again != nil {
					t.Errorf("ReadTag after %v = %v, want the next tag", err, again)
				}
			} else if !errors.Is(again, tt.want) {
				t.Errorf("ReadTag after %v = %v, want the same error", err, again)
			}
		})
	}
}

func TestReaderOneByteReads(t *testing.T) {
	in := cat(fileHeader, rawTag(8, 5, []byte{0xaf, 1, 2}), rawTag(9, 1<<24+7, bytes.Repeat([]byte{0x27}, 70000)))
	r := NewReader(iotest.OneByteReader(bytes.NewReader(in)))
	var got []Tag
	for {
		tag, err := r.ReadTag()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tag)
	}
	if len(got) != 2 || got[0].Timestamp != 5 || got[1].Timestamp != 1<<24+7 || len(got[1].Data) != 70000 {
		t.Fatalf("read %d tags: %+v", len(got), got)
	}
}

func TestReaderPassesIOErrors(t *testing.T) {
	boom := errors.New("connection reset")
	r := NewReader(io.MultiReader(bytes.NewReader(fileHeader), iotest.ErrReader(boom)))
	if _, err := r.ReadTag(); !errors.Is(err, boom) {
		t.Errorf("ReadTag() = %v, want %v", err, boom)
	}
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

func TestHeaderAfterEnd(t *testing.T) {
	r := NewReader(bytes.NewReader(fileHeader))
	if _, err := r.ReadTag(); err != io.EOF {
		t.Fatalf("ReadTag() = %v, want io.EOF", err)
	}
	if h, err := r.Header(); err != nil || !h.Audio || !h.Video {
		t.Errorf("Header() after the end = %+v, %v", h, err)
	}
}
