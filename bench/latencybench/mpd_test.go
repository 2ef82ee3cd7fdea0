package latencybench

import (
	"errors"
	"testing"
)

// mpdSample is what a livegrid origin served for a live stream.
const mpdSample = `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019" type="dynamic" availabilityStartTime="2026-11-24T06:05:27.579Z" publishTime="2026-11-24T06:05:39.154Z" minimumUpdatePeriod="PT2.005333333S" minBufferTime="PT4.010666666S" timeShiftBufferDepth="PT12.010333333S" suggestedPresentationDelay="PT6.015999999S">
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1" maxWidth="640" maxHeight="360" maxFrameRate="30">
      <Representation id="360p" mimeType="video/mp4" codecs="avc1.42c01e" bandwidth="800000" width="640" height="360" frameRate="30">
        <SegmentTemplate timescale="90000" initialization="360p/init.mp4" media="360p/$Number%08d$.m4s" startNumber="0">
          <SegmentTimeline>
            <S t="1890" d="180000" r="5"></S>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
      <Representation id="180p" mimeType="video/mp4" codecs="avc1.42c00d" bandwidth="200000" width="320" height="180" frameRate="30">
        <SegmentTemplate timescale="90000" initialization="180p/init.mp4" media="180p/$Number%08d$.m4s" startNumber="0">
          <SegmentTimeline>
            <S t="1890" d="180000" r="5"></S>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" segmentAlignment="true" startWithSAP="1">
      <Representation id="audio" mimeType="audio/mp4" codecs="mp4a.40.2" bandwidth="103074" audioSamplingRate="48000">
        <SegmentTemplate timescale="48000" initialization="audio/init.mp4" media="audio/$Number%08d$.m4s" startNumber="0">
          <SegmentTimeline>
            <S t="1008" d="96256"></S>
            <S d="96240"></S>
            <S t="193536" d="96256"></S>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="2026-11-24T06:05:39.154Z"></UTCTiming>
</MPD>`

func TestParseMPD(t *testing.T) {
	reps, err := ParseMPD([]byte(mpdSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 3 {
		t.Fatalf("%d representations, want 3", len(reps))
	}
	v := reps[0]
	if v.ID != "360p" || v.ContentType != "video" || v.Timescale != 90000 || v.Bandwidth != 800000 || v.Initialization != "360p/init.mp4" || len(v.Segments) != 6 {
		t.Fatalf("video %+v", v)
	}
	if s := v.Segments[5]; s.Number != 5 || s.Time != 1890+5*180000 || s.Duration != 180000 {
		t.Errorf("last video segment %+v", s)
	}
	a := reps[2]
	want := []DashSegment{{0, 1008, 96256}, {1, 97264, 96240}, {2, 193536, 96256}}
	if a.ContentType != "audio" || len(a.Segments) != 3 {
		t.Fatalf("audio %+v", a)
	}
	for i, s := range a.Segments {
		if s != want[i] {
			t.Errorf("audio segment %d = %+v, want %+v", i, s, want[i])
		}
	}
	if r, ok := pickRepresentation(reps, ""); !ok || r.ID != "360p" {
		t.Errorf("default pick %q", r.ID)
	}
	if r, ok := pickRepresentation(reps, "180p"); !ok || r.ID != "180p" {
		t.Errorf("named pick %q", r.ID)
	}
}

func TestParseMPDErrors(t *testing.T) {
	for name, body := range map[string]string{
		"not xml":        "{}",
		"no period":      `<MPD></MPD>`,
		"no timeline":    `<MPD><Period><AdaptationSet><Representation id="a"><SegmentTemplate media="x"/></Representation></AdaptationSet></Period></MPD>`,
		"zero duration":  `<MPD><Period><AdaptationSet><SegmentTemplate media="x"><SegmentTimeline><S d="0"/></SegmentTimeline></SegmentTemplate><Representation id="a"/></AdaptationSet></Period></MPD>`,
		"huge repeat":    `<MPD><Period><AdaptationSet><SegmentTemplate media="x"><SegmentTimeline><S d="1" r="9999999999"/></SegmentTimeline></SegmentTemplate><Representation id="a"/></AdaptationSet></Period></MPD>`,
		"repeats add up": `<MPD><Period><AdaptationSet><SegmentTemplate media="x"><SegmentTimeline><S d="1" r="60000"/><S d="1" r="60000"/></SegmentTimeline></SegmentTemplate><Representation id="a"/></AdaptationSet></Period></MPD>`,
	} {
		if _, err := ParseMPD([]byte(body)); !errors.Is(err, ErrMPD) {
			t.Errorf("%s: err = %v, want ErrMPD", name, err)
		}
	}
	// A template on the adaptation set serves its representations; the
	// last period is the live one.
	reps, err := ParseMPD([]byte(`<MPD><BaseURL>http://cdn/x/</BaseURL><Period/><Period><BaseURL>p2/</BaseURL><AdaptationSet mimeType="video/mp4"><SegmentTemplate media="$RepresentationID$/$Time$.m4s" timescale="1000" startNumber="7"><SegmentTimeline><S t="10" d="5" r="-1"/></SegmentTimeline></SegmentTemplate><Representation id="v"/></AdaptationSet></Period></MPD>`))
	if err != nil || len(reps) != 1 || reps[0].ContentType != "video" || reps[0].BaseURL != "http://cdn/x/p2/" || reps[0].Segments[0] != (DashSegment{7, 10, 5}) {
		t.Errorf("adaptation-set template: %+v, %v", reps, err)
	}
}

func TestExpandTemplate(t *testing.T) {
	for _, tc := range []struct {
		tmpl, want string
	}{
		{"$RepresentationID$/$Number%08d$.m4s", "360p/00000042.m4s"},
		{"$RepresentationID$/$Number$.m4s", "360p/42.m4s"},
		{"seg-$Time$-$Bandwidth$.m4s", "seg-1890-800000.m4s"},
		{"a$$b", "a$b"},
		{"$Number%3d$", "042"},
	} {
		got, err := ExpandTemplate(tc.tmpl, "360p", 42, 1890, 800000)
		if err != nil || got != tc.want {
			t.Errorf("ExpandTemplate(%q) = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
	for _, bad := range []string{"$Number", "$Foo$", "$Number%x$", "$Number%99d$"} {
		if _, err := ExpandTemplate(bad, "a", 1, 1, 1); !errors.Is(err, ErrMPD) {
			t.Errorf("ExpandTemplate(%q) err = %v", bad, err)
		}
	}
}

func FuzzParseMPD(f *testing.F) {
	f.Add([]byte(mpdSample))
	f.Fuzz(func(t *testing.T, b []byte) {
		reps, err := ParseMPD(b)
		if err != nil {
			return
		}
		for _, r := range reps {
			if len(r.Segments) > maxTimelineSegments || r.Timescale == 0 {
				t.Errorf("representation %q: %d segments, timescale %d", r.ID, len(r.Segments), r.Timescale)
			}
			for i := 1; i < len(r.Segments); i++ {
				if r.Segments[i].Number != r.Segments[i-1].Number+1 {
					t.Errorf("numbers %d then %d", r.Segments[i-1].Number, r.Segments[i].Number)
				}
			}
		}
	})
}

func FuzzExpandTemplate(f *testing.F) {
	f.Add("$RepresentationID$/$Number%08d$.m4s", "360p", uint64(1), uint64(2))
	f.Fuzz(func(t *testing.T, tmpl, id string, n, tm uint64) {
		_, _ = ExpandTemplate(tmpl, id, n, tm, 1)
	})
}
