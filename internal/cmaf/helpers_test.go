package cmaf

import (
	"encoding/binary"
	"slices"
)

// Builders for hand-made boxes in tests.

func box(typ string, parts ...[]byte) []byte {
	body := slices.Concat(parts...)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	b = append(b, typ...)
	return append(b, body...)
}

func fullbox(typ string, version byte, flags uint32, parts ...[]byte) []byte {
	head := binary.BigEndian.AppendUint32(nil, uint32(version)<<24|flags)
	return box(typ, append([][]byte{head}, parts...)...)
}

func u32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
