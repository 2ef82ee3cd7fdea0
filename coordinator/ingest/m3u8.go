package ingest

// This file parses HLS playlists (RFC 8216) as far as a puller needs
// them: a master playlist's variants, and a media playlist's segments
// with their durations, discontinuities, byte ranges, keys and maps.
// Playlists come from pulled sources, so the parser bounds what it keeps.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// errPlaylist marks a playlist the parser refuses.
var errPlaylist = errors.New("ingest: bad HLS playlist")

// Bounds on what one playlist may hold.
const (
	maxPlaylistLines    = 100_000
	maxPlaylistSegments = 20_000
	maxPlaylistVariants = 1_000
)

// playlist is a parsed master or media playlist.
type playlist struct {
	master   bool
	variants []variant // master only

	// Media playlists only.
	targetDuration time.Duration
	mediaSequence  uint64
	discSequence   uint64
	ended          bool   // EXT-X-ENDLIST
	playlistType   string // EVENT, VOD or empty
	segments       []mediaSegment
}

// variant is one EXT-X-STREAM-INF entry of a master playlist.
type variant struct {
	uri        string
	bandwidth  int64
	codecs     string
	resolution string
	audio      string // the AUDIO group it uses, if any
}

// mediaSegment is one segment of a media playlist.
type mediaSegment struct {
	uri           string
	seq           uint64
	duration      time.Duration
	discontinuity bool // EXT-X-DISCONTINUITY before it
	// byteRange is the segment's part of uri when hasRange is set.
	rangeOffset, rangeLength int64
	hasRange                 bool
	keyMethod                string // EXT-X-KEY METHOD in force; "" or NONE for clear segments
	mapURI                   string // EXT-X-MAP URI in force (fMP4); "" for MPEG-TS
}

