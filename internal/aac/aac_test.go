package aac

import (
	"bytes"
	"errors"
	"testing"
)

func TestADTS(t *testing.T) {
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
			hdr, asc, err := ADTS(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if hdr != tt.hdr || !bytes.Equal(asc, tt.asc) {
				t.Fatalf("ADTS = %d, %x; want %d, %x", hdr, asc, tt.hdr, tt.asc)
			}
		})
	}
}

func FuzzADTS(f *testing.F) {
	f.Add([]byte{0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x3F, 0xFC, 0xAA, 0xBB})
	f.Add([]byte{0xFF, 0xF0, 0x4C, 0x80, 0x01, 0x5F, 0xFC, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		hdr, asc, err := ADTS(b)
		if err != nil {
			return
		}
		if hdr != 7 && hdr != 9 || hdr > len(b) || len(asc) != 2 {
			t.Fatalf("ADTS(%x) = %d, %x", b, hdr, asc)
		}
	})
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Config
		err  error
	}{
		{"LC 44.1 kHz stereo", []byte{0x12, 0x10}, Config{ObjectType: 2, SampleRate: 44100, Channels: 2}, nil},
		{"LC 48 kHz stereo", []byte{0x11, 0x90}, Config{ObjectType: 2, SampleRate: 48000, Channels: 2}, nil},
		{"explicit rate", []byte{0x17, 0x80, 0x5d, 0xc0, 0x08}, Config{ObjectType: 2, SampleRate: 48000, Channels: 1}, nil},
		{"escaped object type", []byte{0xf8, 0x46, 0x20}, Config{ObjectType: 34, SampleRate: 48000, Channels: 1}, nil},
		{"7.1", []byte{0x11, 0xb8}, Config{ObjectType: 2, SampleRate: 48000, Channels: 8}, nil},
		{"HE-AAC explicit SBR, 24 kHz core, 48 kHz out", []byte{0x2b, 0x11, 0x88}, Config{ObjectType: 5, SampleRate: 48000, Channels: 2}, nil},
		{"empty", nil, Config{}, ErrTruncated},
		{"object type 0", []byte{0x01, 0x90}, Config{}, ErrInvalid},
		{"reserved rate index", []byte{0x16, 0x90}, Config{}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig(tt.in)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("ParseConfig(%x) = %+v, %v; want %+v, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte{0x12, 0x10})
	f.Add([]byte{0x2b, 0x11, 0x88})
	f.Add([]byte{0xf8, 0x46, 0x20})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err == nil && (c.SampleRate <= 0 || c.ObjectType <= 0) {
			t.Fatalf("ParseConfig(%x) = %+v without error", b, c)
		}
	})
}
