package transcode

import "errors"

// errNotADTS marks an AAC packet without an ADTS header.
var errNotADTS = errors.New("not an ADTS frame")

// aacRates are the sampling frequencies an ADTS header indexes.
var aacRates = []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// adtsHeader reads the ADTS header at the start of b (MPEG-TS carries AAC
// this way; MP4 and FLV want raw frames plus an AudioSpecificConfig). It
// returns the header length and the two-byte AudioSpecificConfig.
func adtsHeader(b []byte) (hdrLen int, asc []byte, err error) {
	if len(b) < 7 || b[0] != 0xFF || b[1]&0xF6 != 0xF0 {
		return 0, nil, errNotADTS
	}
	hdrLen = 7
	if b[1]&0x01 == 0 { // protection_absent == 0: a CRC follows
		hdrLen = 9
	}
	frameLen := int(b[3]&0x03)<<11 | int(b[4])<<3 | int(b[5])>>5
	if frameLen < hdrLen || frameLen > len(b) {
		return 0, nil, errors.New("ADTS frame length out of range")
	}
	objectType := int(b[2]>>6) + 1
	freq := int(b[2]>>2) & 0x0F
	if freq >= len(aacRates) {
		return 0, nil, errors.New("ADTS sampling frequency index reserved")
	}
	channels := int(b[2]&0x01)<<2 | int(b[3]>>6)
	asc = []byte{byte(objectType<<3 | freq>>1), byte((freq&1)<<7 | channels<<3)}
	return hdrLen, asc, nil
}
