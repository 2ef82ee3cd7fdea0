package ingest

// This file is a minimal MPEG-TS demuxer (ISO/IEC 13818-1) for HLS
// segments: PAT, PMT and PES, enough to take H.264 and AAC elementary
// streams out of a segment. Segments come from pulled sources, so it
// bounds what it buffers and never trusts a length field.

import (
	"errors"
	"fmt"
)

// errTS marks bytes the demuxer refuses.
var errTS = errors.New("ingest: bad MPEG-TS")

const (
	tsPacketLen = 188
	tsSync      = 0x47
	// maxPESBytes bounds one buffered PES packet (a video access unit).
	maxPESBytes = 8 << 20
	// maxTSStreams bounds the elementary streams a PMT may declare.
	maxTSStreams = 16
)

// Stream types the demuxer hands on; others are ignored.
const (
	streamTypeAAC  = 0x0f // ADTS AAC
	streamTypeH264 = 0x1b
)

// pesPacket is one reassembled PES packet of a stream the demuxer keeps.
type pesPacket struct {
	streamType byte
	pid        uint16
	pts, dts   int64 // 33-bit 90 kHz values; dts equals pts when absent
	hasPTS     bool
	data       []byte // the elementary stream bytes
}

// tsDemuxer reassembles PES packets from 188-byte TS packets. It is not
// safe for concurrent use.
type tsDemuxer struct {
	pmtPID  int // -1 until the PAT names one
	streams map[uint16]*tsStream
	// skipped counts PES packets dropped as damaged (lost packets,
	// oversized or malformed headers).
	skipped int
}

type tsStream struct {
	streamType byte
	buf        []byte
	started    bool // buf holds a PES packet's start
	cc         int  // the last continuity counter; -1 for none
}

func newTSDemuxer() *tsDemuxer {
	return &tsDemuxer{pmtPID: -1, streams: map[uint16]*tsStream{}}
}

// demux feeds a whole segment (a multiple of 188 bytes; a short tail is
// an error) and calls emit for each complete PES packet, flushing the
// last ones at the end. emit may keep p.data.
func (d *tsDemuxer) demux(b []byte, emit func(pesPacket) error) error {
	if len(b) > 0 && b[0] != tsSync {
		return fmt.Errorf("%w: no sync byte at offset 0", errTS)
	}
	for off := 0; off < len(b); off += tsPacketLen {
		if len(b)-off < tsPacketLen {
			return fmt.Errorf("%w: %d trailing bytes at offset %d", errTS, len(b)-off, off)
		}
		if err := d.packet(b[off:off+tsPacketLen], emit); err != nil {
			return fmt.Errorf("offset %d: %w", off, err)
		}
	}
	return d.flush(emit)
}

// flush emits what each stream has buffered. Continuity counters start
// afresh: segmenters need not carry them from one segment to the next.
func (d *tsDemuxer) flush(emit func(pesPacket) error) error {
	for _, pid := range d.pids() {
		d.streams[pid].cc = -1
		if err := d.finish(pid, emit); err != nil {
			return err
		}
	}
	return nil
}

