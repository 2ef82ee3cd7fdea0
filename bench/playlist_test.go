package bench

import (
	"errors"
	"testing"
)

// masterSample is the multivariant playlist a livegrid origin serves.
const masterSample = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="1",URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=903074,AVERAGE-BANDWIDTH=491367,RESOLUTION=640x360,CODECS="avc1.42c01e,mp4a.40.2",FRAME-RATE=30.000,AUDIO="audio"
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=303074,AVERAGE-BANDWIDTH=271999,RESOLUTION=320x180,CODECS="avc1.42c00d,mp4a.40.2",FRAME-RATE=30.000,AUDIO="audio"
180p/index.m3u8
`

const mediaSample = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:3
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T06:05:27.600Z
#EXTINF:2.000,
00000041.m4s
#EXTINF:2.002,
00000042.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init-1.mp4"
#EXTINF:1.5,
00000043.m4s
`

func TestParseMasterPlaylist(t *testing.T) {
	m, err := ParseMasterPlaylist([]byte(masterSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Variants) != 2 {
		t.Fatalf("%d variants, want 2", len(m.Variants))
	}
	v := m.Variants[0]
	if v.URI != "360p/index.m3u8" || v.Name != "360p" || v.Bandwidth != 903074 || v.Resolution != "640x360" ||
		v.Codecs != "avc1.42c01e,mp4a.40.2" || v.Audio != "audio" {
		t.Errorf("variant 0 = %+v", v)
	}
	if m.Variants[1].Name != "180p" || m.Variants[1].Bandwidth != 303074 {
		t.Errorf("variant 1 = %+v", m.Variants[1])
	}
	if got := m.AudioFor(v); got != "audio/index.m3u8" {
		t.Errorf("AudioFor = %q", got)
	}
	if got := m.AudioFor(Variant{Audio: "other"}); got != "" {
		t.Errorf("AudioFor an unknown group = %q", got)
	}
}

func TestParseMediaPlaylist(t *testing.T) {
	p, err := ParseMediaPlaylist([]byte(mediaSample))
	if err != nil {
		t.Fatal(err)
	}
	if p.TargetDuration != 3 || p.MediaSequence != 41 || p.Ended || len(p.Segments) != 3 {
		t.Fatalf("playlist %+v", p)
	}
	want := []PlaylistSegment{
		{Seq: 41, URI: "00000041.m4s", Duration: 2, Map: "init.mp4"},
		{Seq: 42, URI: "00000042.m4s", Duration: 2.002, Map: "init.mp4"},
		{Seq: 43, URI: "00000043.m4s", Duration: 1.5, Discontinuity: true, Map: "init-1.mp4"},
	}
	for i, s := range p.Segments {
		if s != want[i] {
			t.Errorf("segment %d = %+v, want %+v", i, s, want[i])
		}
	}
	ended, err := ParseMediaPlaylist([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.m4s\n#EXT-X-ENDLIST\n"))
	if err != nil || !ended.Ended || ended.Segments[0].Seq != 0 {
		t.Errorf("ended playlist %+v, %v", ended, err)
	}
}

func TestParsePlaylistErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		master     bool
	}{
		{"not a playlist", "<html>", false},
		{"empty", "", false},
		{"no variants", "#EXTM3U\n#EXT-X-VERSION:7\n", true},
		{"bad extinf", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:abc,\na.m4s\n", false},
		{"negative extinf", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:-1,\na.m4s\n", false},
		{"segment without extinf", "#EXTM3U\n#EXT-X-TARGETDURATION:2\na.m4s\n", false},
		{"no target duration", "#EXTM3U\n#EXTINF:2,\na.m4s\n", false},
		{"bad media sequence", "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.master {
				_, err = ParseMasterPlaylist([]byte(tc.body))
			} else {
				_, err = ParseMediaPlaylist([]byte(tc.body))
			}
			if !errors.Is(err, ErrPlaylist) {
				t.Errorf("err = %v, want ErrPlaylist", err)
			}
		})
	}
}

func TestParseAttrs(t *testing.T) {
	got := parseAttrs(`BANDWIDTH=1,CODECS="avc1.4d401f,mp4a.40.2",NAME="a=b",RES=1x2,BROKEN="open`)
	want := map[string]string{"BANDWIDTH": "1", "CODECS": "avc1.4d401f,mp4a.40.2", "NAME": "a=b", "RES": "1x2", "BROKEN": "open"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

func TestRenditionName(t *testing.T) {
	for in, want := range map[string]string{
		"360p/index.m3u8":                 "360p",
		"/live/s/720p/index.m3u8?token=x": "720p",
		"low.m3u8":                        "low",
		"http://cdn/x/1080p/index.m3u8":   "1080p",
	} {
		if got := renditionName(in); got != want {
			t.Errorf("renditionName(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseMasterPlaylist(f *testing.F) {
	f.Add([]byte(masterSample))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMasterPlaylist(b)
		if err == nil && len(m.Variants) == 0 {
			t.Error("no error and no variants")
		}
	})
}

func FuzzParseMediaPlaylist(f *testing.F) {
	f.Add([]byte(mediaSample))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseMediaPlaylist(b)
		if err != nil {
			return
		}
		for i, s := range p.Segments {
			if s.Seq != p.MediaSequence+uint64(i) || s.Duration < 0 {
				t.Errorf("segment %d = %+v", i, s)
			}
		}
	})
}
