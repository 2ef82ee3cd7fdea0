package flv

import (
	"encoding/binary"
	"fmt"
)

// AVCConfig is an AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 5.3.3.1), the payload of an H.264 sequence header.
type AVCConfig struct {
	Profile, Compat, Level byte
	LengthSize             int // bytes in each NAL unit's length prefix: 1, 2 or 4
	SPS, PPS               [][]byte
	// Ext holds the bytes after the PPS list (chroma format and bit depth
	// of high profiles), kept verbatim so Marshal gives them back.
	Ext []byte
}

// ParseAVCConfig parses an AVCDecoderConfigurationRecord. The parameter
// sets and Ext alias b.
func ParseAVCConfig(b []byte) (*AVCConfig, error) {
	if len(b) < 6 {
		return nil, fmt.Errorf("flv: parse avcC of %d bytes: %w", len(b), ErrTruncated)
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("flv: parse avcC: version %d: %w", b[0], ErrMalformed)
	}
	c := &AVCConfig{Profile: b[1], Compat: b[2], Level: b[3], LengthSize: int(b[4]&0x03) + 1}
	if c.LengthSize == 3 {
		return nil, fmt.Errorf("flv: parse avcC: NAL length size 3: %w", ErrMalformed)
	}
	pos := 6
	var err error
	if c.SPS, pos, err = readParamSets(b, pos, int(b[5]&0x1f)); err != nil {
		return nil, fmt.Errorf("flv: parse avcC SPS: %w", err)
	}
	if len(b) < pos+1 {
		return nil, fmt.Errorf("flv: parse avcC: PPS count: %w", ErrTruncated)
	}
	n := int(b[pos])
	if c.PPS, pos, err = readParamSets(b, pos+1, n); err != nil {
		return nil, fmt.Errorf("flv: parse avcC PPS: %w", err)
	}
	if pos < len(b) {
		c.Ext = b[pos:]
	}
	return c, nil
}

// readParamSets reads n length-prefixed parameter sets; n is at most 255,
// so the slice it makes is small whatever the input says.
func readParamSets(b []byte, pos, n int) ([][]byte, int, error) {
	sets := make([][]byte, 0, n)
	for i := range n {
		if len(b) < pos+2 {
			return nil, 0, fmt.Errorf("length of set %d: %w", i, ErrTruncated)
		}
		l := int(binary.BigEndian.Uint16(b[pos:]))
		pos += 2
		if len(b) < pos+l {
			return nil, 0, fmt.Errorf("set %d of %d bytes: %w", i, l, ErrTruncated)
		}
		sets = append(sets, b[pos:pos+l])
		pos += l
	}
	return sets, pos, nil
}

// Marshal encodes the record. Zero Profile, Compat and Level are taken
// from the first SPS, and a LengthSize other than 1 or 2 is written as 4.
// The format holds at most 31 SPS and 255 PPS of under 64 KiB each;
// Marshal drops what does not fit, which no encoder produces.
func (c *AVCConfig) Marshal() []byte {
	profile, compat, level := c.Profile, c.Compat, c.Level
	if profile == 0 && compat == 0 && level == 0 && len(c.SPS) > 0 && len(c.SPS[0]) >= 4 {
		profile, compat, level = c.SPS[0][1], c.SPS[0][2], c.SPS[0][3]
	}
	lengthSize := byte(3)
	if c.LengthSize == 1 || c.LengthSize == 2 {
		lengthSize = byte(c.LengthSize - 1)
	}
	sps, pps := fitting(c.SPS, 31), fitting(c.PPS, 255)
	b := []byte{1, profile, compat, level, 0xfc | lengthSize, 0xe0 | byte(len(sps))}
	for _, s := range sps {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	b = append(b, byte(len(pps)))
	for _, p := range pps {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	return append(b, c.Ext...)
}

// fitting returns the first max sets that a 16-bit length can describe.
func fitting(sets [][]byte, max int) [][]byte {
	var out [][]byte
	for _, s := range sets {
		if len(out) == max {
			break
		}
		if len(s) <= 0xffff {
			out = append(out, s)
		}
	}
	return out
}
