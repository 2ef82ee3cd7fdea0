package ingest

// This file maps MPEG-TS elementary streams to FLV tags: H.264 access
// units in Annex B become AVC NALU tags with 4-byte length prefixes and
// an avcC sequence header built from the in-band SPS and PPS; ADTS AAC
// frames become raw AAC tags with an AudioSpecificConfig sequence header.

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/livegrid/livegrid/internal/aac"
	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/flv"
)

// H.264 NAL unit types the mapping looks at.
const (
	naluIDR = 5
	naluSPS = 7
	naluPPS = 8
	naluAUD = 9
)

// aacTagHeader is the FLV audio tag byte for AAC: SoundFormat 10 with the
// 44.1 kHz, 16-bit, stereo flags FLV requires for AAC whatever the
// stream's real parameters (the AudioSpecificConfig carries those).
const aacTagHeader = 0xaf

// tsToFLV turns one source's PES packets into FLV tags. It remembers the
// parameter sets and the AudioSpecificConfig, and sends a sequence header
// before the first frame and whenever they change. It is not safe for
// concurrent use.
type tsToFLV struct {
	sps, pps []byte
	asc      []byte
	videoHdr bool   // a video sequence header was sent
	keySeen  bool   // a keyframe was sent; inter frames before it are dropped
	skipped  int    // frames dropped as undecodable
	rate     int    // the AAC sample rate of asc
	sentHdr  []byte // the last video sequence header sent
}

// video maps one H.264 access unit. dts and pts are on the 90 kHz clock,
// already rebased so that they are not negative.
func (m *tsToFLV) video(au []byte, dts, pts int64) []flv.Tag {
	var (
		key         bool
		sps, pps    []byte
		frame       = make([]byte, 5, len(au)+16)
		naluWritten bool
	)
	for _, nalu := range cmaf.SplitAnnexB(au) {
		switch nalu[0] & 0x1f {
		case naluSPS:
			if sps == nil {
				sps = nalu
			}
			continue
		case naluPPS:
			if pps == nil {
				pps = nalu
			}
			continue
		case naluAUD:
			continue
		case naluIDR:
			key = true
		}
		frame = binary.BigEndian.AppendUint32(frame, uint32(len(nalu)))
		frame = append(frame, nalu...)
		naluWritten = true
	}
	ms := ticksToMS(dts)
	var tags []flv.Tag
	if len(sps) >= 4 && !bytes.Equal(sps, m.sps) {
		m.sps = bytes.Clone(sps)
	}
	if pps != nil && !bytes.Equal(pps, m.pps) {
		m.pps = bytes.Clone(pps)
	}
	if m.sps != nil && m.pps != nil && (sps != nil || pps != nil || !m.videoHdr) {
		// Encoders repeat the parameter sets before every keyframe: only
		// a change makes a new sequence header.
		if hdr := m.avcHeader(); !bytes.Equal(hdr, m.sentHdr) {
			tags = append(tags, flv.Tag{Type: flv.TagVideo, Timestamp: ms, Data: hdr})
			m.sentHdr, m.videoHdr = hdr, true
		}
	}
	if !naluWritten {
		return tags
	}
	if !m.videoHdr || (!m.keySeen && !key) {
		m.skipped++
		return tags
	}
	m.keySeen = m.keySeen || key
	frameType := byte(flv.FrameInter)
	if key {
		frameType = flv.FrameKey
	}
	cts := min(max((pts-dts)/90, -1<<23), 1<<23-1)
	frame[0] = frameType<<4 | byte(flv.CodecH264)
	frame[1] = 1 // AVC NALU
	frame[2], frame[3], frame[4] = byte(cts>>16), byte(cts>>8), byte(cts)
	return append(tags, flv.Tag{Type: flv.TagVideo, Timestamp: ms, Data: frame})
}

// avcHeader is the AVC sequence header tag body for the current
// parameter sets.
func (m *tsToFLV) avcHeader() []byte {
	rec := (&flv.AVCConfig{LengthSize: 4, SPS: [][]byte{m.sps}, PPS: [][]byte{m.pps}}).Marshal()
	return append([]byte{flv.FrameKey<<4 | byte(flv.CodecH264), 0, 0, 0, 0}, rec...)
}

// audio maps one PES packet of ADTS AAC frames. pts is on the 90 kHz
// clock, rebased; frames after the first are spaced by 1024 samples.
func (m *tsToFLV) audio(pes []byte, pts int64) []flv.Tag {
	var tags []flv.Tag
	for i := 0; len(pes) > 0; i++ {
		hdrLen, asc, err := aac.ADTS(pes)
		if err != nil {
			m.skipped++
			break
		}
		frameLen := int(pes[3]&0x03)<<11 | int(pes[4])<<3 | int(pes[5])>>5
		raw := pes[hdrLen:frameLen]
		pes = pes[frameLen:]
		if !bytes.Equal(asc, m.asc) {
			c, err := aac.ParseConfig(asc)
			if err != nil {
				m.skipped++
				continue
			}
			m.asc, m.rate = asc, c.SampleRate
			tags = append(tags, flv.Tag{Type: flv.TagAudio, Timestamp: ticksToMS(pts), Data: append([]byte{aacTagHeader, 0}, asc...)})
		}
		if len(raw) == 0 {
			continue
		}
		at := pts + int64(i)*1024*90000/int64(m.rate)
		body := make([]byte, 2+len(raw))
		body[0], body[1] = aacTagHeader, 1
		copy(body[2:], raw)
		tags = append(tags, flv.Tag{Type: flv.TagAudio, Timestamp: ticksToMS(at), Data: body})
	}
	return tags
}

// ticksToMS converts a rebased 90 kHz time to FLV milliseconds; FLV
// timestamps wrap at 2^32 ms.
func ticksToMS(t int64) uint32 {
	if t < 0 {
		return 0
	}
	return uint32(t / 90)
}

// tsClock unwraps 33-bit 90 kHz timestamps into a continuous int64 line.
type tsClock struct {
	set  bool
	last int64
}

const tsWrap = int64(1) << 33

// unwrap returns v (33 bits) moved by a multiple of 2^33 to lie nearest
// the previous value.
func (c *tsClock) unwrap(v int64) int64 {
	v &= tsWrap - 1
	if !c.set {
		c.set, c.last = true, v
		return v
	}
	d := (v - c.last) & (tsWrap - 1)
	if d >= tsWrap/2 {
		d -= tsWrap
	}
	c.last += d
	return c.last
}

// ptsOffset returns pts - dts of a packet as a signed 33-bit difference.
func ptsOffset(pts, dts int64) int64 {
	d := (pts - dts) & (tsWrap - 1)
	if d >= tsWrap/2 {
		d -= tsWrap
	}
	return d
}

// errNoMedia says a segment held no H.264 or AAC stream.
var errNoMedia = fmt.Errorf("%w: no H.264 or AAC stream", errTS)
