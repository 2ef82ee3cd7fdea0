package flv

import (
	"bytes"
	"fmt"
)

// setDataFrame is the AMF0 string "@setDataFrame" that RTMP publishers
// put before onMetaData; files carry onMetaData alone.
var setDataFrame = []byte("\x02\x00\x0d@setDataFrame")

// TrimSetDataFrame returns a script body without a leading
// "@setDataFrame" string: the form an RTMP publisher sends becomes the
// form a file stores.
func TrimSetDataFrame(body []byte) []byte {
	return bytes.TrimPrefix(body, setDataFrame)
}

// ParseMetadata returns the properties of an onMetaData script tag body,
// with or without a leading "@setDataFrame": width, height, framerate,
// videocodecid, audiocodecid and so on, as DecodeAMF0 types them. Other
// script data (onCuePoint, ...) is ErrUnsupported.
func ParseMetadata(body []byte) (map[string]any, error) {
	d := amfDecoder{b: TrimSetDataFrame(body)}
	name, err := d.value(0)
	if err != nil {
		return nil, fmt.Errorf("flv: parse metadata: %w", err)
	}
	if name != "onMetaData" {
		return nil, fmt.Errorf("flv: parse metadata: script data %q: %w", fmt.Sprint(name), ErrUnsupported)
	}
	v, err := d.value(0)
	if err != nil {
		return nil, fmt.Errorf("flv: parse metadata: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("flv: parse metadata: onMetaData value is %T: %w", v, ErrMalformed)
	}
	return m, nil
}

// EncodeMetadata encodes an onMetaData script tag body with the
// properties in an ECMA array, as FLV muxers write it.
func EncodeMetadata(props ECMAArray) ([]byte, error) {
	return EncodeAMF0("onMetaData", props)
}
