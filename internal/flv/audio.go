package flv

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/livegrid/livegrid/internal/aac"
)

// AudioCodec identifies an audio codec: a legacy FLV SoundFormat (0-15)
// or, for enhanced RTMP codecs with no legacy id, the FourCC as a
// big-endian integer.
type AudioCodec uint32

// Audio codecs. Enhanced RTMP's mp4a and .mp3 map to CodecAAC and
// CodecMP3.
const (
	CodecLPCM           AudioCodec = 0 // platform-endian linear PCM
	CodecADPCM          AudioCodec = 1
	CodecMP3            AudioCodec = 2
	CodecLPCMLE         AudioCodec = 3
	CodecNellymoser16k  AudioCodec = 4
	CodecNellymoser8k   AudioCodec = 5
	CodecNellymoser     AudioCodec = 6
	CodecG711ALaw       AudioCodec = 7
	CodecG711MuLaw      AudioCodec = 8
	CodecAAC            AudioCodec = 10
	CodecSpeex          AudioCodec = 11
	CodecMP38k          AudioCodec = 14
	CodecDeviceSpecific AudioCodec = 15
	CodecOpus           AudioCodec = 'O'<<24 | 'p'<<16 | 'u'<<8 | 's'
	CodecFLAC           AudioCodec = 'f'<<24 | 'L'<<16 | 'a'<<8 | 'C'
	CodecAC3            AudioCodec = 'a'<<24 | 'c'<<16 | '-'<<8 | '3'
	CodecEAC3           AudioCodec = 'e'<<24 | 'c'<<16 | '-'<<8 | '3'
)

