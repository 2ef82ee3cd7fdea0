package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseMasterPlaylist(t *testing.T) {
	p, err := parsePlaylist([]byte("\xef\xbb\xbf#EXTM3U\r\n" +
		"#EXT-X-VERSION:6\r\n" +
		"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"a/en.m3u8\"\r\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=640x360\r\n" +
		"low/index.m3u8\r\n" +
		"#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=2000000,BANDWIDTH=2500000,RESOLUTION=1280x720,AUDIO=\"aud\"\r\n" +
		"\r\n" +
		"https://cdn.example/high/index.m3u8?token=abc\r\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720\r\n" +
		"same/index.m3u8\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.master || len(p.variants) != 3 {
		t.Fatalf("master %v, %d variants", p.master, len(p.variants))
	}
	if v := p.variants[0]; v.codecs != "avc1.4d401f,mp4a.40.2" || v.resolution != "640x360" || v.bandwidth != 800000 {
		t.Errorf("first variant %+v", v)
	}
	best, ok := p.bestVariant()
	if !ok || best.uri != "https://cdn.example/high/index.m3u8?token=abc" || best.audio != "aud" {
		t.Errorf("best variant %+v", best)
	}
}

func TestParseMediaPlaylist(t *testing.T) {
	p, err := parsePlaylist([]byte(`#EXTM3U
#EXT-X-VERSION:4
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-DISCONTINUITY-SEQUENCE:3
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00Z
#EXTINF:2.002,
seg41.ts
#EXTINF:1.5,title, with comma
#EXT-X-BYTERANGE:1000@500
all.ts
#EXT-X-BYTERANGE:700
#EXTINF:1.9
all.ts
#EXT-X-DISCONTINUITY
#EXT-X-KEY:METHOD=AES-128,URI="key.bin",IV=0x1
#EXTINF:2,
seg44.ts
#EXT-X-KEY:METHOD=NONE
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2,
seg45.m4s
#EXT-X-ENDLIST
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.master || p.targetDuration != 2*time.Second || p.mediaSequence != 41 || p.discSequence != 3 || !p.ended {
		t.Fatalf("playlist %+v", p)
	}
	want := []mediaSegment{
		{uri: "seg41.ts", seq: 41, duration: 2002 * time.Millisecond},
		{uri: "all.ts", seq: 42, duration: 1500 * time.Millisecond, rangeOffset: 500, rangeLength: 1000, hasRange: true},
		{uri: "all.ts", seq: 43, duration: 1900 * time.Millisecond, rangeOffset: 1500, rangeLength: 700, hasRange: true},
		{uri: "seg44.ts", seq: 44, duration: 2 * time.Second, discontinuity: true, keyMethod: "AES-128"},
		{uri: "seg45.m4s", seq: 45, duration: 2 * time.Second, keyMethod: "NONE", mapURI: "init.mp4"},
	}
	if len(p.segments) != len(want) {
		t.Fatalf("%d segments, want %d", len(p.segments), len(want))
	}
	for i, w := range want {
		if p.segments[i] != w {
			t.Errorf("segment %d: %+v, want %+v", i, p.segments[i], w)
		}
	}
}

func TestParsePlaylistErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "not #EXTM3U"},
		{"html", "<html>", "not #EXTM3U"},
		{"uri without tag", "#EXTM3U\nseg.ts\n", "URI without EXTINF"},
		{"bad extinf", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:abc,\nseg.ts\n", "EXTINF duration"},
		{"negative extinf", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:-1,\nseg.ts\n", "EXTINF duration"},
		{"no target duration", "#EXTM3U\n#EXTINF:2,\nseg.ts\n", "without EXT-X-TARGETDURATION"},
		{"bad bandwidth", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=x\nv.m3u8\n", "BANDWIDTH"},
		{"no bandwidth", "#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\nv.m3u8\n", "without BANDWIDTH"},
		{"variant without uri", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", "without a URI"},
		{"unterminated quote", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1\nv.m3u8\n", "unterminated"},
		{"mixed", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n#EXT-X-TARGETDURATION:2\n", "both master and media"},
		{"byterange without offset first", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-BYTERANGE:10\n#EXTINF:1,\na.ts\n", "without offset"},
		{"sequence after segment", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1,\na.ts\n#EXT-X-MEDIA-SEQUENCE:3\n", "after the first segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsePlaylist([]byte(tt.in))
			if !errors.Is(err, errPlaylist) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want errPlaylist saying %q", err, tt.want)
			}
		})
	}
}

// FuzzParsePlaylist checks that no playlist panics the parser and that
// what it accepts holds together. Seeds: testdata/fuzz/FuzzParsePlaylist
// (ffmpeg's live, VOD and byte-range playlists, a master playlist).
func FuzzParsePlaylist(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"a,b\"\nv.m3u8\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePlaylist(b)
		if err != nil {
			if !errors.Is(err, errPlaylist) {
				t.Fatalf("error %v is not errPlaylist", err)
			}
			return
		}
		if p.master {
			if len(p.variants) == 0 || len(p.segments) != 0 {
				t.Fatalf("master with %d variants, %d segments", len(p.variants), len(p.segments))
			}
			best, ok := p.bestVariant()
			if !ok || best.uri == "" {
				t.Fatalf("best variant %+v", best)
			}
			for _, v := range p.variants {
				if v.bandwidth > best.bandwidth {
					t.Fatalf("variant %+v beats the best %+v", v, best)
				}
			}
			return
		}
		for i, s := range p.segments {
			if s.seq != p.mediaSequence+uint64(i) || s.uri == "" || s.duration < 0 {
				t.Fatalf("segment %d: %+v", i, s)
			}
			if s.hasRange && (s.rangeOffset < 0 || s.rangeLength <= 0 || s.rangeOffset+s.rangeLength < s.rangeOffset) {
				t.Fatalf("segment %d range %d@%d", i, s.rangeLength, s.rangeOffset)
			}
		}
	})
}
