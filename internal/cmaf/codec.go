package cmaf

import (
	"errors"
	"fmt"
	"github.com/livegrid/livegrid/internal/aac"
	"math/bits"
	"strconv"
	"strings"
)

// objectTypeAAC is the MPEG-4 Audio objectTypeIndication (ISO/IEC 14496-1).
const objectTypeAAC = 0x40

// AVCCodecString returns the RFC 6381 "avc1.PPCCLL" string for an H.264
// SPS NAL unit whose first byte is the NAL header, or "" if sps is not one.
func AVCCodecString(sps []byte) string {
	if len(sps) < 4 || sps[0]&0x1F != 7 {
		return ""
	}
	return fmt.Sprintf("avc1.%02x%02x%02x", sps[1], sps[2], sps[3])
}

// AACCodecString returns "mp4a.40.N" for an MPEG-4 AudioSpecificConfig,
// N being its audio object type, or "" if asc cannot be read.
func AACCodecString(asc []byte) string {
	cfg, err := parseASC(asc)
	if err != nil {
		return ""
	}
	return "mp4a.40." + strconv.Itoa(cfg.ObjectType)
}

// hevcCodecString builds the ISO/IEC 14496-15 Annex E string from an
// hvcC, in the form Apple and the browsers accept (hex without padding).
func hevcCodecString(entry string, hvcC []byte) (string, error) {
	if len(hvcC) < 13 {
		return "", fmt.Errorf("hvcC needs 13 bytes, have %d: %w", len(hvcC), ErrTruncated)
	}
	var sb strings.Builder
	sb.WriteString(entry)
	sb.WriteByte('.')
	if space := hvcC[1] >> 6; space > 0 {
		sb.WriteByte('A' + space - 1)
	}
	sb.WriteString(strconv.Itoa(int(hvcC[1] & 0x1F)))
	compat := uint32(hvcC[2])<<24 | uint32(hvcC[3])<<16 | uint32(hvcC[4])<<8 | uint32(hvcC[5])
	fmt.Fprintf(&sb, ".%X", bits.Reverse32(compat))
	tier := byte('L')
	if hvcC[1]&0x20 != 0 {
		tier = 'H'
	}
	fmt.Fprintf(&sb, ".%c%d", tier, hvcC[12])
	constraints := hvcC[6:12]
	for len(constraints) > 0 && constraints[len(constraints)-1] == 0 {
		constraints = constraints[:len(constraints)-1]
	}
	for _, c := range constraints {
		fmt.Fprintf(&sb, ".%X", c)
	}
	return sb.String(), nil
}

// av1CodecString builds the short "av01.P.LLT.DD" form (AV1 ISOBMFF
// binding, Codecs Parameter String) from an av1C.
func av1CodecString(av1C []byte) (string, error) {
	if len(av1C) < 3 {
		return "", fmt.Errorf("av1C needs 3 bytes, have %d: %w", len(av1C), ErrTruncated)
	}
	if av1C[0] != 0x81 { // marker 1, version 1
		return "", fmt.Errorf("av1C marker/version %#x: %w", av1C[0], ErrUnsupportedCodec)
	}
	profile := av1C[1] >> 5
	level := av1C[1] & 0x1F
	tier := byte('M')
	if av1C[2]&0x80 != 0 {
		tier = 'H'
	}
	depth := 8
	if av1C[2]&0x40 != 0 { // high_bitdepth
		depth = 10
		if profile == 2 && av1C[2]&0x20 != 0 { // twelve_bit
			depth = 12
		}
	}
	return fmt.Sprintf("av01.%d.%02d%c.%02d", profile, level, tier, depth), nil
}

// parseESDescriptor reads the ES_Descriptor of an esds box and returns the
// decoder config's objectTypeIndication and DecoderSpecificInfo (nil when
// absent, as for MP3).
func parseESDescriptor(b []byte) (oti byte, dsi []byte, err error) {
	tag, es, _, err := readDescriptor(b)
	if err != nil {
		return 0, nil, err
	}
	if tag != 0x03 {
		return 0, nil, fmt.Errorf("descriptor tag %#x, want ES_Descriptor: %w", tag, ErrMalformed)
	}
	if len(es) < 3 {
		return 0, nil, fmt.Errorf("ES_Descriptor: %w", ErrTruncated)
	}
	flags := es[2]
	es = es[3:] // ES_ID, flags
	skip := 0
	if flags&0x80 != 0 { // streamDependenceFlag
		skip += 2
	}
	if flags&0x40 != 0 { // URL_Flag
		if len(es) < skip+1 {
			return 0, nil, fmt.Errorf("ES_Descriptor URL: %w", ErrTruncated)
		}
		skip += 1 + int(es[skip])
	}
	if flags&0x20 != 0 { // OCRstreamFlag
		skip += 2
	}
	if len(es) < skip {
		return 0, nil, fmt.Errorf("ES_Descriptor: %w", ErrTruncated)
	}
	es = es[skip:]
	for len(es) > 0 {
		tag, body, rest, err := readDescriptor(es)
		if err != nil {
			return 0, nil, err
		}
		es = rest
		if tag != 0x04 {
			continue
		}
		if len(body) < 13 {
			return 0, nil, fmt.Errorf("DecoderConfigDescriptor: %w", ErrTruncated)
		}
		oti, sub := body[0], body[13:]
		for len(sub) > 0 {
			tag, body, rest, err := readDescriptor(sub)
			if err != nil {
				return 0, nil, err
			}
			if tag == 0x05 {
				return oti, body, nil
			}
			sub = rest
		}
		return oti, nil, nil
	}
	return 0, nil, fmt.Errorf("no DecoderConfigDescriptor: %w", ErrMalformed)
}

// readDescriptor reads one MPEG-4 descriptor: a tag and a length of up to
// four 7-bit groups.
func readDescriptor(b []byte) (tag byte, body, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, fmt.Errorf("descriptor header: %w", ErrTruncated)
	}
	tag = b[0]
	size, i := 0, 1
	for ; i <= 4; i++ {
		if i >= len(b) {
			return 0, nil, nil, fmt.Errorf("descriptor %#x length: %w", tag, ErrTruncated)
		}
		size = size<<7 | int(b[i]&0x7F)
		if b[i]&0x80 == 0 {
			break
		}
	}
	if i > 4 {
		return 0, nil, nil, fmt.Errorf("descriptor %#x length over 4 bytes: %w", tag, ErrMalformed)
	}
	b = b[i+1:]
	if size > len(b) {
		return 0, nil, nil, fmt.Errorf("descriptor %#x length %d exceeds %d bytes: %w", tag, size, len(b), ErrTruncated)
	}
	return tag, b[:size], b[size:], nil
}

// parseASC reads an AudioSpecificConfig; for explicitly signalled SBR/PS
// it reports the output rate.
func parseASC(asc []byte) (aac.Config, error) {
	c, err := aac.ParseConfig(asc)
	switch {
	case errors.Is(err, aac.ErrTruncated):
		return aac.Config{}, fmt.Errorf("%v: %w", err, ErrTruncated)
	case err != nil:
		return aac.Config{}, fmt.Errorf("%v: %w", err, ErrUnsupportedCodec)
	}
	return c, nil
}
