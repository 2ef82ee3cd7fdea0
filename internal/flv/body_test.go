package flv

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestParseVideo(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want VideoInfo
		err  error
	}{
		{"H.264 keyframe", []byte{0x17, 1, 0, 0, 0x43, 0, 0, 0, 1, 0x65},
			VideoInfo{Codec: CodecH264, FrameType: FrameKey, Keyframe: true, CompositionTime: 67, Payload: []byte{0, 0, 0, 1, 0x65}}, nil},
		{"H.264 sequence header", []byte{0x17, 0, 0, 0, 0, 1, 0x64},
			VideoInfo{Codec: CodecH264, FrameType: FrameKey, SequenceHeader: true, Payload: []byte{1, 0x64}}, nil},
		{"H.264 end of sequence", []byte{0x17, 2, 0, 0, 0},
			VideoInfo{Codec: CodecH264, FrameType: FrameKey, EndOfSequence: true, Payload: []byte{}}, nil},
		{"H.264 inter, negative composition time", []byte{0x27, 1, 0xff, 0xff, 0xfe, 9},
			VideoInfo{Codec: CodecH264, FrameType: FrameInter, CompositionTime: -2, Payload: []byte{9}}, nil},
		{"legacy HEVC id 12", []byte{0x1c, 1, 0, 0, 0, 7},
			VideoInfo{Codec: CodecHEVC, FrameType: FrameKey, Keyframe: true, Payload: []byte{7}}, nil},
		{"VP6 keyframe kept as is", []byte{0x14, 0, 1, 2},
			VideoInfo{Codec: CodecVP6, FrameType: FrameKey, Keyframe: true, Payload: []byte{0, 1, 2}}, nil},
		{"generated keyframe", []byte{0x47, 1, 0, 0, 0},
			VideoInfo{Codec: CodecH264, FrameType: FrameGeneratedKey, Keyframe: true, Payload: []byte{}}, nil},
		{"enhanced hvc1 sequence start", append([]byte{0x90}, "hvc1\x01\x02"...),
			VideoInfo{Codec: CodecHEVC, FrameType: FrameKey, SequenceHeader: true, Enhanced: true, Payload: []byte{1, 2}}, nil},
		{"enhanced hvc1 coded frames", append([]byte{0x91}, "hvc1\x00\x00\x21\x09"...),
			VideoInfo{Codec: CodecHEVC, FrameType: FrameKey, Keyframe: true, Enhanced: true, CompositionTime: 33, Payload: []byte{9}}, nil},
		{"enhanced av01 coded frames have no composition time", append([]byte{0xa1}, "av01\x12\x00"...),
			VideoInfo{Codec: CodecAV1, FrameType: FrameInter, Enhanced: true, Payload: []byte{0x12, 0}}, nil},
		{"enhanced avc1 coded frames X", append([]byte{0x93}, "avc1\x05"...),
			VideoInfo{Codec: CodecH264, FrameType: FrameKey, Keyframe: true, Enhanced: true, Payload: []byte{5}}, nil},
		{"enhanced sequence end", append([]byte{0x92}, "vp09"...),
			VideoInfo{Codec: CodecVP9, FrameType: FrameKey, EndOfSequence: true, Enhanced: true, Payload: []byte{}}, nil},
		{"enhanced unknown FourCC kept", append([]byte{0x93}, "xyz1"...),
			VideoInfo{Codec: VideoCodec(fourCC("xyz1")), FrameType: FrameKey, Keyframe: true, Enhanced: true, Payload: []byte{}}, nil},
		{"enhanced ModEx prelude", append([]byte{0x97, 2, 0, 0x0f, 0x42, 0x03}, "av01\x07"...),
			VideoInfo{Codec: CodecAV1, FrameType: FrameKey, Keyframe: true, Enhanced: true, Payload: []byte{7}}, nil},
		{"enhanced ModEx 16-bit size", append(append([]byte{0x97, 0xff, 0x01, 0x00}, make([]byte, 257)...), append([]byte{0x03}, "av01"...)...),
			VideoInfo{Codec: CodecAV1, FrameType: FrameKey, Keyframe: true, Enhanced: true, Payload: []byte{}}, nil},
		{"empty", nil, VideoInfo{}, ErrTruncated},
		{"H.264 short header", []byte{0x17, 1, 0}, VideoInfo{}, ErrTruncated},
		{"H.264 packet type 3", []byte{0x17, 3, 0, 0, 0}, VideoInfo{}, ErrMalformed},
		{"frame type 0", []byte{0x07, 1, 0, 0, 0}, VideoInfo{}, ErrMalformed},
		{"command frame", []byte{0x57, 0}, VideoInfo{}, ErrUnsupported},
		{"enhanced short FourCC", []byte{0x91, 'h', 'v'}, VideoInfo{}, ErrTruncated},
		{"enhanced short composition time", append([]byte{0x91}, "hvc1\x00"...), VideoInfo{}, ErrTruncated},
		{"enhanced multitrack", append([]byte{0x96}, "hvc1"...), VideoInfo{}, ErrUnsupported},
		{"enhanced metadata", append([]byte{0x94}, "hvc1\x02"...), VideoInfo{}, ErrUnsupported},
		{"enhanced command", []byte{0xd1, 0}, VideoInfo{}, ErrUnsupported},
		{"enhanced packet type 9", append([]byte{0x99}, "hvc1"...), VideoInfo{}, ErrMalformed},
		{"enhanced ModEx truncated", []byte{0x97, 5, 0, 0}, VideoInfo{}, ErrTruncated},
		{"enhanced ModEx no size", []byte{0x97}, VideoInfo{}, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVideo(tt.body)
			if !errors.Is(err, tt.err) || (tt.err != nil) != (err != nil) {
				t.Fatalf("ParseVideo() error = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseVideo() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseAudio(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want AudioInfo
		err  error
	}{
		{"AAC sequence header", []byte{0xaf, 0, 0x11, 0x90},
			AudioInfo{Codec: CodecAAC, SampleRate: 48000, Channels: 2, SampleBits: 16, SequenceHeader: true, Payload: []byte{0x11, 0x90}}, nil},
		{"AAC mono 8 kHz sequence header", []byte{0xaf, 0, 0x15, 0x88},
			AudioInfo{Codec: CodecAAC, SampleRate: 8000, Channels: 1, SampleBits: 16, SequenceHeader: true, Payload: []byte{0x15, 0x88}}, nil},
		{"AAC raw", []byte{0xaf, 1, 0x21},
			AudioInfo{Codec: CodecAAC, SampleRate: 44100, Channels: 2, SampleBits: 16, Payload: []byte{0x21}}, nil},
		{"MP3 22 kHz mono 8-bit", []byte{0x28, 0xff},
			AudioInfo{Codec: CodecMP3, SampleRate: 22050, Channels: 1, SampleBits: 8, Payload: []byte{0xff}}, nil},
		{"Nellymoser 8 kHz", []byte{0x52},
			AudioInfo{Codec: CodecNellymoser8k, SampleRate: 8000, Channels: 1, SampleBits: 16, Payload: []byte{}}, nil},
		{"Speex", []byte{0xb2, 1},
			AudioInfo{Codec: CodecSpeex, SampleRate: 16000, Channels: 1, SampleBits: 16, Payload: []byte{1}}, nil},
		{"G.711 mu-law", []byte{0x82, 1},
			AudioInfo{Codec: CodecG711MuLaw, SampleRate: 5512, Channels: 1, SampleBits: 16, Payload: []byte{1}}, nil},
		{"enhanced mp4a sequence start", append([]byte{0x90}, "mp4a\x11\x90"...),
			AudioInfo{Codec: CodecAAC, SampleRate: 48000, Channels: 2, SampleBits: 16, SequenceHeader: true, Enhanced: true, Payload: []byte{0x11, 0x90}}, nil},
		{"enhanced Opus coded frames", append([]byte{0x91}, "Opus\x01"...),
			AudioInfo{Codec: CodecOpus, Enhanced: true, Payload: []byte{1}}, nil},
		{"enhanced .mp3 with ModEx", append([]byte{0x97, 0, 9, 0x01}, ".mp3\x02"...),
			AudioInfo{Codec: CodecMP3, Enhanced: true, Payload: []byte{2}}, nil},
		{"enhanced sequence end", append([]byte{0x92}, "fLaC"...),
			AudioInfo{Codec: CodecFLAC, EndOfSequence: true, Enhanced: true, Payload: []byte{}}, nil},
		{"empty", nil, AudioInfo{}, ErrTruncated},
		{"AAC without packet type", []byte{0xaf}, AudioInfo{}, ErrTruncated},
		{"AAC packet type 2", []byte{0xaf, 2}, AudioInfo{}, ErrMalformed},
		{"AAC sequence header truncated", []byte{0xaf, 0, 0x11}, AudioInfo{}, ErrTruncated},
		{"AAC sequence header rate index 13", []byte{0xaf, 0, 0x16, 0x90}, AudioInfo{}, ErrMalformed},
		{"enhanced short FourCC", []byte{0x91, 'O'}, AudioInfo{}, ErrTruncated},
		{"enhanced multitrack", append([]byte{0x95}, "Opus"...), AudioInfo{}, ErrUnsupported},
		{"enhanced multichannel config", append([]byte{0x94}, "Opus"...), AudioInfo{}, ErrUnsupported},
		{"enhanced packet type 3", append([]byte{0x93}, "Opus"...), AudioInfo{}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAudio(tt.body)
			if !errors.Is(err, tt.err) || (tt.err != nil) != (err != nil) {
				t.Fatalf("ParseAudio() error = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseAudio() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseAACConfig(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want AACConfig
		err  error
	}{
		{"LC 44.1 kHz stereo", []byte{0x12, 0x10}, AACConfig{ObjectType: 2, SampleRate: 44100, Channels: 2}, nil},
		{"explicit rate", []byte{0x17, 0x80, 0x5d, 0xc0, 0x08}, AACConfig{ObjectType: 2, SampleRate: 48000, Channels: 1}, nil},
		{"escaped object type", []byte{0xf8, 0x46, 0x20}, AACConfig{ObjectType: 34, SampleRate: 48000, Channels: 1}, nil},
		{"7.1", []byte{0x11, 0xb8}, AACConfig{ObjectType: 2, SampleRate: 48000, Channels: 8}, nil},
		{"empty", nil, AACConfig{}, ErrTruncated},
		{"object type 0", []byte{0x01, 0x90}, AACConfig{}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAACConfig(tt.in)
			if !errors.Is(err, tt.err) || (tt.err != nil) != (err != nil) || got != tt.want {
				t.Errorf("ParseAACConfig(%x) = %+v, %v; want %+v, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestAVCConfig(t *testing.T) {
	sps := []byte{0x67, 0x64, 0x00, 0x1f, 0xac}
	pps := []byte{0x68, 0xee, 0x3c}
	record := cat([]byte{1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0, 5}, sps, []byte{1, 0, 3}, pps)
	withExt := cat(record, []byte{0xfd, 0xf8, 0xf8, 0})
	tests := []struct {
		name string
		in   []byte
		want *AVCConfig
		err  error
	}{
		{"one SPS and PPS", record, &AVCConfig{Profile: 0x64, Level: 0x1f, LengthSize: 4, SPS: [][]byte{sps}, PPS: [][]byte{pps}}, nil},
		{"high profile extension kept", withExt, &AVCConfig{Profile: 0x64, Level: 0x1f, LengthSize: 4, SPS: [][]byte{sps}, PPS: [][]byte{pps}, Ext: []byte{0xfd, 0xf8, 0xf8, 0}}, nil},
		{"no parameter sets", []byte{1, 66, 0, 30, 0xfd, 0xe0, 0}, &AVCConfig{Profile: 66, Level: 30, LengthSize: 2, SPS: [][]byte{}, PPS: [][]byte{}}, nil},
		{"short", record[:5], nil, ErrTruncated},
		{"version 0", cat([]byte{0}, record[1:]), nil, ErrMalformed},
		{"length size 3", cat(record[:4], []byte{0xfe}, record[5:]), nil, ErrMalformed},
		{"SPS past the end", record[:10], nil, ErrTruncated},
		{"SPS length past the end", record[:7], nil, ErrTruncated},
		{"no PPS count", record[:13], nil, ErrTruncated},
		{"PPS past the end", record[:len(record)-1], nil, ErrTruncated},
		{"31 SPS claimed, none sent", []byte{1, 66, 0, 30, 0xff, 0xff}, nil, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAVCConfig(tt.in)
			if !errors.Is(err, tt.err) || (tt.err != nil) != (err != nil) {
				t.Fatalf("ParseAVCConfig() error = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseAVCConfig() = %+v, want %+v", got, tt.want)
			}
			if got != nil && !bytes.Equal(got.Marshal(), tt.in) {
				t.Errorf("Marshal() = %x, want %x", got.Marshal(), tt.in)
			}
		})
	}
	t.Run("profile from SPS", func(t *testing.T) {
		c := &AVCConfig{LengthSize: 4, SPS: [][]byte{sps}, PPS: [][]byte{pps}}
		if got := c.Marshal(); !bytes.Equal(got, record) {
			t.Errorf("Marshal() = %x, want %x", got, record)
		}
	})
}
