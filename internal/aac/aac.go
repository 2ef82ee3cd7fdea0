// Package aac reads MPEG-4 AudioSpecificConfig and ADTS headers: the two
// places an AAC stream describes itself (MP4/FLV sequence headers, and
// MPEG-TS frames). Both come from untrusted input and are fuzzed.
package aac

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	ErrTruncated = errors.New("aac: truncated")
	ErrInvalid   = errors.New("aac: invalid")
)

// SampleRates are the sampling frequencies a 4-bit index names (ISO/IEC
// 14496-3 table 1.18); index 15 means an explicit 24-bit rate follows.
var SampleRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// channels maps channelConfiguration to a channel count (table 1.19; 7 is
// 7.1); 0 means a program config element defines the layout.
var channels = [16]int{0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8, 0}

// Config is what livegrid needs from an AudioSpecificConfig.
type Config struct {
	ObjectType int // 2 is AAC-LC, 5 SBR (HE-AAC), 29 PS (HE-AACv2)
	SampleRate int // the output rate: with explicit SBR/PS, the extension's
	Channels   int // 0 when a program config element defines them
}

// ParseConfig reads the head of an AudioSpecificConfig (14496-3 1.6.2.1).
func ParseConfig(b []byte) (Config, error) {
	r := bitReader{b: b}
	var c Config
	c.ObjectType = r.objectType()
	rate, err := r.sampleRate()
	if err != nil {
		return Config{}, err
	}
	c.SampleRate = rate
	c.Channels = channels[r.read(4)]
	if c.ObjectType == 5 || c.ObjectType == 29 {
		if c.SampleRate, err = r.sampleRate(); err != nil {
			return Config{}, err
		}
	}
	if c.ObjectType == 29 {
		c.Channels = 2 // parametric stereo decodes mono to stereo
	}
	if r.short {
		return Config{}, fmt.Errorf("AudioSpecificConfig of %d bytes: %w", len(b), ErrTruncated)
	}
	if c.ObjectType == 0 || c.SampleRate == 0 {
		return Config{}, fmt.Errorf("AudioSpecificConfig object type %d, rate %d: %w", c.ObjectType, c.SampleRate, ErrInvalid)
	}
	return c, nil
}

// bitReader reads MSB-first bit fields; reading past the end sets short and
// yields zeros.
type bitReader struct {
	b     []byte
	pos   int // in bits
	short bool
}

func (r *bitReader) read(n int) uint32 {
	var v uint32
	for range n {
		if r.pos >= 8*len(r.b) {
			r.short = true
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bitReader) objectType() int {
	t := int(r.read(5))
	if t == 31 {
		t = 32 + int(r.read(6))
	}
	return t
}

func (r *bitReader) sampleRate() (int, error) {
	idx := r.read(4)
	switch {
	case idx == 15:
		return int(r.read(24)), nil
	case int(idx) < len(SampleRates):
		return SampleRates[idx], nil
	case r.short:
		return 0, nil
	}
	return 0, fmt.Errorf("sampling frequency index %d: %w", idx, ErrInvalid)
}

// ADTS reads the ADTS header at the start of b (MPEG-TS carries AAC this
// way; MP4 and FLV want raw frames plus an AudioSpecificConfig). It returns
// the header length and the equivalent two-byte AudioSpecificConfig.
func ADTS(b []byte) (hdrLen int, asc []byte, err error) {
	if len(b) < 7 || b[0] != 0xFF || b[1]&0xF6 != 0xF0 {
		return 0, nil, fmt.Errorf("no ADTS sync word: %w", ErrInvalid)
	}
	hdrLen = 7
	if b[1]&0x01 == 0 { // protection_absent == 0: a CRC follows
		hdrLen = 9
	}
	frameLen := int(b[3]&0x03)<<11 | int(b[4])<<3 | int(b[5])>>5
	if frameLen < hdrLen || frameLen > len(b) {
		return 0, nil, fmt.Errorf("ADTS frame length %d of %d bytes: %w", frameLen, len(b), ErrTruncated)
	}
	objectType := int(b[2]>>6) + 1
	freq := int(b[2]>>2) & 0x0F
	if freq >= len(SampleRates) {
		return 0, nil, fmt.Errorf("ADTS sampling frequency index %d: %w", freq, ErrInvalid)
	}
	ch := int(b[2]&0x01)<<2 | int(b[3]>>6)
	return hdrLen, []byte{byte(objectType<<3 | freq>>1), byte((freq&1)<<7 | ch<<3)}, nil
}