// parsePlaylist parses a master or media playlist.
func parsePlaylist(b []byte) (*playlist, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a BOM some servers add
	lines := strings.Split(string(b), "\n")
	if len(lines) > maxPlaylistLines {
		return nil, fmt.Errorf("%w: %d lines, limit %d", errPlaylist, len(lines), maxPlaylistLines)
	}
	if strings.TrimSpace(lines[0]) != "#EXTM3U" {
		return nil, fmt.Errorf("%w: first line is not #EXTM3U", errPlaylist)
	}
	p := &playlist{}
	var (
		pendingStream *variant // EXT-X-STREAM-INF waiting for its URI line
		cur           mediaSegment
		haveInf       bool
		keyMethod     string
		mapURI        string
		lastRangeEnd  int64 // where an EXT-X-BYTERANGE without offset starts
		lastRangeURI  string
		seqSet        bool
		media         bool // a tag only media playlists have was seen
	)
	for i, raw := range lines[1:] {
		line := strings.TrimSpace(raw)
		lineNo := i + 2
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			// A URI line.
			switch {
			case pendingStream != nil:
				pendingStream.uri = line
				if len(p.variants) >= maxPlaylistVariants {
					return nil, fmt.Errorf("%w: more than %d variants", errPlaylist, maxPlaylistVariants)
				}
				p.variants = append(p.variants, *pendingStream)
				pendingStream = nil
			case haveInf:
				if len(p.segments) >= maxPlaylistSegments {
					return nil, fmt.Errorf("%w: more than %d segments", errPlaylist, maxPlaylistSegments)
				}
				cur.uri = line
				cur.seq = p.mediaSequence + uint64(len(p.segments))
				cur.keyMethod = keyMethod
				cur.mapURI = mapURI
				if cur.hasRange {
					if cur.rangeOffset < 0 { // continues the previous range of the same URI
						if lastRangeURI != line {
							return nil, fmt.Errorf("%w: line %d: EXT-X-BYTERANGE without offset after another resource", errPlaylist, lineNo)
						}
						cur.rangeOffset = lastRangeEnd
					}
					lastRangeEnd, lastRangeURI = cur.rangeOffset+cur.rangeLength, line
				}
				p.segments = append(p.segments, cur)
				cur = mediaSegment{}
				haveInf = false
			default:
				return nil, fmt.Errorf("%w: line %d: URI without EXTINF or EXT-X-STREAM-INF", errPlaylist, lineNo)
			}
			continue
		}
		tag, value, _ := strings.Cut(line, ":")
		var err error
		switch tag {
		case "#EXT-X-STREAM-INF":
			attrs, aerr := parseAttributes(value)
			if aerr != nil {
				return nil, fmt.Errorf("%w: line %d: EXT-X-STREAM-INF: %w", errPlaylist, lineNo, aerr)
			}
			v := &variant{codecs: attrs["CODECS"], resolution: attrs["RESOLUTION"], audio: attrs["AUDIO"]}
			bw, ok := attrs["BANDWIDTH"]
			if !ok {
				return nil, fmt.Errorf("%w: line %d: EXT-X-STREAM-INF without BANDWIDTH", errPlaylist, lineNo)
			}
			if v.bandwidth, err = strconv.ParseInt(bw, 10, 64); err != nil || v.bandwidth < 0 {
				return nil, fmt.Errorf("%w: line %d: BANDWIDTH %q", errPlaylist, lineNo, bw)
			}
			pendingStream = v
			p.master = true
		case "#EXTINF":
			durText, _, _ := strings.Cut(value, ",")
			d, perr := strconv.ParseFloat(strings.TrimSpace(durText), 64)
			if perr != nil || d < 0 || d > 3600 || math.IsNaN(d) {
				return nil, fmt.Errorf("%w: line %d: EXTINF duration %q", errPlaylist, lineNo, durText)
			}
			cur.duration = time.Duration(math.Round(d * float64(time.Second)))
			haveInf, media = true, true
		case "#EXT-X-TARGETDURATION":
			n, perr := strconv.ParseUint(value, 10, 32)
			if perr != nil || n > 3600 {
				return nil, fmt.Errorf("%w: line %d: EXT-X-TARGETDURATION %q", errPlaylist, lineNo, value)
			}
			p.targetDuration = time.Duration(n) * time.Second
			media = true
		case "#EXT-X-MEDIA-SEQUENCE":
			if len(p.segments) > 0 || seqSet {
				return nil, fmt.Errorf("%w: line %d: EXT-X-MEDIA-SEQUENCE after the first segment", errPlaylist, lineNo)
			}
			if p.mediaSequence, err = strconv.ParseUint(value, 10, 63); err != nil {
				return nil, fmt.Errorf("%w: line %d: EXT-X-MEDIA-SEQUENCE %q", errPlaylist, lineNo, value)
			}
			seqSet, media = true, true
		case "#EXT-X-DISCONTINUITY-SEQUENCE":
			if p.discSequence, err = strconv.ParseUint(value, 10, 63); err != nil {
				return nil, fmt.Errorf("%w: line %d: EXT-X-DISCONTINUITY-SEQUENCE %q", errPlaylist, lineNo, value)
			}
			media = true
		case "#EXT-X-DISCONTINUITY":
			cur.discontinuity, media = true, true
		case "#EXT-X-ENDLIST":
			p.ended, media = true, true
		case "#EXT-X-PLAYLIST-TYPE":
			p.playlistType = value
			media = true
		case "#EXT-X-BYTERANGE":
			n, o, ok := strings.Cut(value, "@")
			length, perr := strconv.ParseInt(n, 10, 64)
			if perr != nil || length <= 0 {
				return nil, fmt.Errorf("%w: line %d: EXT-X-BYTERANGE %q", errPlaylist, lineNo, value)
			}
			offset := int64(-1)
			if ok {
				if offset, perr = strconv.ParseInt(o, 10, 64); perr != nil || offset < 0 || offset > math.MaxInt64-length {
					return nil, fmt.Errorf("%w: line %d: EXT-X-BYTERANGE %q", errPlaylist, lineNo, value)
				}
			} else if lastRangeEnd > math.MaxInt64-length {
				return nil, fmt.Errorf("%w: line %d: EXT-X-BYTERANGE %q", errPlaylist, lineNo, value)
			}
			cur.rangeOffset, cur.rangeLength, cur.hasRange = offset, length, true
			media = true
		case "#EXT-X-KEY":
			attrs, aerr := parseAttributes(value)
			if aerr != nil {
				return nil, fmt.Errorf("%w: line %d: EXT-X-KEY: %w", errPlaylist, lineNo, aerr)
			}
			keyMethod = attrs["METHOD"]
			if keyMethod == "" {
				return nil, fmt.Errorf("%w: line %d: EXT-X-KEY without METHOD", errPlaylist, lineNo)
			}
		case "#EXT-X-MAP":
			attrs, aerr := parseAttributes(value)
			if aerr != nil {
				return nil, fmt.Errorf("%w: line %d: EXT-X-MAP: %w", errPlaylist, lineNo, aerr)
			}
			if mapURI = attrs["URI"]; mapURI == "" {
				return nil, fmt.Errorf("%w: line %d: EXT-X-MAP without URI", errPlaylist, lineNo)
			}
		}
	}
	if p.master && media {
		return nil, fmt.Errorf("%w: both master and media playlist tags", errPlaylist)
	}
	if p.master && len(p.variants) == 0 {
		return nil, fmt.Errorf("%w: EXT-X-STREAM-INF without a URI", errPlaylist)
	}
	if !p.master && p.targetDuration == 0 && len(p.segments) > 0 {
		return nil, fmt.Errorf("%w: media playlist without EXT-X-TARGETDURATION", errPlaylist)
	}
	return p, nil
}

// parseAttributes parses an attribute list: KEY=VALUE pairs separated by
// commas, where a value is a quoted string (which may hold commas) or a
// bare token. Quotes are removed.
func parseAttributes(s string) (map[string]string, error) {
	attrs := map[string]string{}
	for s != "" {
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("attribute %q without a value", s)
		}
		key = strings.TrimSpace(key)
		if key == "" {
			return nil, errors.New("attribute without a name")
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("attribute %s: unterminated quoted string", key)
			}
			val, rest = rest[1:1+end], rest[2+end:]
			rest = strings.TrimLeft(rest, " ")
			if rest != "" && rest[0] != ',' {
				return nil, fmt.Errorf("attribute %s: text after the quoted string", key)
			}
		} else {
			val, rest, _ = strings.Cut(rest, ",")
			rest = "," + rest
			val = strings.TrimSpace(val)
		}
		attrs[key] = val
		s = strings.TrimPrefix(rest, ",")
	}
	return attrs, nil
}

// bestVariant returns the variant with the highest bandwidth; among
// equals, the first listed.
func (p *playlist) bestVariant() (variant, bool) {
	if len(p.variants) == 0 {
		return variant{}, false
	}
	best := p.variants[0]
	for _, v := range p.variants[1:] {
		if v.bandwidth > best.bandwidth {
			best = v
		}
	}
	return best, true
}
