package latencybench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file reads the parts of a live MPEG-DASH MPD the latency suite
// needs: each representation's SegmentTemplate and SegmentTimeline. It
// takes untrusted bytes: it never panics, and a timeline's repeat counts
// cannot make it list more than maxTimelineSegments segments.

// ErrMPD means a body is not an MPD this suite can follow.
var ErrMPD = errors.New("latency: bad MPD")

// maxTimelineSegments bounds the segments one representation may list.
const maxTimelineSegments = 100000

// DashRepresentation is one representation of an MPD's last period.
type DashRepresentation struct {
	ID             string
	ContentType    string // video or audio, from the adaptation set or MIME type
	Bandwidth      int64
	Timescale      uint32
	Initialization string // template, relative to the MPD
	Media          string // template, relative to the MPD
	BaseURL        string // MPD and Period BaseURL joined; "" for none
	Segments       []DashSegment
}

// DashSegment is one S of a SegmentTimeline, repeats expanded.
type DashSegment struct {
	Number   uint64
	Time     uint64 // in Timescale units
	Duration uint64
}

type xmlMPD struct {
	Type    string      `xml:"type,attr"`
	BaseURL string      `xml:"BaseURL"`
	Periods []xmlPeriod `xml:"Period"`
}

type xmlPeriod struct {
	BaseURL string     `xml:"BaseURL"`
	Sets    []xmlAdSet `xml:"AdaptationSet"`
}

type xmlAdSet struct {
	ContentType string       `xml:"contentType,attr"`
	MimeType    string       `xml:"mimeType,attr"`
	Template    *xmlTemplate `xml:"SegmentTemplate"`
	Reps        []xmlRep     `xml:"Representation"`
}

type xmlRep struct {
	ID        string       `xml:"id,attr"`
	MimeType  string       `xml:"mimeType,attr"`
	Bandwidth int64        `xml:"bandwidth,attr"`
	Template  *xmlTemplate `xml:"SegmentTemplate"`
}

type xmlTemplate struct {
	Timescale      uint32       `xml:"timescale,attr"`
	Initialization string       `xml:"initialization,attr"`
	Media          string       `xml:"media,attr"`
	StartNumber    *uint64      `xml:"startNumber,attr"`
	Timeline       *xmlTimeline `xml:"SegmentTimeline"`
}

type xmlTimeline struct {
	S []xmlS `xml:"S"`
}

type xmlS struct {
	T *uint64 `xml:"t,attr"`
	D uint64  `xml:"d,attr"`
	R int64   `xml:"r,attr"`
}

// ParseMPD returns the representations of the MPD's last period (a live
// stream's current one) that use a SegmentTemplate with a SegmentTimeline.
func ParseMPD(b []byte) ([]DashRepresentation, error) {
	var m xmlMPD
	dec := xml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMPD, err)
	}
	if len(m.Periods) == 0 {
		return nil, fmt.Errorf("%w: no Period", ErrMPD)
	}
	p := m.Periods[len(m.Periods)-1]
	base := joinBase(strings.TrimSpace(m.BaseURL), strings.TrimSpace(p.BaseURL))
	var out []DashRepresentation
	for _, set := range p.Sets {
		for _, rep := range set.Reps {
			t := rep.Template
			if t == nil {
				t = set.Template
			}
			if t == nil || t.Timeline == nil || t.Media == "" {
				continue
			}
			r := DashRepresentation{ID: rep.ID, ContentType: contentType(set, rep), Bandwidth: rep.Bandwidth,
				Timescale: t.Timescale, Initialization: t.Initialization, Media: t.Media, BaseURL: base}
			if r.Timescale == 0 {
				r.Timescale = 1
			}
			segs, err := expandTimeline(t)
			if err != nil {
				return nil, fmt.Errorf("representation %q: %w", rep.ID, err)
			}
			r.Segments = segs
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no representation with a SegmentTimeline", ErrMPD)
	}
	return out, nil
}

func contentType(set xmlAdSet, rep xmlRep) string {
	if set.ContentType != "" {
		return set.ContentType
	}
	mime := rep.MimeType
	if mime == "" {
		mime = set.MimeType
	}
	kind, _, _ := strings.Cut(mime, "/")
	return kind
}

func joinBase(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "" || strings.Contains(b, "://") || strings.HasPrefix(b, "/"):
		return or(b, a)
	}
	return strings.TrimSuffix(a, "/") + "/" + b
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// expandTimeline lists every segment of a SegmentTimeline: an S without t
// follows the previous one, r repeats it (r < 0, "until the next S", is
// taken as no repeat: a live timeline's last S says nothing beyond itself).
func expandTimeline(t *xmlTemplate) ([]DashSegment, error) {
	num := uint64(1)
	if t.StartNumber != nil {
		num = *t.StartNumber
	}
	var out []DashSegment
	var next uint64
	for _, s := range t.Timeline.S {
		if s.T != nil {
			next = *s.T
		}
		if s.D == 0 {
			return nil, fmt.Errorf("%w: S with d=0", ErrMPD)
		}
		reps := max(s.R, 0) + 1
		if reps > maxTimelineSegments || int64(len(out))+reps > maxTimelineSegments {
			return nil, fmt.Errorf("%w: more than %d segments", ErrMPD, maxTimelineSegments)
		}
		for range reps {
			out = append(out, DashSegment{Number: num, Time: next, Duration: s.D})
			num++
			next += s.D
		}
	}
	return out, nil
}

// ExpandTemplate fills a SegmentTemplate's identifiers: $RepresentationID$,
// $Number$, $Time$ and $Bandwidth$, each optionally with a printf width
// like %08d, and $$.
func ExpandTemplate(tmpl, id string, number, t uint64, bandwidth int64) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '$')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String(), nil
		}
		b.WriteString(tmpl[:i])
		rest := tmpl[i+1:]
		j := strings.IndexByte(rest, '$')
		if j < 0 {
			return "", fmt.Errorf("%w: unclosed $ in template %q", ErrMPD, tmpl)
		}
		ident := rest[:j]
		tmpl = rest[j+1:]
		name, format, hasFormat := strings.Cut(ident, "%")
		var v uint64
		switch name {
		case "":
			b.WriteByte('$')
			continue
		case "RepresentationID":
			b.WriteString(id)
			continue
		case "Number":
			v = number
		case "Time":
			v = t
		case "Bandwidth":
			v = uint64(max(bandwidth, 0))
		default:
			return "", fmt.Errorf("%w: identifier $%s$ in template", ErrMPD, ident)
		}
		if !hasFormat {
			b.WriteString(strconv.FormatUint(v, 10))
			continue
		}
		width, ok := strings.CutSuffix(format, "d")
		width = strings.TrimPrefix(width, "0")
		n, err := strconv.Atoi(or(width, "0"))
		if !ok || err != nil || n < 0 || n > 32 {
			return "", fmt.Errorf("%w: format %%%s in template", ErrMPD, format)
		}
		s := strconv.FormatUint(v, 10)
		if len(s) < n {
			s = strings.Repeat("0", n-len(s)) + s
		}
		b.WriteString(s)
	}
}
