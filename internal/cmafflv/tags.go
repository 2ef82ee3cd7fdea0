package cmafflv

import "github.com/livegrid/livegrid/internal/flv"

// FLV tag body headers.
const (
	aacHeader   = 0xaf // SoundFormat 10, 44 kHz, 16-bit, stereo: what every AAC tag says
	exHeader    = 0x80 // enhanced RTMP IsExHeader bit
	avcSeqStart = 0    // AVCPacketType and enhanced PacketType SequenceStart
	avcFrames   = 1    // AVCPacketType NALU, enhanced CodedFrames
)

// fourCC is the enhanced RTMP FourCC of an enhanced codec.
func (t *Track) fourCC() string {
	if t.VideoCodec == flv.CodecHEVC {
		return "hvc1"
	}
	return "av01"
}

// SequenceHeader returns the body of the track's sequence header tag: the
// AVC sequence header, the enhanced SequenceStart, or the AAC
// AudioSpecificConfig.
func (t *Track) SequenceHeader() []byte {
	if !t.Video {
		return append([]byte{aacHeader, avcSeqStart}, t.Config...)
	}
	if t.VideoCodec == flv.CodecH264 {
		return append([]byte{flv.FrameKey<<4 | byte(flv.CodecH264), avcSeqStart, 0, 0, 0}, t.Config...)
	}
	b := append([]byte{exHeader | flv.FrameKey<<4 | avcSeqStart}, t.fourCC()...)
	return append(b, t.Config...)
}

// frame returns the body of a coded frame's tag; cts is the composition
// time in ms (presentation minus decode time).
func (t *Track) frame(data []byte, key bool, cts int32) []byte {
	if !t.Video {
		b := make([]byte, 0, 2+len(data))
		return append(append(b, aacHeader, avcFrames), data...)
	}
	ft := byte(flv.FrameInter)
	if key {
		ft = flv.FrameKey
	}
	c := uint32(cts) & 0xffffff // SI24
	var b []byte
	switch t.VideoCodec {
	case flv.CodecH264:
		b = make([]byte, 0, 5+len(data))
		b = append(b, ft<<4|byte(flv.CodecH264), avcFrames, byte(c>>16), byte(c>>8), byte(c))
	case flv.CodecHEVC:
		b = make([]byte, 0, 8+len(data))
		b = append(b, exHeader|ft<<4|avcFrames)
		b = append(b, t.fourCC()...)
		b = append(b, byte(c>>16), byte(c>>8), byte(c))
	default: // AV1 frames carry no composition time: pts is dts
		b = make([]byte, 0, 5+len(data))
		b = append(b, exHeader|ft<<4|avcFrames)
		b = append(b, t.fourCC()...)
	}
	return append(b, data...)
}
