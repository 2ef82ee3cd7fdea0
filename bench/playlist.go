package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// This file reads HLS playlists as the fan-out and latency suites' players
// need them: the variants of a multivariant playlist and the segments of a
// live media playlist. It reads what an edge or origin sends, so it takes
// untrusted bytes: it never panics and keeps only what it was given.

// ErrPlaylist means a body is not an HLS playlist of the kind asked for.
var ErrPlaylist = errors.New("bench: bad playlist")

// Variant is one EXT-X-STREAM-INF of a multivariant playlist.
type Variant struct {
	URI        string // as written: relative to the playlist
	Name       string // the rendition: the URI's folder ("360p/index.m3u8" is 360p)
	Bandwidth  int64  // BANDWIDTH, bits per second
	Resolution string // RESOLUTION, like 640x360
	Codecs     string
	Audio      string // AUDIO group id; "" for none
}

// MediaRendition is one EXT-X-MEDIA entry, such as an audio rendition.
type MediaRendition struct {
	Type, GroupID, Name, URI string
	Default                  bool
}

// MasterPlaylist is a multivariant playlist.
type MasterPlaylist struct {
	Variants []Variant
	Media    []MediaRendition
}

// AudioFor returns the URI of the audio rendition a variant plays with:
// the DEFAULT=YES one of its group, or the group's first; "" if none.
func (m *MasterPlaylist) AudioFor(v Variant) string {
	uri := ""
	for _, r := range m.Media {
		if r.Type != "AUDIO" || r.GroupID != v.Audio || v.Audio == "" || r.URI == "" {
			continue
		}
		if r.Default {
			return r.URI
		}
		if uri == "" {
			uri = r.URI
		}
	}
	return uri
}

// PlaylistSegment is one media segment of a media playlist.
type PlaylistSegment struct {
	Seq           uint64  // media sequence number
	URI           string  // as written
	Duration      float64 // EXTINF, seconds
	Discontinuity bool    // EXT-X-DISCONTINUITY before it
	Map           string  // URI of the EXT-X-MAP in effect; "" for none
}

// MediaPlaylist is a media playlist.
type MediaPlaylist struct {
	TargetDuration float64 // EXT-X-TARGETDURATION, seconds
	MediaSequence  uint64
	Ended          bool // EXT-X-ENDLIST
	Segments       []PlaylistSegment
}

// ParseMasterPlaylist reads a multivariant playlist.
func ParseMasterPlaylist(b []byte) (*MasterPlaylist, error) {
	lines, err := playlistLines(b)
	if err != nil {
		return nil, err
	}
	m := &MasterPlaylist{}
	var pending *Variant
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			a := parseAttrs(strings.TrimPrefix(line, "#EXT-X-STREAM-INF:"))
			bw, _ := strconv.ParseInt(a["BANDWIDTH"], 10, 64)
			pending = &Variant{Bandwidth: bw, Resolution: a["RESOLUTION"], Codecs: a["CODECS"], Audio: a["AUDIO"]}
		case strings.HasPrefix(line, "#EXT-X-MEDIA:"):
			a := parseAttrs(strings.TrimPrefix(line, "#EXT-X-MEDIA:"))
			m.Media = append(m.Media, MediaRendition{Type: a["TYPE"], GroupID: a["GROUP-ID"], Name: a["NAME"], URI: a["URI"], Default: a["DEFAULT"] == "YES"})
		case strings.HasPrefix(line, "#"):
		case pending != nil:
			pending.URI = line
			pending.Name = renditionName(line)
			m.Variants = append(m.Variants, *pending)
			pending = nil
		}
	}
	if len(m.Variants) == 0 {
		return nil, fmt.Errorf("%w: no EXT-X-STREAM-INF variant", ErrPlaylist)
	}
	return m, nil
}

// ParseMediaPlaylist reads a media playlist.
func ParseMediaPlaylist(b []byte) (*MediaPlaylist, error) {
	lines, err := playlistLines(b)
	if err != nil {
		return nil, err
	}
	p := &MediaPlaylist{}
	var cur PlaylistSegment
	haveInf := false
	mapURI := ""
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			v, err := strconv.ParseFloat(strings.TrimPrefix(line, "#EXT-X-TARGETDURATION:"), 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("%w: %q", ErrPlaylist, line)
			}
			p.TargetDuration = v
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			v, err := strconv.ParseUint(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: %q", ErrPlaylist, line)
			}
			p.MediaSequence = v
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			mapURI = parseAttrs(strings.TrimPrefix(line, "#EXT-X-MAP:"))["URI"]
		case line == "#EXT-X-DISCONTINUITY":
			cur.Discontinuity = true
		case line == "#EXT-X-ENDLIST":
			p.Ended = true
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			d, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("%w: %q", ErrPlaylist, line)
			}
			cur.Duration, haveInf = d, true
		case strings.HasPrefix(line, "#"):
		default:
			if !haveInf {
				return nil, fmt.Errorf("%w: segment %q has no EXTINF", ErrPlaylist, line)
			}
			cur.URI, cur.Map = line, mapURI
			cur.Seq = p.MediaSequence + uint64(len(p.Segments))
			p.Segments = append(p.Segments, cur)
			cur, haveInf = PlaylistSegment{}, false
		}
	}
	if p.TargetDuration == 0 && len(p.Segments) > 0 {
		return nil, fmt.Errorf("%w: no EXT-X-TARGETDURATION", ErrPlaylist)
	}
	return p, nil
}

// playlistLines checks the #EXTM3U tag and returns the non-empty lines,
// trimmed.
func playlistLines(b []byte) ([]string, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPlaylist, err)
	}
	if len(lines) == 0 || lines[0] != "#EXTM3U" {
		return nil, fmt.Errorf("%w: no #EXTM3U", ErrPlaylist)
	}
	return lines, nil
}

// parseAttrs reads an attribute list: KEY=value,KEY="quoted, value".
func parseAttrs(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		k = strings.TrimSpace(k)
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				v, rest = rest[1:], ""
			} else {
				v, rest = rest[1:1+end], rest[2+end:]
			}
			_, rest, _ = strings.Cut(rest, ",")
		} else {
			v, rest, _ = strings.Cut(rest, ",")
		}
		out[k] = strings.TrimSpace(v)
		s = rest
	}
	return out
}

// renditionName names a variant by its media playlist's folder, which is
// how livegrid lays renditions out; a flat URI gives its file name.
func renditionName(uri string) string {
	u, _, _ := strings.Cut(uri, "?")
	if dir := path.Dir(u); dir != "." && dir != "/" {
		return path.Base(dir)
	}
	return strings.TrimSuffix(path.Base(u), path.Ext(u))
}
