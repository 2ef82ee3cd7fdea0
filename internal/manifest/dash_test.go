package manifest

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The test reads MPDs back with its own small structs, not the renderer's.
type testMPD struct {
	XMLName                    xml.Name `xml:"MPD"`
	Profiles                   string   `xml:"profiles,attr"`
	Type                       string   `xml:"type,attr"`
	AvailabilityStartTime      string   `xml:"availabilityStartTime,attr"`
	PublishTime                string   `xml:"publishTime,attr"`
	MediaPresentationDuration  string   `xml:"mediaPresentationDuration,attr"`
	MinimumUpdatePeriod        string   `xml:"minimumUpdatePeriod,attr"`
	MinBufferTime              string   `xml:"minBufferTime,attr"`
	TimeShiftBufferDepth       string   `xml:"timeShiftBufferDepth,attr"`
	SuggestedPresentationDelay string   `xml:"suggestedPresentationDelay,attr"`
	Periods                    []struct {
		ID             string `xml:"id,attr"`
		Start          string `xml:"start,attr"`
		AdaptationSets []struct {
			ID               string `xml:"id,attr"`
			ContentType      string `xml:"contentType,attr"`
			MimeType         string `xml:"mimeType,attr"`
			Lang             string `xml:"lang,attr"`
			SegmentAlignment string `xml:"segmentAlignment,attr"`
			StartWithSAP     string `xml:"startWithSAP,attr"`
			MaxWidth         string `xml:"maxWidth,attr"`
			MaxHeight        string `xml:"maxHeight,attr"`
			Representations  []struct {
				ID                string        `xml:"id,attr"`
				MimeType          string        `xml:"mimeType,attr"`
				Codecs            string        `xml:"codecs,attr"`
				Bandwidth         string        `xml:"bandwidth,attr"`
				Width             string        `xml:"width,attr"`
				Height            string        `xml:"height,attr"`
				FrameRate         string        `xml:"frameRate,attr"`
				AudioSamplingRate string        `xml:"audioSamplingRate,attr"`
				Channels          *testScheme   `xml:"AudioChannelConfiguration"`
				Template          *testTemplate `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
	UTCTiming *testScheme `xml:"UTCTiming"`
}

type testScheme struct {
	Scheme string `xml:"schemeIdUri,attr"`
	Value  string `xml:"value,attr"`
}

type testTemplate struct {
	Timescale              string  `xml:"timescale,attr"`
	PresentationTimeOffset *string `xml:"presentationTimeOffset,attr"`
	Initialization         string  `xml:"initialization,attr"`
	Media                  string  `xml:"media,attr"`
	StartNumber            *string `xml:"startNumber,attr"`
	S                      []struct {
		T *string `xml:"t,attr"`
		D string  `xml:"d,attr"`
		R *string `xml:"r,attr"`
	} `xml:"SegmentTimeline>S"`
}

// timeline writes a SegmentTimeline compactly: "t=0 d=2000 r=1; d=1000".
func (tt *testTemplate) timeline() string {
	var parts []string
	for _, s := range tt.S {
		var f []string
		if s.T != nil {
			f = append(f, "t="+*s.T)
		}
		f = append(f, "d="+s.D)
		if s.R != nil {
			f = append(f, "r="+*s.R)
		}
		parts = append(parts, strings.Join(f, " "))
	}
	return strings.Join(parts, "; ")
}

// summary describes each period as "id@start" followed by, per
// representation, "name n=startNumber pto=offset [timeline]".
func (m *testMPD) summary() []string {
	var out []string
	for _, p := range m.Periods {
		out = append(out, "period "+p.ID+"@"+p.Start)
		for _, as := range p.AdaptationSets {
			for _, r := range as.Representations {
				tpl := r.Template
				pto := "-"
				if tpl.PresentationTimeOffset != nil {
					pto = *tpl.PresentationTimeOffset
				}
				out = append(out, fmt.Sprintf("  %s n=%s pto=%s [%s]", r.ID, deref(tpl.StartNumber), pto, tpl.timeline()))
			}
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func renderMPD(t *testing.T, p *Presentation) *testMPD {
	t.Helper()
	out, err := DASH(p, nil)
	if err != nil {
		t.Fatalf("DASH: %v", err)
	}
	if !strings.HasPrefix(string(out), xml.Header) {
		t.Errorf("MPD does not start with the XML header:\n%s", out)
	}
	var m testMPD
	if err := xml.Unmarshal(out, &m); err != nil {
		t.Fatalf("parse MPD: %v\n%s", err, out)
	}
	if m.XMLName.Space != "urn:mpeg:dash:schema:mpd:2011" {
		t.Errorf("MPD namespace = %q", m.XMLName.Space)
	}
	return &m
}

func TestDASHStaticLadder(t *testing.T) {
	m := renderMPD(t, ladder())
	if m.Type != "static" {
		t.Errorf("type = %q, want static", m.Type)
	}
	if want := "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"; m.Profiles != want {
		t.Errorf("profiles = %q, want %q", m.Profiles, want)
	}
	// Audio runs to 3×96256/48000 = 6.016 s, past video's 6.006 s.
	if m.MediaPresentationDuration != "PT6.016S" || m.MinBufferTime != "PT4S" {
		t.Errorf("mediaPresentationDuration, minBufferTime = %q, %q; want PT6.016S, PT4S", m.MediaPresentationDuration, m.MinBufferTime)
	}
	for name, v := range map[string]string{
		"availabilityStartTime": m.AvailabilityStartTime, "publishTime": m.PublishTime,
		"minimumUpdatePeriod": m.MinimumUpdatePeriod, "timeShiftBufferDepth": m.TimeShiftBufferDepth,
		"suggestedPresentationDelay": m.SuggestedPresentationDelay,
	} {
		if v != "" {
			t.Errorf("static MPD has %s=%q", name, v)
		}
	}
	if m.UTCTiming != nil {
		t.Errorf("static MPD has UTCTiming %+v", *m.UTCTiming)
	}
	if len(m.Periods) != 1 || m.Periods[0].ID != "0" || m.Periods[0].Start != "PT0S" {
		t.Fatalf("periods = %q, want one period 0@PT0S", m.summary())
	}
	sets := m.Periods[0].AdaptationSets
	if len(sets) != 2 {
		t.Fatalf("got %d adaptation sets, want 2", len(sets))
	}
	v, a := sets[0], sets[1]
	if v.ContentType != "video" || v.MimeType != "video/mp4" || v.SegmentAlignment != "true" || v.StartWithSAP != "1" ||
		v.MaxWidth != "1920" || v.MaxHeight != "1080" || len(v.Representations) != 4 {
		t.Errorf("video adaptation set = %+v", v)
	}
	wantVideo := []struct{ id, codecs, bandwidth, w, h string }{
		{"1080p", "avc1.640028", "5400000", "1920", "1080"},
		{"720p", "avc1.64001f", "3200000", "1280", "720"},
		{"480p", "avc1.64001e", "1600000", "854", "480"},
		{"360p", "avc1.64001e", "900000", "640", "360"},
	}
	for i, want := range wantVideo {
		r := v.Representations[i]
		if r.ID != want.id || r.Codecs != want.codecs || r.Bandwidth != want.bandwidth || r.Width != want.w || r.Height != want.h ||
			r.FrameRate != "30000/1001" || r.MimeType != "video/mp4" {
			t.Errorf("video representation %d = %+v, want %+v", i, r, want)
		}
		tpl := r.Template
		if tpl.Timescale != "90000" || tpl.Initialization != want.id+"/init.mp4" || tpl.Media != want.id+"/$Number%08d$.m4s" ||
			deref(tpl.StartNumber) != "0" || tpl.PresentationTimeOffset != nil || tpl.timeline() != "t=0 d=180180 r=2" {
			t.Errorf("video %s template = %+v, timeline %q", want.id, *tpl, tpl.timeline())
		}
	}
	if a.ContentType != "audio" || a.MimeType != "audio/mp4" || a.Lang != "en" || len(a.Representations) != 1 {
		t.Fatalf("audio adaptation set = %+v", a)
	}
	ar := a.Representations[0]
	if ar.ID != "aac" || ar.Codecs != "mp4a.40.2" || ar.AudioSamplingRate != "48000" || ar.Bandwidth != "132000" ||
		ar.Channels == nil || ar.Channels.Scheme != "urn:mpeg:dash:23003:3:audio_channel_configuration:2011" || ar.Channels.Value != "2" {
		t.Errorf("audio representation = %+v", ar)
	}
	if got := ar.Template.timeline(); ar.Template.Timescale != "48000" || got != "t=0 d=96256 r=2" {
		t.Errorf("audio timescale %s timeline %q", ar.Template.Timescale, got)
	}
}

func TestDASHPeriods(t *testing.T) {
	ast := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// reconnect builds a video+audio window: segments from seq with a
	// reconnect at seq+3 after which media time resumes at resume (video ticks).
	reconnect := func(seq, start, resume uint64) []Rendition {
		v := append(segments(seq, start, 180000, 180000, 180000), segments(seq+3, resume, 180000, 180000)...)
		a := append(segments(seq, start*48/90, 96000, 96000, 96000), segments(seq+3, resume*48/90+256, 96000, 96000)...)
		v[3].Discontinuity, a[3].Discontinuity = true, true
		return []Rendition{
			{Name: "v", Kind: Video, Timescale: 90000, Segments: v},
			{Name: "a", Kind: Audio, Timescale: 48000, Segments: a},
		}
	}
	// afterReconnect keeps the video segments from the reconnect on.
	afterReconnect := func(rs []Rendition) []Rendition {
		rs[0].Segments = rs[0].Segments[3:]
		return rs[:1]
	}
	tests := []struct {
		name string
		pres Presentation
		want []string
		// attrs are MPD attributes that must equal these values.
		attrs map[string]string
	}{
		{
			name: "timeline compression and gaps",
			pres: Presentation{Renditions: []Rendition{{
				Name: "v", Kind: Video, Timescale: 1000, Segments: []Segment{
					{Seq: 5, Start: 0, Duration: 2000}, {Seq: 6, Start: 2000, Duration: 2000}, {Seq: 7, Start: 4000, Duration: 1000},
					{Seq: 8, Start: 5000, Duration: 2000}, {Seq: 9, Start: 9000, Duration: 2000}, {Seq: 10, Start: 11000, Duration: 2000},
				},
			}}},
			want: []string{
				"period 0@PT0S",
				"  v n=5 pto=- [t=0 d=2000 r=1; d=1000; d=2000; t=9000 d=2000 r=1]",
			},
			attrs: map[string]string{"type": "static", "mediaPresentationDuration": "PT13S", "minBufferTime": "PT4S"},
		},
		{
			name: "VOD with a reconnect: two periods, the second offset to its tfdt",
			pres: Presentation{TargetDuration: 2 * time.Second, Renditions: reconnect(0, 0, 900000)},
			want: []string{
				"period 0@PT0S",
				"  v n=0 pto=- [t=0 d=180000 r=2]",
				"  a n=0 pto=- [t=0 d=96000 r=2]",
				"period 1@PT10S",
				"  v n=3 pto=900000 [t=900000 d=180000 r=1]",
				"  a n=3 pto=480000 [t=480256 d=96000 r=1]",
			},
			attrs: map[string]string{"type": "static", "mediaPresentationDuration": "PT14.005333333S"},
		},
		{
			name: "VOD with a reconnect that restarted timestamps keeps periods in order",
			pres: Presentation{TargetDuration: 2 * time.Second, Renditions: reconnect(0, 0, 0)},
			want: []string{
				"period 0@PT0S",
				"  v n=0 pto=- [t=0 d=180000 r=2]",
				"  a n=0 pto=- [t=0 d=96000 r=2]",
				"period 1@PT6S",
				"  v n=3 pto=- [t=0 d=180000 r=1]",
				"  a n=3 pto=- [t=256 d=96000 r=1]",
			},
			attrs: map[string]string{"type": "static", "mediaPresentationDuration": "PT10.005333333S"},
		},
		{
			name: "live window without reconnects: one period from availabilityStartTime",
			pres: Presentation{
				Live: true, TargetDuration: 2 * time.Second, AvailabilityStart: ast,
				Renditions: []Rendition{{Name: "v", Kind: Video, Timescale: 90000, Segments: segments(100, 18000000, 180000, 180000, 180000)}},
			},
			want: []string{
				"period 0@PT0S",
				"  v n=100 pto=- [t=18000000 d=180000 r=2]",
			},
			attrs: map[string]string{
				"type": "dynamic", "availabilityStartTime": "2025-03-01T12:00:00.000Z", "publishTime": "2025-03-01T12:03:26.000Z",
				"minimumUpdatePeriod": "PT2S", "timeShiftBufferDepth": "PT6S", "suggestedPresentationDelay": "PT6S",
				"minBufferTime": "PT4S", "mediaPresentationDuration": "",
				"UTCTiming": "urn:mpeg:dash:utc:direct:2014 2025-03-01T12:03:26.000Z",
			},
		},
		{
			name: "live window across a reconnect: period ids from the discontinuity sequence",
			pres: Presentation{
				Live: true, TargetDuration: 2 * time.Second, AvailabilityStart: ast, DiscontinuitySequence: 4,
				PeriodStart: 90 * time.Second, PublishTime: ast.Add(time.Hour), TimeShiftBuffer: 30 * time.Second,
				MinBufferTime: 3 * time.Second, UTCTimingURL: "https://time.example/iso",
				Renditions: reconnect(50, 9000000, 10800000),
			},
			want: []string{
				"period 4@PT90S",
				"  v n=50 pto=8100000 [t=9000000 d=180000 r=2]",
				"  a n=50 pto=4320000 [t=4800000 d=96000 r=2]",
				"period 5@PT120S",
				"  v n=53 pto=10800000 [t=10800000 d=180000 r=1]",
				"  a n=53 pto=5760000 [t=5760256 d=96000 r=1]",
			},
			attrs: map[string]string{
				"type": "dynamic", "publishTime": "2025-03-01T13:00:00.000Z", "timeShiftBufferDepth": "PT30S",
				"minBufferTime": "PT3S", "UTCTiming": "urn:mpeg:dash:utc:http-iso:2014 https://time.example/iso",
			},
		},
		{
			name: "live window opening on a reconnect",
			pres: Presentation{
				Live: true, TargetDuration: 2 * time.Second, AvailabilityStart: ast, DiscontinuitySequence: 4,
				Renditions: afterReconnect(reconnect(50, 9000000, 10800000)),
			},
			want: []string{
				"period 5@PT120S",
				"  v n=53 pto=10800000 [t=10800000 d=180000 r=1]",
			},
		},
		{
			name: "ended live stream turns static and starts at zero",
			pres: Presentation{
				Live: true, Ended: true, TargetDuration: 2 * time.Second, AvailabilityStart: ast, DiscontinuitySequence: 4,
				Renditions: reconnect(50, 9000000, 10800000),
			},
			want: []string{
				"period 4@PT0S",
				"  v n=50 pto=9000000 [t=9000000 d=180000 r=2]",
				"  a n=50 pto=4800000 [t=4800000 d=96000 r=2]",
				"period 5@PT20S",
				"  v n=53 pto=10800000 [t=10800000 d=180000 r=1]",
				"  a n=53 pto=5760000 [t=5760256 d=96000 r=1]",
			},
			attrs: map[string]string{
				"type": "static", "mediaPresentationDuration": "PT24.005333333S",
				"availabilityStartTime": "", "publishTime": "", "minimumUpdatePeriod": "", "timeShiftBufferDepth": "",
				"suggestedPresentationDelay": "", "UTCTiming": "",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := renderMPD(t, &tt.pres)
			if got := m.summary(); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("periods:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			utc := ""
			if m.UTCTiming != nil {
				utc = m.UTCTiming.Scheme + " " + m.UTCTiming.Value
			}
			got := map[string]string{
				"type": m.Type, "availabilityStartTime": m.AvailabilityStartTime, "publishTime": m.PublishTime,
				"mediaPresentationDuration": m.MediaPresentationDuration, "minimumUpdatePeriod": m.MinimumUpdatePeriod,
				"minBufferTime": m.MinBufferTime, "timeShiftBufferDepth": m.TimeShiftBufferDepth,
				"suggestedPresentationDelay": m.SuggestedPresentationDelay, "UTCTiming": utc,
			}
			for k, want := range tt.attrs {
				if got[k] != want {
					t.Errorf("%s = %q, want %q", k, got[k], want)
				}
			}
		})
	}
}

func TestDASHErrors(t *testing.T) {
	video := func(segs ...Segment) Rendition {
		return Rendition{Name: "v", Kind: Video, Timescale: 1000, Segments: segs}
	}
	tests := []struct {
		name string
		pres Presentation
		want error
	}{
		{"no segments", Presentation{Renditions: []Rendition{video()}}, ErrNoSegments},
		{"no renditions", Presentation{}, ErrNoSegments},
		{"live without availability start", Presentation{Live: true, Renditions: []Rendition{video(segments(0, 0, 1000)...)}}, ErrInvalid},
		{"gap in sequence numbers", Presentation{Renditions: []Rendition{video(Segment{Seq: 1, Duration: 1}, Segment{Seq: 3, Start: 1, Duration: 1})}}, ErrInvalid},
		{"overlapping segments", Presentation{Renditions: []Rendition{video(Segment{Seq: 1, Duration: 10}, Segment{Seq: 2, Start: 5, Duration: 10})}}, ErrInvalid},
		{"zero duration", Presentation{Renditions: []Rendition{video(Segment{Seq: 1})}}, ErrInvalid},
		{"zero timescale", Presentation{Renditions: []Rendition{{Name: "v", Kind: Video, Segments: segments(0, 0, 1)}}}, ErrInvalid},
		{"duplicate names", Presentation{Renditions: []Rendition{video(segments(0, 0, 1)...), video(segments(0, 0, 1)...)}}, ErrInvalid},
		{"name with a space", Presentation{Renditions: []Rendition{{Name: "hd 720", Kind: Video, Timescale: 1, Segments: segments(0, 0, 1)}}}, ErrInvalid},
		{"unknown kind", Presentation{Renditions: []Rendition{{Name: "s", Kind: "subtitle", Timescale: 1, Segments: segments(0, 0, 1)}}}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := DASH(&tt.pres, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DASH error = %v, want %v (output %s)", err, tt.want, out)
			}
			if !strings.HasPrefix(err.Error(), "dash: ") {
				t.Errorf("error %q does not name the operation", err)
			}
		})
	}
}

func TestDASHBaseURL(t *testing.T) {
	p := &Presentation{Renditions: []Rendition{{
		Name: "v", Kind: Video, Timescale: 1000, InitURI: "init.mp4", Segments: segments(0, 0, 1000),
	}}}
	tests := []struct{ base, init, media string }{
		{"720p/", "720p/init.mp4", "720p/$Number%08d$.m4s"},
		{"720p", "720p/init.mp4", "720p/$Number%08d$.m4s"},
		{"", "init.mp4", "$Number%08d$.m4s"},
		{"a$b/", "a$$b/init.mp4", "a$$b/$Number%08d$.m4s"},
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			out, err := DASH(p, func(*Rendition) string { return tt.base })
			if err != nil {
				t.Fatal(err)
			}
			var m testMPD
			if err := xml.Unmarshal(out, &m); err != nil {
				t.Fatal(err)
			}
			tpl := m.Periods[0].AdaptationSets[0].Representations[0].Template
			if tpl.Initialization != tt.init || tpl.Media != tt.media {
				t.Errorf("initialization, media = %q, %q; want %q, %q", tpl.Initialization, tpl.Media, tt.init, tt.media)
			}
		})
	}
}

func TestFrameRate(t *testing.T) {
	for in, want := range map[float64]string{
		30: "30", 29.97: "30000/1001", 30000.0 / 1001: "30000/1001", 59.94: "60000/1001",
		23.976: "24000/1001", 25: "25", 12.5: "25/2", 0: "",
	} {
		if got := frameRate(in); got != want {
			t.Errorf("frameRate(%v) = %q, want %q", in, got, want)
		}
	}
}
