package manifest

import (
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	dashProfiles       = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"
	audioChannelScheme = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
	utcTimingHTTPISO   = "urn:mpeg:dash:utc:http-iso:2014"
	utcTimingDirect    = "urn:mpeg:dash:utc:direct:2014"

	// mediaTemplate addresses the files that SegmentName names.
	mediaTemplate = "$Number%08d$.m4s"
	// defaultTargetDuration stands in when neither the presentation nor its
	// segments give a segment duration.
	defaultTargetDuration = 2 * time.Second
)

// DASH renders the MPD: static for VOD and ended streams, dynamic for a
// live window. baseURL gives each rendition's folder relative to the MPD
// (e.g. "720p/"; nil means Name+"/"); its init segment is base+InitURI and
// its media segments base+"$Number%08d$.m4s", the names SegmentName gives.
// Each discontinuity starts a new Period whose presentationTimeOffset keeps
// SegmentTimeline t values equal to the segments' tfdt.
func DASH(p *Presentation, baseURL func(r *Rendition) string) ([]byte, error) {
	if baseURL == nil {
		baseURL = func(r *Rendition) string { return r.Name + "/" }
	}
	if err := validateDASH(p); err != nil {
		return nil, err
	}
	dynamic := p.Live && !p.Ended
	if dynamic && p.AvailabilityStart.IsZero() {
		return nil, fmt.Errorf("dash: live presentation without AvailabilityStart: %w", ErrInvalid)
	}
	b, err := buildDASH(p, dynamic, baseURL)
	if err != nil {
		return nil, err
	}
	out, err := xml.MarshalIndent(b.mpd, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("dash: marshal MPD: %w", err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

func validateDASH(p *Presentation) error {
	names := make(map[string]bool, len(p.Renditions))
	for i := range p.Renditions {
		r := &p.Renditions[i]
		switch {
		case r.Kind != Video && r.Kind != Audio:
			return fmt.Errorf("dash: rendition %q: unknown kind %q: %w", r.Name, r.Kind, ErrInvalid)
		case r.Name == "" || strings.ContainsAny(r.Name, " \t\r\n"):
			return fmt.Errorf("dash: rendition name %q is empty or holds whitespace: %w", r.Name, ErrInvalid)
		case names[r.Name]:
			return fmt.Errorf("dash: rendition %q appears twice: %w", r.Name, ErrInvalid)
		case len(r.Segments) > 0 && r.Timescale == 0:
			return fmt.Errorf("dash: rendition %q: timescale is zero: %w", r.Name, ErrInvalid)
		}
		names[r.Name] = true
		for j := 1; j < len(r.Segments); j++ {
			if prev, s := r.Segments[j-1].Seq, r.Segments[j].Seq; s != prev+1 {
				return fmt.Errorf("dash: rendition %q: segment %d follows %d: %w", r.Name, s, prev, ErrInvalid)
			}
		}
	}
	return nil
}

// dashBuild carries the MPD under construction and the window's extent in
// presentation time.
type dashBuild struct {
	mpd                    mpdXML
	windowStart, windowEnd time.Duration
	maxSegment             time.Duration
}

func buildDASH(p *Presentation, dynamic bool, baseURL func(r *Rendition) string) (*dashBuild, error) {
	// Period boundaries: the window's first segment and every discontinuity,
	// by Seq, which all renditions share.
	var flagged []uint64
	minSeq, haveSegments := uint64(math.MaxUint64), false
	for i := range p.Renditions {
		r := &p.Renditions[i]
		if len(r.Segments) == 0 {
			continue
		}
		haveSegments = true
		minSeq = min(minSeq, r.Segments[0].Seq)
		for _, s := range r.Segments {
			if s.Discontinuity {
				flagged = append(flagged, s.Seq)
			}
		}
	}
	if !haveSegments {
		return nil, fmt.Errorf("dash: %w", ErrNoSegments)
	}
	slices.Sort(flagged)
	flagged = slices.Compact(flagged)
	firstFlagged := len(flagged) > 0 && flagged[0] == minSeq
	bounds := []uint64{minSeq}
	for _, s := range flagged {
		if s > minSeq {
			bounds = append(bounds, s)
		}
	}

	// Audio adaptation sets by language, in order of first appearance, so
	// their ids hold across periods and renders.
	var languages []string
	for i := range p.Renditions {
		if r := &p.Renditions[i]; r.Kind == Audio && !slices.Contains(languages, r.Language) {
			languages = append(languages, r.Language)
		}
	}

	b := &dashBuild{windowStart: math.MaxInt64}
	periodID := p.DiscontinuitySequence
	if firstFlagged {
		periodID++
	}
	var offset, prevEnd time.Duration // presentation time minus media time; end of the previous period
	for k, first := range bounds {
		end := uint64(math.MaxUint64)
		if k+1 < len(bounds) {
			end = bounds[k+1]
		}
		segs := make([][]Segment, len(p.Renditions))
		anchor := time.Duration(math.MaxInt64) // media time where the period starts
		for i := range p.Renditions {
			r := &p.Renditions[i]
			segs[i] = segmentsIn(r.Segments, first, end)
			if len(segs[i]) > 0 {
				anchor = min(anchor, TicksToDuration(segs[i][0].Start, r.Timescale))
			}
		}
		if k == 0 && dynamic && !firstFlagged {
			// The window starts inside a period that began earlier: at media
			// time 0 if no reconnect has left the window, else where the
			// caller says it began.
			switch {
			case p.DiscontinuitySequence == 0:
				anchor = 0
			case p.PeriodStart > 0:
				anchor = min(anchor, p.PeriodStart)
			}
		}
		start := anchor + offset
		switch {
		case k == 0 && !dynamic:
			start, offset = 0, -anchor
		case k > 0 && start < prevEnd:
			// Timestamps went back at the reconnect: keep periods in order.
			start, offset = prevEnd, prevEnd-anchor
		}

		per := periodXML{ID: strconv.FormatUint(periodID, 10), Start: xsDuration(start)}
		periodID++
		periodEnd := time.Duration(math.MaxInt64)
		sets := make(map[int]*adaptationSetXML)
		var order []int
		for i := range p.Renditions {
			r := &p.Renditions[i]
			if len(segs[i]) == 0 {
				continue
			}
			rep, repStart, repEnd, err := b.representation(r, segs[i], anchor, start, baseURL(r))
			if err != nil {
				return nil, err
			}
			b.windowStart = min(b.windowStart, repStart)
			b.windowEnd = max(b.windowEnd, repEnd)
			periodEnd = min(periodEnd, repEnd)

			key, set := setFor(r, languages)
			as := sets[key]
			if as == nil {
				as = set
				sets[key] = as
				order = append(order, key)
			}
			as.add(r, rep)
		}
		slices.Sort(order) // video first, then audio in language order
		for _, key := range order {
			as := sets[key]
			if as.maxFrameRate > 0 {
				as.MaxFrameRate = frameRate(as.maxFrameRate)
			}
			per.AdaptationSets = append(per.AdaptationSets, *as)
		}
		b.mpd.Periods = append(b.mpd.Periods, per)
		prevEnd = periodEnd
	}

	target := p.TargetDuration
	if target <= 0 {
		target = b.maxSegment
	}
	if target <= 0 {
		target = defaultTargetDuration
	}
	minBuffer := p.MinBufferTime
	if minBuffer <= 0 {
		minBuffer = 2 * target
	}
	m := &b.mpd
	m.Profiles = dashProfiles
	m.MinBufferTime = xsDuration(minBuffer)
	if !dynamic {
		m.Type = "static"
		m.MediaPresentationDuration = xsDuration(b.windowEnd)
		return b, nil
	}
	m.Type = "dynamic"
	publish := p.PublishTime
	if publish.IsZero() {
		publish = p.AvailabilityStart.Add(b.windowEnd)
	}
	depth := p.TimeShiftBuffer
	if depth <= 0 {
		depth = b.windowEnd - b.windowStart
	}
	m.AvailabilityStartTime = xsDateTime(p.AvailabilityStart)
	m.PublishTime = xsDateTime(publish)
	m.MinimumUpdatePeriod = xsDuration(target)
	m.TimeShiftBufferDepth = xsDuration(depth)
	m.SuggestedPresentationDelay = xsDuration(3 * target)
	if p.UTCTimingURL != "" {
		m.UTCTiming = &descriptorXML{SchemeIDURI: utcTimingHTTPISO, Value: p.UTCTimingURL}
	} else {
		m.UTCTiming = &descriptorXML{SchemeIDURI: utcTimingDirect, Value: xsDateTime(publish)}
	}
	return b, nil
}

// representation renders r's segments of one period that starts at media
// time anchor and presentation time start. It returns the presentation times
// at which those segments begin and end.
func (b *dashBuild) representation(r *Rendition, segs []Segment, anchor, start time.Duration, base string) (representationXML, time.Duration, time.Duration, error) {
	pto := min(DurationToTicks(anchor, r.Timescale), segs[0].Start)
	var timeline []timelineS
	var next uint64
	for i, s := range segs {
		if s.Duration == 0 {
			return representationXML{}, 0, 0, fmt.Errorf("dash: rendition %q: segment %d has no duration: %w", r.Name, s.Seq, ErrInvalid)
		}
		if i > 0 && s.Start < next {
			return representationXML{}, 0, 0, fmt.Errorf("dash: rendition %q: segment %d starts at %d, before the end of segment %d at %d: %w",
				r.Name, s.Seq, s.Start, s.Seq-1, next, ErrInvalid)
		}
		b.maxSegment = max(b.maxSegment, TicksToDuration(s.Duration, r.Timescale))
		if n := len(timeline); n > 0 && s.Start == next && s.Duration == timeline[n-1].D {
			timeline[n-1].R++
		} else {
			e := timelineS{D: s.Duration}
			if i == 0 || s.Start != next {
				t := s.Start
				e.T = &t
			}
			timeline = append(timeline, e)
		}
		next = s.Start + s.Duration
	}

	base = templateEscape(base)
	if base != "" && !strings.HasSuffix(base, "/") {
		base += "/"
	}
	rep := representationXML{
		ID:        r.Name,
		MimeType:  mimeType(r.Kind),
		Codecs:    r.Codecs,
		Bandwidth: r.Bandwidth,
		SegmentTemplate: segmentTemplateXML{
			Timescale:              r.Timescale,
			PresentationTimeOffset: pto,
			Initialization:         base + templateEscape(r.initName()),
			Media:                  base + mediaTemplate,
			StartNumber:            segs[0].Seq,
			Timeline:               timelineXML{S: timeline},
		},
	}
	switch r.Kind {
	case Video:
		rep.Width, rep.Height = r.Width, r.Height
		rep.FrameRate = frameRate(r.FrameRate)
	case Audio:
		rep.AudioSamplingRate = r.SampleRate
		if r.Channels > 0 {
			rep.AudioChannelConfiguration = &descriptorXML{SchemeIDURI: audioChannelScheme, Value: strconv.Itoa(r.Channels)}
		}
	}
	repStart := start + TicksToDuration(segs[0].Start-pto, r.Timescale)
	repEnd := start + TicksToDuration(next-pto, r.Timescale)
	return rep, repStart, repEnd, nil
}

// segmentsIn returns the segments with first <= Seq < end of a contiguous
// window.
func segmentsIn(segs []Segment, first, end uint64) []Segment {
	if len(segs) == 0 {
		return nil
	}
	lo, hi := segs[0].Seq, segs[len(segs)-1].Seq+1
	first, end = max(first, lo), min(end, hi)
	if first >= end {
		return nil
	}
	return segs[first-lo : end-lo]
}

// setFor returns the id and a fresh adaptation set for r: 0 for all video,
// then one per audio language.
func setFor(r *Rendition, languages []string) (int, *adaptationSetXML) {
	as := &adaptationSetXML{
		ContentType:      string(r.Kind),
		MimeType:         mimeType(r.Kind),
		SegmentAlignment: "true",
		StartWithSAP:     1,
	}
	id := 0
	if r.Kind == Audio {
		id = 1 + slices.Index(languages, r.Language)
		as.Lang = r.Language
	}
	as.ID = strconv.Itoa(id)
	return id, as
}

func (as *adaptationSetXML) add(r *Rendition, rep representationXML) {
	as.Representations = append(as.Representations, rep)
	if r.Kind == Video {
		as.MaxWidth = max(as.MaxWidth, r.Width)
		as.MaxHeight = max(as.MaxHeight, r.Height)
		as.maxFrameRate = max(as.maxFrameRate, r.FrameRate)
	}
}

func mimeType(k Kind) string { return string(k) + "/mp4" }

// frameRate writes a DASH FrameRateType: an integer or a ratio such as
// 30000/1001.
func frameRate(f float64) string {
	if f <= 0 {
		return ""
	}
	if n := math.Round(f); math.Abs(f-n) < 1e-3 {
		return strconv.FormatInt(int64(n), 10)
	}
	if n := math.Round(f * 1.001); math.Abs(f-n/1.001) < 1e-3 {
		return fmt.Sprintf("%d/1001", int64(n)*1000)
	}
	num, den := int64(math.Round(f*1000)), int64(1000)
	for a, b := num, den; ; {
		if b == 0 {
			num, den = num/a, den/a
			break
		}
		a, b = b, a%b
	}
	return fmt.Sprintf("%d/%d", num, den)
}

// templateEscape escapes '$', which opens a DASH template identifier.
func templateEscape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// xsDuration writes an xs:duration in seconds, e.g. "PT6.006S".
func xsDuration(d time.Duration) string { return "PT" + formatSeconds(d) + "S" }

// xsDateTime writes an xs:dateTime in UTC with milliseconds.
func xsDateTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

type mpdXML struct {
	XMLName                    xml.Name       `xml:"urn:mpeg:dash:schema:mpd:2011 MPD"`
	Profiles                   string         `xml:"profiles,attr"`
	Type                       string         `xml:"type,attr"`
	AvailabilityStartTime      string         `xml:"availabilityStartTime,attr,omitempty"`
	PublishTime                string         `xml:"publishTime,attr,omitempty"`
	MediaPresentationDuration  string         `xml:"mediaPresentationDuration,attr,omitempty"`
	MinimumUpdatePeriod        string         `xml:"minimumUpdatePeriod,attr,omitempty"`
	MinBufferTime              string         `xml:"minBufferTime,attr"`
	TimeShiftBufferDepth       string         `xml:"timeShiftBufferDepth,attr,omitempty"`
	SuggestedPresentationDelay string         `xml:"suggestedPresentationDelay,attr,omitempty"`
	Periods                    []periodXML    `xml:"Period"`
	UTCTiming                  *descriptorXML `xml:"UTCTiming"`
}

type periodXML struct {
	ID             string             `xml:"id,attr"`
	Start          string             `xml:"start,attr"`
	AdaptationSets []adaptationSetXML `xml:"AdaptationSet"`
}

type adaptationSetXML struct {
	ID               string              `xml:"id,attr"`
	ContentType      string              `xml:"contentType,attr"`
	MimeType         string              `xml:"mimeType,attr"`
	Lang             string              `xml:"lang,attr,omitempty"`
	SegmentAlignment string              `xml:"segmentAlignment,attr"`
	StartWithSAP     int                 `xml:"startWithSAP,attr"`
	MaxWidth         int                 `xml:"maxWidth,attr,omitempty"`
	MaxHeight        int                 `xml:"maxHeight,attr,omitempty"`
	MaxFrameRate     string              `xml:"maxFrameRate,attr,omitempty"`
	Representations  []representationXML `xml:"Representation"`

	maxFrameRate float64
}

type representationXML struct {
	ID                        string             `xml:"id,attr"`
	MimeType                  string             `xml:"mimeType,attr"`
	Codecs                    string             `xml:"codecs,attr,omitempty"`
	Bandwidth                 int64              `xml:"bandwidth,attr"`
	Width                     int                `xml:"width,attr,omitempty"`
	Height                    int                `xml:"height,attr,omitempty"`
	FrameRate                 string             `xml:"frameRate,attr,omitempty"`
	AudioSamplingRate         int                `xml:"audioSamplingRate,attr,omitempty"`
	AudioChannelConfiguration *descriptorXML     `xml:"AudioChannelConfiguration"`
	SegmentTemplate           segmentTemplateXML `xml:"SegmentTemplate"`
}

type descriptorXML struct {
	SchemeIDURI string `xml:"schemeIdUri,attr"`
	Value       string `xml:"value,attr"`
}

type segmentTemplateXML struct {
	Timescale              uint32      `xml:"timescale,attr"`
	PresentationTimeOffset uint64      `xml:"presentationTimeOffset,attr,omitempty"`
	Initialization         string      `xml:"initialization,attr"`
	Media                  string      `xml:"media,attr"`
	StartNumber            uint64      `xml:"startNumber,attr"`
	Timeline               timelineXML `xml:"SegmentTimeline"`
}

type timelineXML struct {
	S []timelineS `xml:"S"`
}

type timelineS struct {
	T *uint64 `xml:"t,attr,omitempty"`
	D uint64  `xml:"d,attr"`
	R int     `xml:"r,attr,omitempty"`
}