func (c AudioCodec) String() string {
	switch c {
	case CodecLPCM, CodecLPCMLE:
		return "LPCM"
	case CodecADPCM:
		return "ADPCM"
	case CodecMP3, CodecMP38k:
		return "MP3"
	case CodecNellymoser, CodecNellymoser8k, CodecNellymoser16k:
		return "Nellymoser"
	case CodecG711ALaw:
		return "G.711 A-law"
	case CodecG711MuLaw:
		return "G.711 mu-law"
	case CodecAAC:
		return "AAC"
	case CodecSpeex:
		return "Speex"
	case CodecOpus:
		return "Opus"
	case CodecFLAC:
		return "FLAC"
	case CodecAC3:
		return "AC-3"
	case CodecEAC3:
		return "E-AC-3"
	}
	if s, ok := fourCCString(uint32(c)); ok && c > 15 {
		return s
	}
	return "audio(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// AudioInfo is what an audio tag body's header says about its payload.
type AudioInfo struct {
	Codec AudioCodec
	// SampleRate, Channels and SampleBits come from the legacy header
	// byte, which AAC always sets to 44.1 kHz stereo; for an AAC sequence
	// header they come from the AudioSpecificConfig instead. Enhanced
	// bodies carry none (zero) except that AAC case.
	SampleRate, Channels, SampleBits int
	SequenceHeader                   bool
	EndOfSequence                    bool // enhanced RTMP only
	Enhanced                         bool
	// Payload is the data after the header: a raw AAC frame, or the
	// AudioSpecificConfig for an AAC sequence header. It aliases the body.
	Payload []byte
}

// Enhanced RTMP audio packet types.
const (
	exAudioSequenceStart      = 0
	exAudioCodedFrames        = 1
	exAudioSequenceEnd        = 2
	exAudioMultichannelConfig = 4
	exAudioMultitrack         = 5
	exAudioModEx              = 7
)

var legacyRates = [4]int{5512, 11025, 22050, 44100}

// ParseAudio parses the header of an audio tag body (an RTMP audio
// message), legacy or enhanced RTMP (SoundFormat 9).
func ParseAudio(body []byte) (AudioInfo, error) {
	if len(body) < 1 {
		return AudioInfo{}, fmt.Errorf("flv: parse audio: empty body: %w", ErrTruncated)
	}
	format := AudioCodec(body[0] >> 4)
	if format == 9 {
		return parseExAudio(body)
	}
	info := AudioInfo{
		Codec:      format,
		SampleRate: legacyRates[body[0]>>2&0x03],
		SampleBits: 8,
		Channels:   1,
		Payload:    body[1:],
	}
	if body[0]&0x02 != 0 {
		info.SampleBits = 16
	}
	if body[0]&0x01 != 0 {
		info.Channels = 2
	}
	switch format {
	case CodecNellymoser8k, CodecMP38k:
		info.SampleRate = 8000
	case CodecNellymoser16k, CodecSpeex:
		info.SampleRate = 16000
	case CodecAAC:
		if len(body) < 2 {
			return AudioInfo{}, fmt.Errorf("flv: parse AAC audio: packet type: %w", ErrTruncated)
		}
		info.Payload = body[2:]
		switch body[1] {
		case 0:
			info.SequenceHeader = true
			if err := info.fromAAC(); err != nil {
				return AudioInfo{}, err
			}
		case 1:
		default:
			return AudioInfo{}, fmt.Errorf("flv: parse AAC audio: packet type %d: %w", body[1], ErrMalformed)
		}
	}
	return info, nil
}

func parseExAudio(body []byte) (AudioInfo, error) {
	info := AudioInfo{Enhanced: true}
	pos, pt, err := skipModEx(body, 1, body[0]&0x0f)
	if err != nil {
		return AudioInfo{}, fmt.Errorf("flv: parse audio: %w", err)
	}
	if pt == exAudioMultitrack {
		return AudioInfo{}, fmt.Errorf("flv: parse audio: multitrack: %w", ErrUnsupported)
	}
	if len(body) < pos+4 {
		return AudioInfo{}, fmt.Errorf("flv: parse audio: FourCC: %w", ErrTruncated)
	}
	fcc := fourCC(string(body[pos : pos+4]))
	pos += 4
	switch fcc {
	case fourCC("mp4a"):
		info.Codec = CodecAAC
	case fourCC(".mp3"):
		info.Codec = CodecMP3
	default:
		info.Codec = AudioCodec(fcc)
	}
	info.Payload = body[pos:]
	switch pt {
	case exAudioSequenceStart:
		info.SequenceHeader = true
		if info.Codec == CodecAAC {
			if err := info.fromAAC(); err != nil {
				return AudioInfo{}, err
			}
		}
	case exAudioCodedFrames:
	case exAudioSequenceEnd:
		info.EndOfSequence = true
	case exAudioMultichannelConfig:
		return AudioInfo{}, fmt.Errorf("flv: parse %s audio: multichannel config: %w", info.Codec, ErrUnsupported)
	default:
		return AudioInfo{}, fmt.Errorf("flv: parse %s audio: packet type %d: %w", info.Codec, pt, ErrMalformed)
	}
	return info, nil
}

func (info *AudioInfo) fromAAC() error {
	c, err := ParseAACConfig(info.Payload)
	if err != nil {
		return fmt.Errorf("flv: parse AAC sequence header: %w", err)
	}
	info.SampleRate, info.Channels, info.SampleBits = c.SampleRate, c.Channels, 16
	return nil
}

// AACConfig is the part of an MPEG-4 AudioSpecificConfig that describes
// the stream.
type AACConfig = aac.Config

// ParseAACConfig reads the object type, sample rate and channels from an
// AudioSpecificConfig.
func ParseAACConfig(b []byte) (AACConfig, error) {
	c, err := aac.ParseConfig(b)
	switch {
	case errors.Is(err, aac.ErrTruncated):
		return AACConfig{}, fmt.Errorf("flv: parse %v: %w", err, ErrTruncated)
	case err != nil:
		return AACConfig{}, fmt.Errorf("flv: parse %v: %w", err, ErrMalformed)
	}
	return c, nil
}
