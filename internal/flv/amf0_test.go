package flv

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAMF0RoundTrip(t *testing.T) {
	date := time.UnixMilli(1700000000123).UTC()
	tests := []struct {
		name string
		in   []any // encoded
		want []any // decoded
	}{
		{"scalars", []any{1.5, true, false, "onMetaData", nil, Undefined{}}, []any{1.5, true, false, "onMetaData", nil, nil}},
		{"integers become numbers", []any{int(320), uint8(7), int64(-3), float32(0.5)}, []any{320.0, 7.0, -3.0, 0.5}},
		{"date", []any{date}, []any{date}},
		{"long string", []any{strings.Repeat("x", 70000)}, []any{strings.Repeat("x", 70000)}},
		{"object in order", []any{Object{{"b", 1}, {"a", "x"}}}, []any{map[string]any{"a": "x", "b": 1.0}}},
		{"map", []any{map[string]any{"width": 320, "nested": map[string]any{"k": true}}}, []any{map[string]any{"width": 320.0, "nested": map[string]any{"k": true}}}},
		{"ECMA array", []any{ECMAArray{{"width", 320.0}, {"height", 180.0}}}, []any{map[string]any{"width": 320.0, "height": 180.0}}},
		{"strict array", []any{[]any{1, "two", []any{nil}}}, []any{[]any{1.0, "two", []any{nil}}}},
		{"empty containers", []any{Object{}, ECMAArray{}, []any{}}, []any{map[string]any{}, map[string]any{}, []any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeAMF0(tt.in...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeAMF0(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeAMF0(EncodeAMF0(%v)) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestEncodeAMF0Order(t *testing.T) {
	b, err := EncodeAMF0(ECMAArray{{"width", 1}, {"height", 2}})
	if err != nil {
		t.Fatal(err)
	}
	if w, h := bytes.Index(b, []byte("width")), bytes.Index(b, []byte("height")); w < 0 || h < w {
		t.Errorf("ECMA array keys out of order: %q", b)
	}
	if b[0] != amfECMAArray || !bytes.HasSuffix(b, []byte{0, 0, 9}) {
		t.Errorf("ECMA array encoded as %x", b)
	}
}

func TestEncodeAMF0Errors(t *testing.T) {
	deep := []any{}
	for range MaxAMF0Depth + 1 {
		deep = []any{deep}
	}
	self := []any{nil}
	self[0] = self
	tests := []struct {
		name string
		in   any
		want error
	}{
		{"unsupported type", struct{}{}, ErrUnsupported},
		{"channel in array", []any{make(chan int)}, ErrUnsupported},
		{"too deep", deep, ErrTooLarge},
		{"cycle", self, ErrTooLarge},
		{"key over 64 KiB", Object{{strings.Repeat("k", 70000), 1}}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := EncodeAMF0(tt.in); !errors.Is(err, tt.want) {
				t.Errorf("EncodeAMF0() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeAMF0(t *testing.T) {
	nested := bytes.Repeat([]byte{amfStrictArray, 0, 0, 0, 1}, MaxAMF0Depth+1)
	tests := []struct {
		name string
		in   []byte
		want []any
		err  error
	}{
		{"empty", nil, nil, nil},
		{"ECMA array without end marker", []byte{8, 0, 0, 0, 1, 0, 1, 'a', 1, 1}, []any{map[string]any{"a": true}}, nil},
		{"ECMA array count ignored", []byte{8, 0xff, 0xff, 0xff, 0xff, 0, 0, 9}, []any{map[string]any{}}, nil},
		{"empty key before end", []byte{3, 0, 0, 5, 0, 0, 9}, []any{map[string]any{"": nil}}, nil},
		{"typed object", []byte{0x10, 0, 1, 'C', 0, 1, 'x', 5, 0, 0, 9}, []any{map[string]any{"x": nil}}, nil},
		{"XML document", []byte{0x0f, 0, 0, 0, 2, '<', '>'}, []any{"<>"}, nil},
		{"NaN date", []byte{0x0b, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 0, 0}, []any{time.Time{}}, nil},
		{"truncated number", []byte{0, 1, 2}, nil, ErrTruncated},
		{"truncated boolean", []byte{1}, nil, ErrTruncated},
		{"truncated string", []byte{2, 0, 5, 'a'}, nil, ErrTruncated},
		{"truncated long string length", []byte{0x0c, 0, 0}, nil, ErrTruncated},
		{"huge long string", []byte{0x0c, 0xff, 0xff, 0xff, 0xff, 'a'}, nil, ErrTruncated},
		{"truncated object", []byte{3, 0, 1, 'a'}, nil, ErrTruncated},
		{"object without end", []byte{3, 0, 1, 'a', 5}, nil, ErrTruncated},
		{"truncated date", []byte{0x0b, 0, 0}, nil, ErrTruncated},
		{"strict array count over bytes", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 5}, nil, ErrTruncated},
		{"truncated ECMA count", []byte{8, 0}, nil, ErrTruncated},
		{"too deep", nested, nil, ErrTooLarge},
		{"reference", []byte{7, 0, 1}, nil, ErrUnsupported},
		{"AMF3 switch", []byte{0x11, 1}, nil, ErrUnsupported},
		{"unknown marker", []byte{0x20}, nil, ErrMalformed},
		{"object end out of place", []byte{9}, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeAMF0(tt.in)
			if !errors.Is(err, tt.err) || (tt.err != nil) != (err != nil) {
				t.Fatalf("DecodeAMF0() error = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeAMF0() = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseMetadata(t *testing.T) {
	props := ECMAArray{{"width", 1280}, {"height", 720}, {"framerate", 29.97}, {"videocodecid", 7}, {"encoder", "obs-output module"}}
	meta, err := EncodeMetadata(props)
	if err != nil {
		t.Fatal(err)
	}
	withFrame, err := EncodeAMF0("@setDataFrame", "onMetaData", props)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(TrimSetDataFrame(withFrame), meta) {
		t.Errorf("TrimSetDataFrame() = %x, want %x", TrimSetDataFrame(withFrame), meta)
	}
	cue, _ := EncodeAMF0("onCuePoint", map[string]any{"name": "ad"})
	notMap, _ := EncodeAMF0("onMetaData", 5)
	tests := []struct {
		name string
		in   []byte
		err  error
	}{
		{"onMetaData", meta, nil},
		{"@setDataFrame", withFrame, nil},
		{"trailing values ignored", append(meta, 5), nil},
		{"onCuePoint", cue, ErrUnsupported},
		{"not a map", notMap, ErrMalformed},
		{"empty", nil, ErrTruncated},
		{"name only", meta[:13], ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMetadata(tt.in)
			if !errors.Is(err, tt.err) || (tt.err != nil) != (err != nil) {
				t.Fatalf("ParseMetadata() error = %v, want %v", err, tt.err)
			}
			if err == nil && (m["width"] != 1280.0 || m["height"] != 720.0 || math.Abs(m["framerate"].(float64)-29.97) > 1e-9) {
				t.Errorf("ParseMetadata() = %v", m)
			}
		})
	}
}
