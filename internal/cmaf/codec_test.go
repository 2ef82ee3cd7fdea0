package cmaf

import (
	"errors"
	"testing"
)

func TestAVCCodecString(t *testing.T) {
	tests := []struct {
		name string
		sps  []byte
		want string
	}{
		{name: "high 3.1", sps: []byte{0x67, 0x64, 0x00, 0x1f, 0xac}, want: "avc1.64001f"},
		{name: "constrained baseline 3.0", sps: []byte{0x67, 0x42, 0xc0, 0x1e}, want: "avc1.42c01e"},
		{name: "nal_ref_idc 0", sps: []byte{0x07, 0x4d, 0x40, 0x28}, want: "avc1.4d4028"},
		{name: "PPS is not an SPS", sps: []byte{0x68, 0xee, 0x3c, 0x80}, want: ""},
		{name: "too short", sps: []byte{0x67, 0x64, 0x00}, want: ""},
		{name: "empty", sps: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AVCCodecString(tt.sps); got != tt.want {
				t.Errorf("AVCCodecString() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAACCodecString(t *testing.T) {
	tests := []struct {
		name           string
		asc            []byte
		want           string
		rate, channels int
	}{
		{name: "LC 48k stereo", asc: []byte{0x11, 0x90}, want: "mp4a.40.2", rate: 48000, channels: 2},
		{name: "LC 44.1k mono", asc: []byte{0x12, 0x08}, want: "mp4a.40.2", rate: 44100, channels: 1},
		{name: "LC 7.1", asc: []byte{0x11, 0xb8}, want: "mp4a.40.2", rate: 48000, channels: 8},
		{name: "HE-AAC explicit SBR", asc: []byte{0x2b, 0x11, 0x88}, want: "mp4a.40.5", rate: 48000, channels: 2},
		{name: "HE-AACv2 explicit PS", asc: []byte{0xeb, 0x09, 0x88}, want: "mp4a.40.29", rate: 48000, channels: 2},
		{name: "escaped object type (USAC)", asc: []byte{0xf9, 0x46, 0x40}, want: "mp4a.40.42", rate: 48000, channels: 2},
		{name: "explicit frequency", asc: []byte{0x17, 0x80, 0x6b, 0x6c, 0x10}, want: "mp4a.40.2", rate: 55000, channels: 2},
		{name: "object type 0", asc: []byte{0x01, 0x90}, want: ""},
		{name: "reserved frequency index", asc: []byte{0x16, 0x90}, want: ""},
		{name: "truncated", asc: []byte{0x11}, want: ""},
		{name: "empty", asc: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AACCodecString(tt.asc); got != tt.want {
				t.Errorf("AACCodecString() = %q, want %q", got, tt.want)
			}
			if tt.want == "" {
				return
			}
			cfg, err := parseASC(tt.asc)
			if err != nil {
				t.Fatalf("parseASC() error = %v", err)
			}
			if cfg.SampleRate != tt.rate || cfg.Channels != tt.channels {
				t.Errorf("rate, channels = %d, %d; want %d, %d", cfg.SampleRate, cfg.Channels, tt.rate, tt.channels)
			}
		})
	}
}

func TestHEVCCodecString(t *testing.T) {
	tests := []struct {
		name    string
		entry   string
		hvcC    []byte
		want    string
		wantErr error
	}{
		{
			name: "main 3.1", entry: "hvc1",
			hvcC: []byte{1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93},
			want: "hvc1.1.6.L93.B0",
		},
		{
			name: "main10 4.0", entry: "hvc1",
			hvcC: []byte{1, 0x02, 0x20, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 120},
			want: "hvc1.2.4.L120.90",
		},
		{
			name: "profile space, high tier, inner zero constraint bytes", entry: "hev1",
			hvcC: []byte{1, 0x40 | 0x20 | 4, 0x08, 0, 0, 0, 0x98, 0, 0, 0, 0, 0x01, 153},
			want: "hev1.A4.10.H153.98.0.0.0.0.1",
		},
		{
			name: "no compatibility or constraint flags", entry: "hvc1",
			hvcC: []byte{1, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 30},
			want: "hvc1.1.0.L30",
		},
		{name: "truncated", entry: "hvc1", hvcC: []byte{1, 1, 0x60}, wantErr: ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hevcCodecString(tt.entry, tt.hvcC)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("hevcCodecString() error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("hevcCodecString() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAV1CodecString(t *testing.T) {
	tests := []struct {
		name    string
		av1C    []byte
		want    string
		wantErr error
	}{
		{name: "main 4.0 8-bit", av1C: []byte{0x81, 0x08, 0x0c}, want: "av01.0.08M.08"},
		{name: "high 5.1 high tier 10-bit", av1C: []byte{0x81, 0x20 | 13, 0xc0}, want: "av01.1.13H.10"},
		{name: "professional 12-bit", av1C: []byte{0x81, 0x40 | 5, 0x60}, want: "av01.2.05M.12"},
		{name: "twelve_bit ignored outside profile 2", av1C: []byte{0x81, 0x00, 0x60}, want: "av01.0.00M.10"},
		{name: "bad marker", av1C: []byte{0x01, 0x08, 0x0c}, wantErr: ErrUnsupportedCodec},
		{name: "truncated", av1C: []byte{0x81}, wantErr: ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := av1CodecString(tt.av1C)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("av1CodecString() error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("av1CodecString() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseESDescriptor(t *testing.T) {
	// DecoderConfigDescriptor body without DecoderSpecificInfo.
	dcd := func(oti byte) []byte { return append([]byte{oti, 0x15}, make([]byte, 11)...) }
	tests := []struct {
		name    string
		in      []byte
		oti     byte
		dsi     []byte
		wantErr error
	}{
		{
			name: "ffmpeg style 4-byte lengths",
			in: append(append([]byte{0x03, 0x80, 0x80, 0x80, 0x22, 0, 1, 0,
				0x04, 0x80, 0x80, 0x80, 0x14}, dcd(0x40)...),
				0x05, 0x80, 0x80, 0x80, 0x02, 0x11, 0x90, 0x06, 0x80, 0x80, 0x80, 0x01, 0x02),
			oti: 0x40, dsi: []byte{0x11, 0x90},
		},
		{
			name: "dependence, URL and OCR fields skipped",
			in:   append(append([]byte{0x03, 27, 0, 1, 0xe0, 0, 2, 2, 'a', 'b', 0, 3, 0x04, 15}, dcd(0x40)...), 0x05, 0),
			oti:  0x40, dsi: []byte{},
		},
		{
			name: "MP3 without specific info",
			in:   append([]byte{0x03, 18, 0, 1, 0, 0x04, 13}, dcd(0x6b)...),
			oti:  0x6b,
		},
		{name: "not an ES_Descriptor", in: []byte{0x04, 0}, wantErr: ErrMalformed},
		{name: "no decoder config", in: []byte{0x03, 5, 0, 1, 0, 0x06, 0}, wantErr: ErrMalformed},
		{name: "length past end", in: []byte{0x03, 40, 0, 1, 0}, wantErr: ErrTruncated},
		{name: "length over four bytes", in: []byte{0x03, 0x80, 0x80, 0x80, 0x80, 0x01}, wantErr: ErrMalformed},
		{name: "short decoder config", in: []byte{0x03, 7, 0, 1, 0, 0x04, 2, 0x40, 0x15}, wantErr: ErrTruncated},
		{name: "URL past end", in: []byte{0x03, 4, 0, 1, 0x40, 9}, wantErr: ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oti, dsi, err := parseESDescriptor(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("parseESDescriptor() error = %v, want %v", err, tt.wantErr)
			}
			if oti != tt.oti || string(dsi) != string(tt.dsi) || (dsi == nil) != (tt.dsi == nil) {
				t.Errorf("parseESDescriptor() = %#x, %x; want %#x, %x", oti, dsi, tt.oti, tt.dsi)
			}
		})
	}
}
