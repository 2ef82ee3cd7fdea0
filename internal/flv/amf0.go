package flv

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"
)

// AMF0 type markers.
const (
	amfNumber      = 0x00
	amfBoolean     = 0x01
	amfString      = 0x02
	amfObject      = 0x03
	amfMovieClip   = 0x04
	amfNull        = 0x05
	amfUndefined   = 0x06
	amfReference   = 0x07
	amfECMAArray   = 0x08
	amfObjectEnd   = 0x09
	amfStrictArray = 0x0a
	amfDate        = 0x0b
	amfLongString  = 0x0c
	amfUnsupported = 0x0d
	amfRecordSet   = 0x0e
	amfXMLDocument = 0x0f
	amfTypedObject = 0x10
	amfAVMPlus     = 0x11
)

// MaxAMF0Depth bounds how deeply objects and arrays may nest, so that
// hostile script data cannot exhaust the stack.
const MaxAMF0Depth = 32

// Property is one key and value of an AMF0 object or ECMA array.
type Property struct {
	Key   string
	Value any
}

// Object is an AMF0 object whose properties EncodeAMF0 writes in order.
type Object []Property

// ECMAArray is an AMF0 ECMA array (what onMetaData carries) whose
// properties EncodeAMF0 writes in order.
type ECMAArray []Property

// Undefined is the AMF0 undefined value for EncodeAMF0; DecodeAMF0
// returns nil for it, as for null.
type Undefined struct{}

// DecodeAMF0 decodes a sequence of AMF0 values, such as a script tag
// body. Values are float64, bool, string, time.Time (dates),
// map[string]any (objects, ECMA arrays, typed objects), []any (strict
// arrays) and nil (null, undefined). References and AMF3 are
// ErrUnsupported; nesting deeper than MaxAMF0Depth is ErrTooLarge.
func DecodeAMF0(b []byte) ([]any, error) {
	d := amfDecoder{b: b}
	var vals []any
	for d.pos < len(b) {
		v, err := d.value(0)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	return vals, nil
}

type amfDecoder struct {
	b   []byte
	pos int
}

func (d *amfDecoder) errorf(err error, format string, args ...any) error {
	return fmt.Errorf("flv: decode AMF0 at offset %d: %s: %w", d.pos, fmt.Sprintf(format, args...), err)
}

func (d *amfDecoder) need(n int) bool { return n >= 0 && len(d.b)-d.pos >= n }

func (d *amfDecoder) value(depth int) (any, error) {
	if !d.need(1) {
		return nil, d.errorf(ErrTruncated, "type marker")
	}
	marker := d.b[d.pos]
	d.pos++
	switch marker {
	case amfNumber:
		if !d.need(8) {
			return nil, d.errorf(ErrTruncated, "number")
		}
		v := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.pos:]))
		d.pos += 8
		return v, nil
	case amfBoolean:
		if !d.need(1) {
			return nil, d.errorf(ErrTruncated, "boolean")
		}
		d.pos++
		return d.b[d.pos-1] != 0, nil
	case amfString:
		return d.str(2)
	case amfLongString, amfXMLDocument:
		return d.str(4)
	case amfNull, amfUndefined, amfUnsupported:
		return nil, nil
	case amfObject:
		return d.props(depth, false)
	case amfTypedObject:
		if _, err := d.str(2); err != nil { // the class name
			return nil, err
		}
		return d.props(depth, false)
	case amfECMAArray:
		if !d.need(4) {
			return nil, d.errorf(ErrTruncated, "ECMA array count")
		}
		d.pos += 4 // the count is advisory; the end marker ends the array
		return d.props(depth, true)
	case amfStrictArray:
		return d.strictArray(depth)
	case amfDate:
		if !d.need(10) {
			return nil, d.errorf(ErrTruncated, "date")
		}
		ms := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.pos:]))
		d.pos += 10 // the time zone is unused, as the spec says
		if math.IsNaN(ms) || math.Abs(ms) > 8.64e15 {
			return time.Time{}, nil
		}
		return time.UnixMilli(int64(ms)).UTC(), nil
	case amfReference, amfAVMPlus, amfMovieClip, amfRecordSet:
		return nil, d.errorf(ErrUnsupported, "type marker %#x", marker)
	}
	return nil, d.errorf(ErrMalformed, "type marker %#x", marker)
}

// str reads a string whose length takes n bytes (2 or 4).
func (d *amfDecoder) str(n int) (string, error) {
	if !d.need(n) {
		return "", d.errorf(ErrTruncated, "string length")
	}
	var l int
	if n == 2 {
		l = int(binary.BigEndian.Uint16(d.b[d.pos:]))
	} else {
		l = int(binary.BigEndian.Uint32(d.b[d.pos:]))
	}
	d.pos += n
	if !d.need(l) {
		return "", d.errorf(ErrTruncated, "string of %d bytes", l)
	}
	s := string(d.b[d.pos : d.pos+l])
	d.pos += l
	return s, nil
}