// pids returns the kept PIDs in order, so output does not depend on map
// order.
func (d *tsDemuxer) pids() []uint16 {
	out := make([]uint16, 0, len(d.streams))
	for pid := range d.streams {
		out = append(out, pid)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (d *tsDemuxer) packet(p []byte, emit func(pesPacket) error) error {
	if p[0] != tsSync {
		return fmt.Errorf("%w: lost sync", errTS)
	}
	if p[1]&0x80 != 0 { // transport_error_indicator
		return nil
	}
	pusi := p[1]&0x40 != 0
	pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
	afc := p[3] >> 4 & 0x03
	cc := int(p[3] & 0x0f)
	payload := p[4:]
	if afc&0x02 != 0 { // adaptation field
		n := int(payload[0])
		if n+1 > len(payload) {
			return fmt.Errorf("%w: adaptation field of %d bytes", errTS, n)
		}
		payload = payload[1+n:]
	}
	if afc&0x01 == 0 {
		return nil // no payload
	}
	switch {
	case pid == 0:
		if pusi {
			return d.pat(payload)
		}
		return nil
	case int(pid) == d.pmtPID:
		if pusi {
			return d.pmt(payload)
		}
		return nil
	}
	st, ok := d.streams[pid]
	if !ok {
		return nil
	}
	if st.cc >= 0 && cc != (st.cc+1)&0x0f && cc != st.cc {
		// A lost packet: the buffered PES is damaged.
		st.buf, st.started = st.buf[:0], false
		d.skipped++
	}
	duplicate := st.cc == cc && !pusi
	st.cc = cc
	if duplicate {
		return nil
	}
	if pusi {
		if err := d.finish(pid, emit); err != nil {
			return err
		}
		st.started = true
	}
	if !st.started {
		return nil // the middle of a PES whose start we did not see
	}
	if len(st.buf)+len(payload) > maxPESBytes {
		st.buf, st.started = st.buf[:0], false
		d.skipped++
		return nil
	}
	st.buf = append(st.buf, payload...)
	return nil
}

// psiSection returns the section that payload starts (after its
// pointer_field), checked against section_length. Sections that span
// packets are not supported: HLS segmenters write PAT and PMT in one.
func psiSection(payload []byte, tableID byte) ([]byte, error) {
	if len(payload) < 1 {
		return nil, fmt.Errorf("%w: empty PSI payload", errTS)
	}
	ptr := int(payload[0])
	if 1+ptr+3 > len(payload) {
		return nil, fmt.Errorf("%w: pointer field %d", errTS, ptr)
	}
	s := payload[1+ptr:]
	if s[0] != tableID {
		return nil, fmt.Errorf("%w: table id %#x, want %#x", errTS, s[0], tableID)
	}
	n := int(s[1]&0x0f)<<8 | int(s[2])
	if n < 9 || 3+n > len(s) {
		return nil, fmt.Errorf("%w: section length %d of %d bytes", errTS, n, len(s)-3)
	}
	// Drop the header fields up to the table's own data and the CRC.
	return s[3 : 3+n-4], nil
}

func (d *tsDemuxer) pat(payload []byte) error {
	s, err := psiSection(payload, 0x00)
	if err != nil {
		return fmt.Errorf("PAT: %w", err)
	}
	for e := s[5:]; len(e) >= 4; e = e[4:] {
		program := uint16(e[0])<<8 | uint16(e[1])
		pid := int(e[2]&0x1f)<<8 | int(e[3])
		if program != 0 { // 0 names the network PID
			d.pmtPID = pid
			return nil
		}
	}
	return nil
}

func (d *tsDemuxer) pmt(payload []byte) error {
	s, err := psiSection(payload, 0x02)
	if err != nil {
		return fmt.Errorf("PMT: %w", err)
	}
	if len(s) < 9 {
		return fmt.Errorf("%w: PMT of %d bytes", errTS, len(s))
	}
	infoLen := int(s[7]&0x0f)<<8 | int(s[8])
	if 9+infoLen > len(s) {
		return fmt.Errorf("%w: PMT program info of %d bytes", errTS, infoLen)
	}
	seen := map[uint16]bool{}
	for e := s[9+infoLen:]; len(e) >= 5; {
		typ := e[0]
		pid := uint16(e[1]&0x1f)<<8 | uint16(e[2])
		esLen := int(e[3]&0x0f)<<8 | int(e[4])
		if 5+esLen > len(e) {
			return fmt.Errorf("%w: PMT ES info of %d bytes", errTS, esLen)
		}
		e = e[5+esLen:]
		if typ != streamTypeH264 && typ != streamTypeAAC {
			continue
		}
		seen[pid] = true
		if st, ok := d.streams[pid]; ok && st.streamType == typ {
			continue
		}
		if len(d.streams) >= maxTSStreams {
			return fmt.Errorf("%w: more than %d streams", errTS, maxTSStreams)
		}
		d.streams[pid] = &tsStream{streamType: typ, cc: -1}
	}
	for pid := range d.streams {
		if !seen[pid] {
			delete(d.streams, pid)
		}
	}
	return nil
}

// finish emits the stream's buffered PES packet, if it has one.
func (d *tsDemuxer) finish(pid uint16, emit func(pesPacket) error) error {
	st := d.streams[pid]
	if st == nil || !st.started || len(st.buf) == 0 {
		return nil
	}
	buf := st.buf
	st.buf, st.started = nil, false
	pkt, err := parsePES(buf)
	if err != nil {
		d.skipped++
		return nil
	}
	pkt.streamType, pkt.pid = st.streamType, pid
	return emit(pkt)
}

// parsePES reads a PES header and returns the packet with its payload,
// which aliases b.
func parsePES(b []byte) (pesPacket, error) {
	if len(b) < 9 || b[0] != 0 || b[1] != 0 || b[2] != 1 {
		return pesPacket{}, fmt.Errorf("%w: no PES start code", errTS)
	}
	n := int(b[4])<<8 | int(b[5])
	hdrLen := int(b[8])
	if 9+hdrLen > len(b) {
		return pesPacket{}, fmt.Errorf("%w: PES header of %d bytes", errTS, hdrLen)
	}
	var p pesPacket
	flags := b[7] >> 6
	h := b[9 : 9+hdrLen]
	if flags&0x02 != 0 {
		if len(h) < 5 {
			return pesPacket{}, fmt.Errorf("%w: PES PTS truncated", errTS)
		}
		p.pts, p.hasPTS = readTimestamp(h), true
		p.dts = p.pts
		if flags == 0x03 {
			if len(h) < 10 {
				return pesPacket{}, fmt.Errorf("%w: PES DTS truncated", errTS)
			}
			p.dts = readTimestamp(h[5:])
		}
	}
	data := b[9+hdrLen:]
	if n != 0 {
		// PES_packet_length counts the bytes after itself.
		if end := n - 3 - hdrLen; end >= 0 && end < len(data) {
			data = data[:end]
		}
	}
	p.data = data
	return p, nil
}

// readTimestamp reads a 33-bit PTS or DTS from its 5-byte field.
func readTimestamp(b []byte) int64 {
	return int64(b[0]>>1&0x07)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}
