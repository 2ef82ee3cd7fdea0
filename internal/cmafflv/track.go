// Package cmafflv turns CMAF renditions into FLV tags for HTTP-FLV
// viewers: an init segment gives the onMetaData script tag and the
// sequence headers, media segments give coded video frames (length-prefixed
// NAL units or OBUs, as the samples carry them) and raw AAC frames, which a
// Muxer puts on one monotonic millisecond timeline, interleaved by decode
// time.
//
// H.264 goes out as legacy FLV (CodecID 7); HEVC and AV1 as enhanced RTMP
// ('hvc1', 'av01'), which flv.js forks and FFmpeg 6.1+ read. Audio must be
// AAC.
//
// The parsers here read bytes from the object store: they must not panic,
// loop forever or allocate in proportion to a length field they have not
// checked against the bytes present.
package cmafflv

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/flv"
)

var (
	// ErrMalformed means an init or media segment does not hold what FLV
	// needs (a box missing or truncated, sample data outside its mdat).
	ErrMalformed = errors.New("cmafflv: malformed")
	// ErrUnsupportedCodec means the track's codec has no FLV mapping
	// here: video must be H.264, HEVC or AV1, audio AAC.
	ErrUnsupportedCodec = errors.New("cmafflv: unsupported codec")
)

// Track is one CMAF track, read from its init segment, as FLV carries it.
type Track struct {
	cmaf.Init
	// Video is set for a video track; AudioCodec is then unused.
	Video      bool
	VideoCodec flv.VideoCodec // CodecH264, CodecHEVC or CodecAV1
	AudioCodec flv.AudioCodec // CodecAAC
	// Config is the decoder configuration: the avcC, hvcC or av1C
	// payload, or the AAC AudioSpecificConfig.
	Config []byte

	// trex defaults, for fragments that leave a field out everywhere.
	defDuration, defSize, defFlags uint32
}

// ParseInit reads a single-track CMAF init segment (the first audio or
// video track, as cmaf.ParseInit picks it). Config is copied, so the
// Track does not hold on to init.
func ParseInit(init []byte) (*Track, error) {
	t, err := parseInit(init)
	if err != nil {
		return nil, fmt.Errorf("cmafflv: parse init segment: %w", err)
	}
	return t, nil
}

