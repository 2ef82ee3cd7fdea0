package cmaf

import (
	"bytes"
	"slices"
	"testing"
)

func TestAnnexB(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want [][]byte
	}{
		{name: "empty", in: nil, want: nil},
		{name: "no start code", in: []byte{0x67, 0x64, 0x00}, want: nil},
		{name: "start code only", in: []byte{0, 0, 0, 1}, want: nil},
		{
			name: "4-byte start codes",
			in:   []byte{0, 0, 0, 1, 0x67, 0xaa, 0, 0, 0, 1, 0x68, 0xbb},
			want: [][]byte{{0x67, 0xaa}, {0x68, 0xbb}},
		},
		{
			name: "3-byte start codes",
			in:   []byte{0, 0, 1, 0x65, 0x01, 0x02, 0, 0, 1, 0x41},
			want: [][]byte{{0x65, 0x01, 0x02}, {0x41}},
		},
		{
			name: "mixed, with trailing zeros",
			in:   []byte{0, 0, 0, 1, 0x67, 0x10, 0, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65, 0x88, 0, 0},
			want: [][]byte{{0x67, 0x10}, {0x68}, {0x65, 0x88}},
		},
		{
			name: "zero-length units dropped",
			in:   []byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0x65, 0x01},
			want: [][]byte{{0x65, 0x01}},
		},
		{
			name: "bytes before first start code ignored",
			in:   []byte{0xff, 0x12, 0, 0, 1, 0x09, 0xf0},
			want: [][]byte{{0x09, 0xf0}},
		},
		{
			name: "emulation prevention kept",
			in:   []byte{0, 0, 1, 0x06, 0, 0, 3, 0, 0x80},
			want: [][]byte{{0x06, 0, 0, 3, 0, 0x80}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitAnnexB(tt.in)
			if !slices.EqualFunc(got, tt.want, bytes.Equal) {
				t.Errorf("SplitAnnexB() = %x, want %x", got, tt.want)
			}
			want := []byte("dst")
			for _, n := range tt.want {
				want = append(want, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
				want = append(want, n...)
			}
			if got := AppendAVCC([]byte("dst"), tt.in); !bytes.Equal(got, want) {
				t.Errorf("AppendAVCC() = %x, want %x", got, want)
			}
		})
	}
}