// props reads properties up to the object end marker. An ECMA array may
// also end with the bytes, as some encoders omit its end marker.
func (d *amfDecoder) props(depth int, ecma bool) (map[string]any, error) {
	if depth >= MaxAMF0Depth {
		return nil, d.errorf(ErrTooLarge, "nesting deeper than %d", MaxAMF0Depth)
	}
	m := map[string]any{}
	for {
		if ecma && d.pos == len(d.b) {
			return m, nil
		}
		if d.need(3) && d.b[d.pos] == 0 && d.b[d.pos+1] == 0 && d.b[d.pos+2] == amfObjectEnd {
			d.pos += 3
			return m, nil
		}
		key, err := d.str(2)
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
}

func (d *amfDecoder) strictArray(depth int) ([]any, error) {
	if depth >= MaxAMF0Depth {
		return nil, d.errorf(ErrTooLarge, "nesting deeper than %d", MaxAMF0Depth)
	}
	if !d.need(4) {
		return nil, d.errorf(ErrTruncated, "strict array count")
	}
	n := int(binary.BigEndian.Uint32(d.b[d.pos:]))
	d.pos += 4
	if !d.need(n) { // every value takes at least its marker byte
		return nil, d.errorf(ErrTruncated, "strict array of %d values", n)
	}
	vals := make([]any, 0, min(n, 256))
	for range n {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// EncodeAMF0 encodes values as AMF0. It takes what DecodeAMF0 returns,
// any Go integer or float type as a number, Object and ECMAArray (written
// in order), map[string]any (written as an object with sorted keys) and
// Undefined. Strings over 64 KiB are written as long strings.
func EncodeAMF0(vals ...any) ([]byte, error) {
	var b []byte
	for _, v := range vals {
		var err error
		if b, err = appendAMF0(b, v, 0); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func appendAMF0(b []byte, v any, depth int) ([]byte, error) {
	if depth > MaxAMF0Depth {
		return nil, fmt.Errorf("flv: encode AMF0: nesting deeper than %d: %w", MaxAMF0Depth, ErrTooLarge)
	}
	switch v := v.(type) {
	case nil:
		return append(b, amfNull), nil
	case Undefined:
		return append(b, amfUndefined), nil
	case bool:
		if v {
			return append(b, amfBoolean, 1), nil
		}
		return append(b, amfBoolean, 0), nil
	case string:
		if len(v) > 0xffff {
			if uint64(len(v)) > math.MaxUint32 {
				return nil, fmt.Errorf("flv: encode AMF0: string of %d bytes: %w", len(v), ErrTooLarge)
			}
			b = binary.BigEndian.AppendUint32(append(b, amfLongString), uint32(len(v)))
			return append(b, v...), nil
		}
		b = binary.BigEndian.AppendUint16(append(b, amfString), uint16(len(v)))
		return append(b, v...), nil
	case time.Time:
		b = binary.BigEndian.AppendUint64(append(b, amfDate), math.Float64bits(float64(v.UnixMilli())))
		return append(b, 0, 0), nil
	case Object:
		return appendProps(append(b, amfObject), v, depth)
	case ECMAArray:
		b = binary.BigEndian.AppendUint32(append(b, amfECMAArray), uint32(len(v)))
		return appendProps(b, v, depth)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		props := make([]Property, len(keys))
		for i, k := range keys {
			props[i] = Property{k, v[k]}
		}
		return appendProps(append(b, amfObject), props, depth)
	case []any:
		b = binary.BigEndian.AppendUint32(append(b, amfStrictArray), uint32(len(v)))
		for _, e := range v {
			var err error
			if b, err = appendAMF0(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	if f, ok := number(v); ok {
		return binary.BigEndian.AppendUint64(append(b, amfNumber), math.Float64bits(f)), nil
	}
	return nil, fmt.Errorf("flv: encode AMF0: %T: %w", v, ErrUnsupported)
}

func appendProps(b []byte, props []Property, depth int) ([]byte, error) {
	for _, p := range props {
		if len(p.Key) > 0xffff {
			return nil, fmt.Errorf("flv: encode AMF0: key of %d bytes: %w", len(p.Key), ErrTooLarge)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.Key)))
		b = append(b, p.Key...)
		var err error
		if b, err = appendAMF0(b, p.Value, depth+1); err != nil {
			return nil, err
		}
	}
	return append(b, 0, 0, amfObjectEnd), nil
}

// number converts any Go integer or float kind to float64.
func number(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}
