// Package flv reads and writes FLV files and streams, and parses the tag
// bodies that FLV and RTMP share: legacy and enhanced-RTMP video and audio
// headers, AVC decoder configuration records, AAC AudioSpecificConfig and
// AMF0 script data such as onMetaData.
//
// Every parser here takes untrusted bytes from publishers and pulled
// sources: it must not panic, loop forever or allocate in proportion to a
// length field it has not checked against the bytes actually present.
package flv

import (
	"errors"
	"strconv"
)

var (
	// ErrTruncated means a header, tag or value runs past the end of the
	// bytes that hold it.
	ErrTruncated = errors.New("flv: truncated")
	// ErrTooLarge means a tag, string or nesting depth is over this
	// package's limits.
	ErrTooLarge = errors.New("flv: too large")
	// ErrBadHeader means the bytes do not start with a valid FLV file
	// header.
	ErrBadHeader = errors.New("flv: bad header")
	// ErrUnsupported means the bytes are well formed but use a feature
	// this package does not interpret (encrypted tags, enhanced-RTMP
	// multitrack, AMF0 references); callers usually skip such a tag.
	ErrUnsupported = errors.New("flv: unsupported")
	// ErrMalformed means the bytes are present but inconsistent (a
	// PreviousTagSize that does not match, an unknown packet type).
	ErrMalformed = errors.New("flv: malformed")
)

// TagType is the type of an FLV tag.
type TagType uint8

// The tag types FLV defines.
const (
	TagAudio  TagType = 8
	TagVideo  TagType = 9
	TagScript TagType = 18
)

func (t TagType) String() string {
	switch t {
	case TagAudio:
		return "audio"
	case TagVideo:
		return "video"
	case TagScript:
		return "script"
	}
	return "tag(" + strconv.Itoa(int(t)) + ")"
}

// Tag is one FLV tag: the same message RTMP delivers as audio, video or
// data.
type Tag struct {
	Type      TagType
	Timestamp uint32 // decode time in ms, the extended byte included
	StreamID  uint32 // always 0 in files
	Data      []byte // the tag body
}

// Header is the FLV file header's stream flags.
type Header struct {
	Audio, Video bool
}

const (
	headerLen    = 9
	tagHeaderLen = 11
	maxBodyLen   = 1<<24 - 1 // the 24-bit DataSize field
)

func u24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

// si24 reads a signed 24-bit big-endian integer (composition times).
func si24(b []byte) int32 { return int32(u24(b)<<8) >> 8 }

func putU24(b []byte, v uint32) { b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v) }

// fourCC packs a four-character code into the big-endian integer that
// enhanced RTMP sends.
func fourCC(s string) uint32 {
	return uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3])
}

// fourCCString returns the characters of a printable four-character code.
func fourCCString(v uint32) (string, bool) {
	b := []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return "", false
		}
	}
	return string(b), true
}
