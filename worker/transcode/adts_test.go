package transcode

import (
	"bytes"
	"testing"
)

func TestADTSHeader(t *testing.T) {
	// AAC-LC, 48 kHz, stereo, 7-byte header, frame length 7+2.
	good := []byte{0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x3F, 0xFC, 0xAA, 0xBB}
	tests := []struct {
		name    string
		in      []byte
		hdr     int
		asc     []byte
		wantErr bool
	}{
		{"lc 48k stereo", good, 7, []byte{0x11, 0x90}, false},
		{"with crc", append([]byte{0xFF, 0xF0, 0x4C, 0x80, 0x01, 0x5F, 0xFC}, make([]byte, 4)...), 9, []byte{0x11, 0x90}, false},
		{"not adts", []byte{0x21, 0x10, 0x04, 0x60, 0x8C, 0x1C, 0x00}, 0, nil, true},
		{"too short", good[:5], 0, nil, true},
		{"length past the end", []byte{0xFF, 0xF1, 0x4C, 0x80, 0x7F, 0xFF, 0xFC}, 0, nil, true},
		{"reserved frequency", []byte{0xFF, 0xF1, 0x7C, 0x80, 0x01, 0x3F, 0xFC, 0, 0}, 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr, asc, err := adtsHeader(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if hdr != tt.hdr || !bytes.Equal(asc, tt.asc) {
				t.Fatalf("adtsHeader = %d, %x; want %d, %x", hdr, asc, tt.hdr, tt.asc)
			}
		})
	}
}

func FuzzADTSHeader(f *testing.F) {
	f.Add([]byte{0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x3F, 0xFC, 0xAA, 0xBB})
	f.Add([]byte{0xFF, 0xF0, 0x4C, 0x80, 0x01, 0x5F, 0xFC, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		hdr, asc, err := adtsHeader(b)
		if err != nil {
			return
		}
		if hdr != 7 && hdr != 9 || hdr > len(b) || len(asc) != 2 {
			t.Fatalf("adtsHeader(%x) = %d, %x", b, hdr, asc)
		}
	})
}