func parseInit(b []byte) (*Track, error) {
	in, err := cmaf.ParseInit(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	t := &Track{Init: *in, Video: in.Handler == "vide"}
	moov, err := child(b, "moov")
	if err != nil {
		return nil, err
	}
	trak, err := findTrak(moov, in.TrackID)
	if err != nil {
		return nil, err
	}
	stsd, err := path(trak, "mdia", "minf", "stbl", "stsd")
	if err != nil {
		return nil, err
	}
	if len(stsd) < 8 {
		return nil, fmt.Errorf("stsd: %w", ErrMalformed)
	}
	entry, err := child(stsd[8:], in.SampleEntry)
	if err != nil {
		return nil, err
	}
	if err := t.readConfig(entry); err != nil {
		return nil, err
	}
	mvex, err := child(moov, "mvex")
	if err != nil {
		return nil, err
	}
	if err := t.readTrex(mvex); err != nil {
		return nil, err
	}
	return t, nil
}

// Sample entry sizes before their child boxes (ISO/IEC 14496-12 12.1.3,
// 12.2.3), past the 8-byte box header that child strips.
const (
	visualEntry = 78
	audioEntry  = 28
)

func (t *Track) readConfig(entry []byte) error {
	var cfgBox string
	switch t.SampleEntry {
	case "avc1", "avc3":
		t.VideoCodec, cfgBox = flv.CodecH264, "avcC"
	case "hvc1", "hev1":
		t.VideoCodec, cfgBox = flv.CodecHEVC, "hvcC"
	case "av01":
		t.VideoCodec, cfgBox = flv.CodecAV1, "av1C"
	case "mp4a":
		return t.readAAC(entry)
	default:
		return fmt.Errorf("sample entry %q: %w", t.SampleEntry, ErrUnsupportedCodec)
	}
	if len(entry) < visualEntry {
		return fmt.Errorf("visual sample entry: %w", ErrMalformed)
	}
	cfg, err := child(entry[visualEntry:], cfgBox)
	if err != nil {
		return err
	}
	if len(cfg) == 0 {
		return fmt.Errorf("empty %s: %w", cfgBox, ErrMalformed)
	}
	if cfgBox == "avcC" {
		if _, err := flv.ParseAVCConfig(cfg); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	t.Config = append([]byte(nil), cfg...)
	return nil
}

func (t *Track) readAAC(entry []byte) error {
	if len(entry) < audioEntry {
		return fmt.Errorf("audio sample entry: %w", ErrMalformed)
	}
	rest := entry[audioEntry:]
	// QuickTime sound description versions 1 and 2 add fields.
	switch binary.BigEndian.Uint16(entry[8:]) {
	case 1:
		if len(rest) < 16 {
			return fmt.Errorf("sound description v1: %w", ErrMalformed)
		}
		rest = rest[16:]
	case 2:
		if len(rest) < 36 {
			return fmt.Errorf("sound description v2: %w", ErrMalformed)
		}
		rest = rest[36:]
	}
	esds, err := child(rest, "esds")
	if err != nil {
		return err
	}
	if len(esds) < 4 {
		return fmt.Errorf("esds: %w", ErrMalformed)
	}
	asc, err := audioSpecificConfig(esds[4:])
	if err != nil {
		return err
	}
	if _, err := flv.ParseAACConfig(asc); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	t.AudioCodec = flv.CodecAAC
	t.Config = append([]byte(nil), asc...)
	return nil
}

// audioSpecificConfig finds the AAC DecoderSpecificInfo in an
// ES_Descriptor (ISO/IEC 14496-1 7.2.6.5).
func audioSpecificConfig(b []byte) ([]byte, error) {
	tag, es, _, err := descriptor(b)
	if err != nil {
		return nil, err
	}
	if tag != 0x03 || len(es) < 3 {
		return nil, fmt.Errorf("esds: no ES_Descriptor: %w", ErrMalformed)
	}
	flags := es[2]
	skip := 3
	if flags&0x80 != 0 { // streamDependenceFlag
		skip += 2
	}
	if flags&0x40 != 0 { // URL_Flag
		if len(es) <= skip {
			return nil, fmt.Errorf("esds URL: %w", ErrMalformed)
		}
		skip += 1 + int(es[skip])
	}
	if flags&0x20 != 0 { // OCRstreamFlag
		skip += 2
	}
	if len(es) < skip {
		return nil, fmt.Errorf("esds: %w", ErrMalformed)
	}
	for es = es[skip:]; len(es) > 0; {
		tag, body, rest, err := descriptor(es)
		if err != nil {
			return nil, err
		}
		es = rest
		if tag != 0x04 { // DecoderConfigDescriptor
			continue
		}
		if len(body) < 13 {
			return nil, fmt.Errorf("esds DecoderConfigDescriptor: %w", ErrMalformed)
		}
		if oti := body[0]; oti != 0x40 {
			return nil, fmt.Errorf("esds object type %#x is not AAC: %w", oti, ErrUnsupportedCodec)
		}
		for sub := body[13:]; len(sub) > 0; {
			tag, dsi, rest, err := descriptor(sub)
			if err != nil {
				return nil, err
			}
			if tag == 0x05 {
				return dsi, nil
			}
			sub = rest
		}
		break
	}
	return nil, fmt.Errorf("esds has no AudioSpecificConfig: %w", ErrMalformed)
}

// descriptor reads one MPEG-4 descriptor: a tag and a size of up to four
// 7-bit groups.
func descriptor(b []byte) (tag byte, body, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, fmt.Errorf("descriptor header: %w", ErrMalformed)
	}
	size := 0
	i := 1
	for ; ; i++ {
		if i > 4 || i >= len(b) {
			return 0, nil, nil, fmt.Errorf("descriptor %#x size: %w", b[0], ErrMalformed)
		}
		size = size<<7 | int(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			break
		}
	}
	b, tag = b[i+1:], b[0]
	if size > len(b) {
		return 0, nil, nil, fmt.Errorf("descriptor %#x of %d bytes, %d left: %w", tag, size, len(b), ErrMalformed)
	}
	return tag, b[:size], b[size:], nil
}

// readTrex takes the track's fragment defaults from mvex.
func (t *Track) readTrex(mvex []byte) error {
	boxes, err := cmaf.ReadBoxes(mvex)
	if err != nil {
		return fmt.Errorf("%w: mvex: %w", ErrMalformed, err)
	}
	for _, bx := range boxes {
		p := payload(mvex, bx)
		// version/flags, track_ID, default sample description index,
		// duration, size, flags.
		if bx.Type != "trex" || len(p) < 24 || binary.BigEndian.Uint32(p[4:]) != t.TrackID {
			continue
		}
		t.defDuration = binary.BigEndian.Uint32(p[12:])
		t.defSize = binary.BigEndian.Uint32(p[16:])
		t.defFlags = binary.BigEndian.Uint32(p[20:])
		return nil
	}
	return fmt.Errorf("no trex for track %d: %w", t.TrackID, ErrMalformed)
}

// findTrak returns the trak whose tkhd names trackID.
func findTrak(moov []byte, trackID uint32) ([]byte, error) {
	boxes, err := cmaf.ReadBoxes(moov)
	if err != nil {
		return nil, fmt.Errorf("%w: moov: %w", ErrMalformed, err)
	}
	for _, bx := range boxes {
		if bx.Type != "trak" {
			continue
		}
		trak := payload(moov, bx)
		tkhd, err := child(trak, "tkhd")
		if err != nil {
			continue
		}
		off := 12 // version/flags, creation and modification times
		if len(tkhd) > 0 && tkhd[0] == 1 {
			off = 20
		}
		if len(tkhd) >= off+4 && binary.BigEndian.Uint32(tkhd[off:]) == trackID {
			return trak, nil
		}
	}
	return nil, fmt.Errorf("no trak for track %d: %w", trackID, ErrMalformed)
}

// child returns the payload of the first box of type typ in b.
func child(b []byte, typ string) ([]byte, error) {
	boxes, err := cmaf.ReadBoxes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: looking for %q: %w", ErrMalformed, typ, err)
	}
	for _, bx := range boxes {
		if bx.Type == typ {
			return payload(b, bx), nil
		}
	}
	return nil, fmt.Errorf("no %q box: %w", typ, ErrMalformed)
}

// path descends through nested boxes and returns the last one's payload.
func path(b []byte, types ...string) ([]byte, error) {
	for _, typ := range types {
		var err error
		if b, err = child(b, typ); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// payload returns the bytes of bx after its header; ReadBoxes checked
// that the box lies within b.
func payload(b []byte, bx cmaf.Box) []byte {
	return b[bx.Offset+int64(bx.HeaderSize) : bx.Offset+bx.Size]
}
