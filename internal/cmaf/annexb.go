package cmaf

import (
	"bytes"
	"encoding/binary"
)

var startCode = []byte{0, 0, 1}

// SplitAnnexB returns the NAL units of an Annex B byte stream without their
// start codes. A 4-byte start code is a 3-byte one after a zero byte, and
// NAL units cannot end in 0x00, so trailing zeros are stripped; units left
// empty are dropped, as are bytes before the first start code. The units
// alias b.
func SplitAnnexB(b []byte) [][]byte {
	var nalus [][]byte
	eachNALU(b, func(nalu []byte) { nalus = append(nalus, nalu) })
	return nalus
}

// AppendAVCC appends the NAL units of the Annex B stream annexB to dst, each
// behind a 4-byte big-endian length, as MP4 samples carry them.
func AppendAVCC(dst, annexB []byte) []byte {
	eachNALU(annexB, func(nalu []byte) {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(nalu)))
		dst = append(dst, nalu...)
	})
	return dst
}

func eachNALU(b []byte, fn func([]byte)) {
	i := bytes.Index(b, startCode)
	if i < 0 {
		return
	}
	b = b[i+len(startCode):]
	for len(b) > 0 {
		end := bytes.Index(b, startCode)
		next := end + len(startCode)
		if end < 0 {
			end, next = len(b), len(b)
		}
		nalu := b[:end]
		for len(nalu) > 0 && nalu[len(nalu)-1] == 0 {
			nalu = nalu[:len(nalu)-1]
		}
		if len(nalu) > 0 {
			fn(nalu)
		}
		b = b[next:]
	}
}
