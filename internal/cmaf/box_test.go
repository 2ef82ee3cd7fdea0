package cmaf

import (
	"errors"
	"slices"
	"testing"
)

func TestReadBoxes(t *testing.T) {
	large := slices.Concat(u32(1), []byte("mdat"), u64(20), []byte("abcd"))
	uuid := slices.Concat(u32(8+16+2), []byte("uuid"), make([]byte, 16), []byte("xy"))
	tests := []struct {
		name    string
		in      []byte
		want    []Box
		wantErr error
	}{
		{name: "empty", in: nil, want: nil},
		{
			name: "two boxes",
			in:   slices.Concat(box("ftyp", []byte("isom")), box("free")),
			want: []Box{{Type: "ftyp", Offset: 0, Size: 12, HeaderSize: 8}, {Type: "free", Offset: 12, Size: 8, HeaderSize: 8}},
		},
		{
			name: "size 0 runs to end",
			in:   slices.Concat(box("styp"), u32(0), []byte("mdat"), []byte("payload")),
			want: []Box{{Type: "styp", Offset: 0, Size: 8, HeaderSize: 8}, {Type: "mdat", Offset: 8, Size: 15, HeaderSize: 8}},
		},
		{
			name: "largesize",
			in:   large,
			want: []Box{{Type: "mdat", Offset: 0, Size: 20, HeaderSize: 16}},
		},
		{
			name: "uuid extended type",
			in:   uuid,
			want: []Box{{Type: "uuid", Offset: 0, Size: 26, HeaderSize: 24}},
		},
		{name: "short header", in: []byte{0, 0, 0}, wantErr: ErrTruncated},
		{name: "size past end", in: slices.Concat(u32(100), []byte("moov")), wantErr: ErrTruncated},
		{name: "largesize past end", in: slices.Concat(u32(1), []byte("mdat"), u64(1<<40)), wantErr: ErrTruncated},
		{name: "largesize header cut", in: slices.Concat(u32(1), []byte("mdat"), u32(0)), wantErr: ErrTruncated},
		{name: "size below header", in: slices.Concat(u32(4), []byte("free")), wantErr: ErrMalformed},
		{name: "largesize below header", in: slices.Concat(u32(1), []byte("free"), u64(8)), wantErr: ErrMalformed},
		{name: "trailing garbage", in: slices.Concat(box("free"), []byte{1, 2}), wantErr: ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadBoxes(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadBoxes() error = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ReadBoxes() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
