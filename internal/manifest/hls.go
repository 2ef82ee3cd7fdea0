package manifest

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// hlsVersion is 7: EXT-X-MAP in a media playlist without I-frames needs 6.
const hlsVersion = 7

// audioGroup is the GROUP-ID that every video variant points at.
const audioGroup = "audio"

// HLSMaster renders the multivariant playlist. mediaURI gives each
// rendition's media playlist URI (e.g. "720p/index.m3u8"); nil means
// Name+"/index.m3u8". Video renditions are listed in input order (give them
// by bandwidth, highest first) and all share one audio group whose peak and
// average bitrates are added to theirs. Without video renditions every audio
// rendition becomes an audio-only variant.
func HLSMaster(p *Presentation, mediaURI func(r *Rendition) string) []byte {
	if mediaURI == nil {
		mediaURI = func(r *Rendition) string { return r.Name + "/index.m3u8" }
	}
	var videos, audios []*Rendition
	for i := range p.Renditions {
		switch r := &p.Renditions[i]; r.Kind {
		case Video:
			videos = append(videos, r)
		case Audio:
			audios = append(audios, r)
		}
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-INDEPENDENT-SEGMENTS\n", hlsVersion)

	if len(videos) == 0 {
		for _, a := range audios {
			var attrs attrList
			attrs.add("BANDWIDTH", strconv.FormatInt(a.Bandwidth, 10))
			if a.AverageBandwidth > 0 {
				attrs.add("AVERAGE-BANDWIDTH", strconv.FormatInt(a.AverageBandwidth, 10))
			}
			if a.Codecs != "" {
				attrs.addQuoted("CODECS", a.Codecs)
			}
			fmt.Fprintf(&b, "#EXT-X-STREAM-INF:%s\n%s\n", attrs.String(), mediaURI(a))
		}
		return b.Bytes()
	}

	// The variant's BANDWIDTH must cover the heaviest audio a player may pick.
	var audioPeak, audioAvg int64
	var audioCodecs []string
	for i, a := range audios {
		audioPeak = max(audioPeak, a.Bandwidth)
		audioAvg = max(audioAvg, a.AverageBandwidth)
		if a.Codecs != "" && !slices.Contains(audioCodecs, a.Codecs) {
			audioCodecs = append(audioCodecs, a.Codecs)
		}
		var attrs attrList
		attrs.add("TYPE", "AUDIO")
		attrs.addQuoted("GROUP-ID", audioGroup)
		attrs.addQuoted("NAME", a.Name)
		if a.Language != "" {
			attrs.addQuoted("LANGUAGE", a.Language)
		}
		attrs.add("DEFAULT", yesNo(i == 0))
		attrs.add("AUTOSELECT", "YES")
		if a.Channels > 0 {
			attrs.addQuoted("CHANNELS", strconv.Itoa(a.Channels))
		}
		attrs.addQuoted("URI", mediaURI(a))
		fmt.Fprintf(&b, "#EXT-X-MEDIA:%s\n", attrs.String())
	}

	for _, v := range videos {
		var attrs attrList
		attrs.add("BANDWIDTH", strconv.FormatInt(v.Bandwidth+audioPeak, 10))
		if v.AverageBandwidth > 0 {
			attrs.add("AVERAGE-BANDWIDTH", strconv.FormatInt(v.AverageBandwidth+audioAvg, 10))
		}
		if v.Width > 0 && v.Height > 0 {
			attrs.add("RESOLUTION", fmt.Sprintf("%dx%d", v.Width, v.Height))
		}
		codecs := audioCodecs
		if v.Codecs != "" {
			codecs = append([]string{v.Codecs}, audioCodecs...)
		}
		if len(codecs) > 0 {
			attrs.addQuoted("CODECS", strings.Join(codecs, ","))
		}
		if v.FrameRate > 0 {
			attrs.add("FRAME-RATE", fmt.Sprintf("%.3f", v.FrameRate))
		}
		if len(audios) > 0 {
			attrs.addQuoted("AUDIO", audioGroup)
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:%s\n%s\n", attrs.String(), mediaURI(v))
	}
	return b.Bytes()
}

// HLSMedia renders the media playlist of rendition r: a VOD playlist when
// p.Live is false, otherwise the live window, closed with EXT-X-ENDLIST once
// p.Ended. EXT-X-MAP is repeated after every discontinuity.
func HLSMedia(p *Presentation, r *Rendition) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n", hlsVersion)
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", hlsTargetDuration(p, r))
	var firstSeq uint64
	if len(r.Segments) > 0 {
		firstSeq = r.Segments[0].Seq
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", firstSeq)
	if p.DiscontinuitySequence != 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", p.DiscontinuitySequence)
	}
	if !p.Live {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")

	initURI := quote(r.initName())
	for i, s := range r.Segments {
		if s.Discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if i == 0 || s.Discontinuity {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=%s\n", initURI)
		}
		if !s.ProgramDateTime.IsZero() {
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", s.ProgramDateTime.Format("2006-01-02T15:04:05.000Z07:00"))
		}
		uri := s.URI
		if uri == "" {
			uri = SegmentName(s.Seq)
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", seconds(s.Duration, r.Timescale), uri)
	}
	if !p.Live || p.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes()
}

// hlsTargetDuration is the longest segment in whole seconds, rounded up,
// and never less than the nominal target duration rounded up (nor 1).
func hlsTargetDuration(p *Presentation, r *Rendition) uint64 {
	target := uint64(max(1, (p.TargetDuration+time.Second-1)/time.Second))
	for _, s := range r.Segments {
		target = max(target, ceilSeconds(s.Duration, r.Timescale))
	}
	return target
}

// attrList builds an HLS attribute list.
type attrList struct{ b strings.Builder }

func (l *attrList) add(name, value string) {
	if l.b.Len() > 0 {
		l.b.WriteByte(',')
	}
	l.b.WriteString(name)
	l.b.WriteByte('=')
	l.b.WriteString(value)
}

func (l *attrList) addQuoted(name, value string) { l.add(name, quote(value)) }

func (l *attrList) String() string { return l.b.String() }

// quote makes an HLS quoted-string; those cannot hold '"', CR or LF, so
// such characters are dropped.
func quote(s string) string {
	return `"` + strings.Map(func(r rune) rune {
		if r == '"' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s) + `"`
}

func yesNo(v bool) string {
	if v {
		return "YES"
	}
	return "NO"
}
