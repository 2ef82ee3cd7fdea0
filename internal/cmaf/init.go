package cmaf

import (
	"encoding/binary"
	"fmt"
)

// Init describes a single-track init segment.
type Init struct {
	TrackID     uint32
	Timescale   uint32
	Handler     string // "vide" or "soun"
	SampleEntry string // "avc1", "avc3", "hvc1", "hev1", "av01" or "mp4a"
	Codec       string // RFC 6381, e.g. avc1.64001f, hvc1.1.6.L93.B0, mp4a.40.2, av01.0.08M.08
	Width       int    // video only, from the sample entry
	Height      int
	SampleRate  int // audio only
	Channels    int
}

// ParseInit reads an init segment (ftyp + moov). It describes the first
// audio or video trak and requires a trex for it in moov/mvex, since
// without one the track cannot carry media segments.
func ParseInit(b []byte) (*Init, error) {
	in, err := parseInit(b)
	if err != nil {
		return nil, fmt.Errorf("cmaf: parse init segment: %w", err)
	}
	return in, nil
}

func parseInit(b []byte) (*Init, error) {
	moov, err := mustChild(b, "moov")
	if err != nil {
		return nil, err
	}
	var in *Init
	err = walkBoxes(moov, func(bx Box) error {
		if bx.Type != "trak" {
			return nil
		}
		tr, err := parseTrak(payload(moov, bx))
		if err != nil {
			return err
		}
		if tr != nil {
			in = tr
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return nil, err
	}
	if in == nil {
		return nil, fmt.Errorf("no audio or video trak: %w", ErrNoTrack)
	}
	if err := findTrex(moov, in.TrackID); err != nil {
		return nil, err
	}
	return in, nil
}

func findTrex(moov []byte, trackID uint32) error {
	mvex, found, err := child(moov, "mvex")
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("no mvex: %w", ErrNotFragmented)
	}
	found = false
	err = walkBoxes(mvex, func(bx Box) error {
		if bx.Type != "trex" {
			return nil
		}
		_, _, rest, err := fullBox(payload(mvex, bx), "trex")
		if err != nil {
			return err
		}
		if len(rest) >= 4 && binary.BigEndian.Uint32(rest) == trackID {
			found = true
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return err
	}
	if !found {
		return fmt.Errorf("no trex for track %d: %w", trackID, ErrNotFragmented)
	}
	return nil
}

// parseTrak returns nil, nil for a trak that is neither audio nor video
// (subtitles, timed metadata), so the caller can look further.
func parseTrak(trak []byte) (*Init, error) {
	mdia, err := mustChild(trak, "mdia")
	if err != nil {
		return nil, err
	}
	hdlr, err := mustChild(mdia, "hdlr")
	if err != nil {
		return nil, err
	}
	_, _, rest, err := fullBox(hdlr, "hdlr")
	if err != nil {
		return nil, err
	}
	if len(rest) < 8 {
		return nil, fmt.Errorf("hdlr handler_type: %w", ErrTruncated)
	}
	in := &Init{Handler: string(rest[4:8])}
	if in.Handler != "vide" && in.Handler != "soun" {
		return nil, nil
	}

	if in.TrackID, err = parseTkhd(trak); err != nil {
		return nil, err
	}
	if in.Timescale, err = parseMdhd(mdia); err != nil {
		return nil, err
	}
	stsd, err := findPath(mdia, "minf", "stbl", "stsd")
	if err != nil {
		return nil, err
	}
	_, _, entries, err := fullBox(stsd, "stsd")
	if err != nil {
		return nil, err
	}
	if len(entries) < 4 {
		return nil, fmt.Errorf("stsd entry_count: %w", ErrTruncated)
	}
	boxes, err := readBoxes(entries[4:])
	if err != nil {
		return nil, fmt.Errorf("stsd: %w", err)
	}
	if len(boxes) == 0 {
		return nil, fmt.Errorf("stsd has no sample entry: %w", ErrMalformed)
	}
	entry := boxes[0]
	in.SampleEntry = entry.Type
	if err := parseSampleEntry(in, payload(entries[4:], entry)); err != nil {
		return nil, fmt.Errorf("sample entry %q: %w", entry.Type, err)
	}
	return in, nil
}

func parseTkhd(trak []byte) (uint32, error) { return afterTimes(trak, "tkhd", "track_ID") }

func parseMdhd(mdia []byte) (uint32, error) {
	ts, err := afterTimes(mdia, "mdhd", "timescale")
	if err == nil && ts == 0 {
		return 0, fmt.Errorf("mdhd timescale 0: %w", ErrMalformed)
	}
	return ts, err
}

// afterTimes reads the 32-bit field that follows the creation and
// modification times of a tkhd or mdhd (4 or 8 bytes each by version).
func afterTimes(parent []byte, box, field string) (uint32, error) {
	p, err := mustChild(parent, box)
	if err != nil {
		return 0, err
	}
	version, _, rest, err := fullBox(p, box)
	if err != nil {
		return 0, err
	}
	off := 8
	if version == 1 {
		off = 16
	}
	if len(rest) < off+4 {
		return 0, fmt.Errorf("%s %s: %w", box, field, ErrTruncated)
	}
	return binary.BigEndian.Uint32(rest[off:]), nil
}

// findPath descends through the named boxes and returns the last payload.
func findPath(b []byte, path ...string) ([]byte, error) {
	for _, typ := range path {
		p, err := mustChild(b, typ)
		if err != nil {
			return nil, err
		}
		b = p
	}
	return b, nil
}

// Sample entry layouts (ISO/IEC 14496-12 8.5.2, 12.1.3, 12.2.3): all start
// with 6 reserved bytes and a data_reference_index.
const (
	visualEntrySize = 8 + 70 // up to and including pre_defined after depth
	audioEntrySize  = 8 + 20 // up to and including samplerate
)

func parseSampleEntry(in *Init, p []byte) error {
	switch in.SampleEntry {
	case "avc1", "avc3", "hvc1", "hev1", "av01":
		if in.Handler != "vide" {
			return fmt.Errorf("video entry in %q track: %w", in.Handler, ErrUnsupportedCodec)
		}
		if len(p) < visualEntrySize {
			return fmt.Errorf("visual sample entry needs %d bytes, have %d: %w", visualEntrySize, len(p), ErrTruncated)
		}
		in.Width = int(binary.BigEndian.Uint16(p[24:]))
		in.Height = int(binary.BigEndian.Uint16(p[26:]))
		return parseVideoConfig(in, p[visualEntrySize:])
	case "mp4a":
		if in.Handler != "soun" {
			return fmt.Errorf("audio entry in %q track: %w", in.Handler, ErrUnsupportedCodec)
		}
		if len(p) < audioEntrySize {
			return fmt.Errorf("audio sample entry needs %d bytes, have %d: %w", audioEntrySize, len(p), ErrTruncated)
		}
		in.Channels = int(binary.BigEndian.Uint16(p[16:]))
		in.SampleRate = int(binary.BigEndian.Uint32(p[24:]) >> 16)
		rest := p[audioEntrySize:]
		// QuickTime sound description versions 1 and 2 append fields
		// before the child boxes.
		switch binary.BigEndian.Uint16(p[8:]) {
		case 1:
			if len(rest) < 16 {
				return fmt.Errorf("sound description v1: %w", ErrTruncated)
			}
			rest = rest[16:]
		case 2:
			if len(rest) < 36 {
				return fmt.Errorf("sound description v2: %w", ErrTruncated)
			}
			rest = rest[36:]
		}
		return parseAudioConfig(in, rest)
	}
	return ErrUnsupportedCodec
}

func parseVideoConfig(in *Init, children []byte) error {
	var typ string
	switch in.SampleEntry {
	case "avc1", "avc3":
		typ = "avcC"
	case "hvc1", "hev1":
		typ = "hvcC"
	case "av01":
		typ = "av1C"
	}
	cfg, err := mustChild(children, typ)
	if err != nil {
		return err
	}
	switch typ {
	case "avcC":
		if len(cfg) < 4 {
			return fmt.Errorf("avcC: %w", ErrTruncated)
		}
		in.Codec = fmt.Sprintf("%s.%02x%02x%02x", in.SampleEntry, cfg[1], cfg[2], cfg[3])
	case "hvcC":
		in.Codec, err = hevcCodecString(in.SampleEntry, cfg)
	case "av1C":
		in.Codec, err = av1CodecString(cfg)
	}
	return err
}

func parseAudioConfig(in *Init, children []byte) error {
	esds, err := mustChild(children, "esds")
	if err != nil {
		return err
	}
	_, _, rest, err := fullBox(esds, "esds")
	if err != nil {
		return err
	}
	oti, asc, err := parseESDescriptor(rest)
	if err != nil {
		return fmt.Errorf("esds: %w", err)
	}
	if oti != objectTypeAAC {
		// MP3 and friends are named by the object type alone.
		in.Codec = fmt.Sprintf("mp4a.%02X", oti)
		return nil
	}
	cfg, err := parseASC(asc)
	if err != nil {
		return fmt.Errorf("esds: %w", err)
	}
	in.Codec = fmt.Sprintf("mp4a.40.%d", cfg.ObjectType)
	// MP4 muxers write the template channelcount 2 even for mono, so the
	// ASC decides channels. The 16.16 samplerate cannot hold rates above
	// 65535 Hz and may be 0; otherwise it is the output rate, which the
	// ASC lacks under implicit SBR signalling.
	if cfg.Channels > 0 {
		in.Channels = cfg.Channels
	}
	if in.SampleRate == 0 {
		in.SampleRate = cfg.SampleRate
	}
	return nil
}
