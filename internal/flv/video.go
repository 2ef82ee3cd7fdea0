package flv

import (
	"fmt"
	"strconv"
)

// VideoCodec identifies a video codec: a legacy FLV CodecID (0-15) or,
// for enhanced RTMP codecs with no legacy id, the FourCC as a big-endian
// integer.
type VideoCodec uint32

// Video codecs. Enhanced RTMP's avc1 and hvc1 map to CodecH264 and
// CodecHEVC, so a codec reads the same whichever header carried it.
const (
	CodecH263         VideoCodec = 2 // Sorenson H.263
	CodecScreenVideo  VideoCodec = 3
	CodecVP6          VideoCodec = 4
	CodecVP6Alpha     VideoCodec = 5
	CodecScreenVideo2 VideoCodec = 6
	CodecH264         VideoCodec = 7
	CodecHEVC         VideoCodec = 12 // the widespread non-Adobe extension
	CodecAV1          VideoCodec = 'a'<<24 | 'v'<<16 | '0'<<8 | '1'
	CodecVP9          VideoCodec = 'v'<<24 | 'p'<<16 | '0'<<8 | '9'
)

func (c VideoCodec) String() string {
	switch c {
	case CodecH263:
		return "H.263"
	case CodecScreenVideo, CodecScreenVideo2:
		return "ScreenVideo"
	case CodecVP6:
		return "VP6"
	case CodecVP6Alpha:
		return "VP6A"
	case CodecH264:
		return "H.264"
	case CodecHEVC:
		return "HEVC"
	case CodecAV1:
		return "AV1"
	case CodecVP9:
		return "VP9"
	}
	if s, ok := fourCCString(uint32(c)); ok && c > 15 {
		return s
	}
	return "video(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// Video frame types as FLV numbers them.
const (
	FrameKey          = 1
	FrameInter        = 2
	FrameDisposable   = 3
	FrameGeneratedKey = 4 // server-generated, for seeking
	FrameCommand      = 5 // video info / command frame, no picture
)

// VideoInfo is what a video tag body's header says about its payload.
type VideoInfo struct {
	Codec VideoCodec
	// FrameType is the raw frame type (FrameKey, FrameInter, ...).
	FrameType uint8
	// Keyframe marks a coded keyframe; sequence headers and
	// end-of-sequence markers are never Keyframe, although the wire
	// gives them the key frame type.
	Keyframe        bool
	SequenceHeader  bool
	EndOfSequence   bool
	Enhanced        bool  // the body used the enhanced-RTMP FourCC header
	CompositionTime int32 // ms, presentation minus decode time
	// Payload is the data after the header: length-prefixed NAL units for
	// H.264/HEVC frames, the decoder configuration record (avcC, hvcC,
	// av1C, vpcC) for a sequence header. It aliases the body.
	Payload []byte
}

// Enhanced RTMP video packet types.
const (
	exSequenceStart        = 0
	exCodedFrames          = 1
	exSequenceEnd          = 2
	exCodedFramesX         = 3
	exMetadata             = 4
	exMPEG2TSSequenceStart = 5
	exMultitrack           = 6
	exModEx                = 7
)

// ParseVideo parses the header of a video tag body (an RTMP video
// message), legacy or enhanced RTMP. Command frames, enhanced metadata
// and multitrack bodies are ErrUnsupported.
func ParseVideo(body []byte) (VideoInfo, error) {
	if len(body) < 1 {
		return VideoInfo{}, fmt.Errorf("flv: parse video: empty body: %w", ErrTruncated)
	}
	if body[0]&0x80 != 0 {
		return parseExVideo(body)
	}
	info := VideoInfo{FrameType: body[0] >> 4, Codec: VideoCodec(body[0] & 0x0f)}
	switch info.FrameType {
	case FrameKey, FrameInter, FrameDisposable, FrameGeneratedKey:
	case FrameCommand:
		return VideoInfo{}, fmt.Errorf("flv: parse video: command frame: %w", ErrUnsupported)
	default:
		return VideoInfo{}, fmt.Errorf("flv: parse video: frame type %d: %w", info.FrameType, ErrMalformed)
	}
	key := info.FrameType == FrameKey || info.FrameType == FrameGeneratedKey
	if info.Codec != CodecH264 && info.Codec != CodecHEVC {
		info.Keyframe = key
		info.Payload = body[1:]
		return info, nil
	}
	if len(body) < 5 {
		return VideoInfo{}, fmt.Errorf("flv: parse %s video: header of %d bytes: %w", info.Codec, len(body), ErrTruncated)
	}
	switch body[1] {
	case 0:
		info.SequenceHeader = true
	case 1:
		info.Keyframe = key
		info.CompositionTime = si24(body[2:5])
	case 2:
		info.EndOfSequence = true
	default:
		return VideoInfo{}, fmt.Errorf("flv: parse %s video: packet type %d: %w", info.Codec, body[1], ErrMalformed)
	}
	info.Payload = body[5:]
	return info, nil
}

func parseExVideo(body []byte) (VideoInfo, error) {
	info := VideoInfo{Enhanced: true, FrameType: body[0] >> 4 & 0x07}
	pos, pt, err := skipModEx(body, 1, body[0]&0x0f)
	if err != nil {
		return VideoInfo{}, fmt.Errorf("flv: parse video: %w", err)
	}
	if info.FrameType == FrameCommand && pt != exMetadata {
		return VideoInfo{}, fmt.Errorf("flv: parse video: command frame: %w", ErrUnsupported)
	}
	if pt == exMultitrack {
		return VideoInfo{}, fmt.Errorf("flv: parse video: multitrack: %w", ErrUnsupported)
	}
	if len(body) < pos+4 {
		return VideoInfo{}, fmt.Errorf("flv: parse video: FourCC: %w", ErrTruncated)
	}
	fcc := fourCC(string(body[pos : pos+4]))
	pos += 4
	switch fcc {
	case fourCC("avc1"):
		info.Codec = CodecH264
	case fourCC("hvc1"):
		info.Codec = CodecHEVC
	default:
		info.Codec = VideoCodec(fcc)
	}
	key := info.FrameType == FrameKey || info.FrameType == FrameGeneratedKey
	switch pt {
	case exSequenceStart:
		info.SequenceHeader = true
	case exCodedFrames:
		info.Keyframe = key
		if info.Codec == CodecH264 || info.Codec == CodecHEVC {
			if len(body) < pos+3 {
				return VideoInfo{}, fmt.Errorf("flv: parse %s video: composition time: %w", info.Codec, ErrTruncated)
			}
			info.CompositionTime = si24(body[pos:])
			pos += 3
		}
	case exCodedFramesX:
		info.Keyframe = key
	case exSequenceEnd:
		info.EndOfSequence = true
	case exMetadata, exMPEG2TSSequenceStart:
		return VideoInfo{}, fmt.Errorf("flv: parse %s video: packet type %d: %w", info.Codec, pt, ErrUnsupported)
	default:
		return VideoInfo{}, fmt.Errorf("flv: parse %s video: packet type %d: %w", info.Codec, pt, ErrMalformed)
	}
	if info.FrameType == 0 || info.FrameType > FrameGeneratedKey {
		return VideoInfo{}, fmt.Errorf("flv: parse %s video: frame type %d: %w", info.Codec, info.FrameType, ErrMalformed)
	}
	info.Payload = body[pos:]
	return info, nil
}

// skipModEx steps over enhanced RTMP v2 ModEx preludes (modifiers such as
// a nanosecond timestamp offset that this package does not use) and
// returns the position and packet type that follow them. Each round
// consumes at least two bytes, so it ends.
func skipModEx(b []byte, pos int, pt byte) (int, byte, error) {
	for pt == exModEx {
		if len(b) < pos+1 {
			return 0, 0, fmt.Errorf("ModEx size: %w", ErrTruncated)
		}
		size := int(b[pos]) + 1
		pos++
		if size == 256 {
			if len(b) < pos+2 {
				return 0, 0, fmt.Errorf("ModEx size: %w", ErrTruncated)
			}
			size = int(b[pos])<<8 | int(b[pos+1]) + 1
			pos += 2
		}
		if len(b) < pos+size+1 {
			return 0, 0, fmt.Errorf("ModEx data of %d bytes: %w", size, ErrTruncated)
		}
		pos += size
		pt = b[pos] & 0x0f
		pos++
	}
	return pos, pt, nil
}
