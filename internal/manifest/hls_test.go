package manifest

import (
	"strings"
	"testing"
	"time"
)

// segments makes a contiguous run starting at seq and start, one segment
// per duration.
func segments(seq, start uint64, durations ...uint64) []Segment {
	out := make([]Segment, len(durations))
	for i, d := range durations {
		out[i] = Segment{Seq: seq + uint64(i), Start: start, Duration: d}
		start += d
	}
	return out
}

// ladder is a 4-rung video ladder with one AAC track, 2 s segments.
func ladder() *Presentation {
	video := func(name, codecs string, peak, avg int64, w, h int) Rendition {
		return Rendition{
			Name: name, Kind: Video, Codecs: codecs, Bandwidth: peak, AverageBandwidth: avg,
			Width: w, Height: h, FrameRate: 30000.0 / 1001, Timescale: 90000,
			Segments: segments(0, 0, 180180, 180180, 180180),
		}
	}
	return &Presentation{
		TargetDuration: 2 * time.Second,
		Renditions: []Rendition{
			video("1080p", "avc1.640028", 5_400_000, 4_800_000, 1920, 1080),
			video("720p", "avc1.64001f", 3_200_000, 2_800_000, 1280, 720),
			video("480p", "avc1.64001e", 1_600_000, 1_400_000, 854, 480),
			video("360p", "avc1.64001e", 900_000, 800_000, 640, 360),
			{
				Name: "aac", Kind: Audio, Codecs: "mp4a.40.2", Bandwidth: 132_000, AverageBandwidth: 128_000,
				SampleRate: 48000, Channels: 2, Language: "en", Timescale: 48000,
				Segments: segments(0, 0, 96256, 96256, 96256),
			},
		},
	}
}

func TestHLSMaster(t *testing.T) {
	const golden = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="aac",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="aac/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=5532000,AVERAGE-BANDWIDTH=4928000,RESOLUTION=1920x1080,CODECS="avc1.640028,mp4a.40.2",FRAME-RATE=29.970,AUDIO="audio"
1080p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3332000,AVERAGE-BANDWIDTH=2928000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",FRAME-RATE=29.970,AUDIO="audio"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1732000,AVERAGE-BANDWIDTH=1528000,RESOLUTION=854x480,CODECS="avc1.64001e,mp4a.40.2",FRAME-RATE=29.970,AUDIO="audio"
480p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1032000,AVERAGE-BANDWIDTH=928000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",FRAME-RATE=29.970,AUDIO="audio"
360p/index.m3u8
`
	tests := []struct {
		name     string
		pres     func() *Presentation
		mediaURI func(r *Rendition) string
		want     string   // whole playlist when set
		contains []string // lines that must be present
		absent   []string // substrings that must not be present
	}{
		{
			name:     "4 video + 1 audio golden",
			pres:     ladder,
			mediaURI: func(r *Rendition) string { return r.Name + "/index.m3u8" },
			want:     golden,
		},
		{
			name: "nil mediaURI defaults to Name/index.m3u8",
			pres: ladder,
			want: golden,
		},
		{
			name: "video only has no audio group",
			pres: func() *Presentation {
				p := ladder()
				p.Renditions = p.Renditions[:1]
				return p
			},
			contains: []string{
				`#EXT-X-STREAM-INF:BANDWIDTH=5400000,AVERAGE-BANDWIDTH=4800000,RESOLUTION=1920x1080,CODECS="avc1.640028",FRAME-RATE=29.970`,
			},
			absent: []string{"AUDIO=", "#EXT-X-MEDIA:"},
		},
		{
			name: "audio only becomes audio-only variants",
			pres: func() *Presentation {
				p := ladder()
				p.Renditions = p.Renditions[4:]
				return p
			},
			want: "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
				`#EXT-X-STREAM-INF:BANDWIDTH=132000,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2"` + "\naac/index.m3u8\n",
		},
		{
			name: "two audio tracks: one default, bandwidth covers the heavier, codecs listed once",
			pres: func() *Presentation {
				p := ladder()
				p.Renditions = p.Renditions[3:]
				de := p.Renditions[1]
				de.Name, de.Language, de.Bandwidth, de.AverageBandwidth, de.Channels = "aac-de", "de", 200_000, 190_000, 6
				p.Renditions = append(p.Renditions, de)
				return p
			},
			contains: []string{
				`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="aac",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="aac/index.m3u8"`,
				`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="aac-de",LANGUAGE="de",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="6",URI="aac-de/index.m3u8"`,
				`#EXT-X-STREAM-INF:BANDWIDTH=1100000,AVERAGE-BANDWIDTH=990000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",FRAME-RATE=29.970,AUDIO="audio"`,
			},
		},
		{
			name: "unknown fields are left out and quotes cannot break out",
			pres: func() *Presentation {
				return &Presentation{Renditions: []Rendition{
					{Name: "v", Kind: Video, Bandwidth: 1000},
					{Name: "a\"b\nc", Kind: Audio, Bandwidth: 10},
				}}
			},
			mediaURI: func(r *Rendition) string { return "x.m3u8" },
			want: "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
				`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="abc",DEFAULT=YES,AUTOSELECT=YES,URI="x.m3u8"` + "\n" +
				`#EXT-X-STREAM-INF:BANDWIDTH=1010,AUDIO="audio"` + "\nx.m3u8\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(HLSMaster(tt.pres(), tt.mediaURI))
			if tt.want != "" && got != tt.want {
				t.Errorf("playlist mismatch\ngot:\n%s\nwant:\n%s", got, tt.want)
			}
			lines := strings.Split(got, "\n")
			for _, c := range tt.contains {
				if !contains(lines, c) {
					t.Errorf("missing line %q in\n%s", c, got)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("unexpected %q in\n%s", a, got)
				}
			}
		})
	}
}

func contains(lines []string, line string) bool {
	for _, l := range lines {
		if l == line {
			return true
		}
	}
	return false
}

func TestHLSMedia(t *testing.T) {
	pdt := time.Date(2025, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	tests := []struct {
		name string
		pres Presentation
		r    Rendition
		want string
	}{
		{
			name: "VOD",
			pres: Presentation{TargetDuration: 2 * time.Second},
			r:    Rendition{Timescale: 90000, Segments: segments(0, 0, 180000, 180000, 135000)},
			want: `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2.000,
00000000.m4s
#EXTINF:2.000,
00000001.m4s
#EXTINF:1.500,
00000002.m4s
#EXT-X-ENDLIST
`,
		},
		{
			name: "live window",
			pres: Presentation{Live: true, TargetDuration: 2 * time.Second},
			r:    Rendition{Timescale: 1000, InitURI: "v1/init.mp4", Segments: segments(120, 240000, 2000, 2000)},
			want: `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:120
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="v1/init.mp4"
#EXTINF:2.000,
00000120.m4s
#EXTINF:2.000,
00000121.m4s
`,
		},
		{
			name: "live ended",
			pres: Presentation{Live: true, Ended: true, TargetDuration: 2 * time.Second},
			r:    Rendition{Timescale: 1000, Segments: segments(120, 240000, 2000, 700)},
			want: `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:120
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2.000,
00000120.m4s
#EXTINF:0.700,
00000121.m4s
#EXT-X-ENDLIST
`,
		},
		{
			name: "live without segments yet",
			pres: Presentation{Live: true, TargetDuration: 2 * time.Second},
			r:    Rendition{Timescale: 1000},
			want: "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n",
		},
		{
			name: "reconnect: discontinuity, repeated map, discontinuity sequence, program date time",
			pres: Presentation{Live: true, TargetDuration: 2 * time.Second, DiscontinuitySequence: 3},
			r: Rendition{Timescale: 1000, Segments: []Segment{
				{Seq: 40, Start: 80000, Duration: 2000, ProgramDateTime: pdt},
				{Seq: 41, Start: 82000, Duration: 1000, URI: "../old/00000041.m4s"},
				{Seq: 42, Start: 95000, Duration: 2000, Discontinuity: true, ProgramDateTime: pdt.Add(15 * time.Second)},
				{Seq: 43, Start: 97000, Duration: 2000},
			}},
			want: `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:40
#EXT-X-DISCONTINUITY-SEQUENCE:3
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T12:00:00.500Z
#EXTINF:2.000,
00000040.m4s
#EXTINF:1.000,
../old/00000041.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2025-03-01T12:00:15.500Z
#EXTINF:2.000,
00000042.m4s
#EXTINF:2.000,
00000043.m4s
`,
		},
		{
			name: "window opening on a discontinuity",
			pres: Presentation{Live: true, TargetDuration: 2 * time.Second, DiscontinuitySequence: 1},
			r: Rendition{Timescale: 1000, Segments: []Segment{
				{Seq: 7, Start: 0, Duration: 2000, Discontinuity: true},
			}},
			want: `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2.000,
00000007.m4s
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(HLSMedia(&tt.pres, &tt.r))
			if got != tt.want {
				t.Errorf("playlist mismatch\ngot:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestHLSTargetDuration(t *testing.T) {
	tests := []struct {
		name      string
		target    time.Duration
		timescale uint32
		durations []uint64
		want      string
	}{
		{"exact 2 s", 2 * time.Second, 90000, []uint64{180000, 180000}, "#EXT-X-TARGETDURATION:2"},
		{"one tick over rounds up", 2 * time.Second, 90000, []uint64{180000, 180001}, "#EXT-X-TARGETDURATION:3"},
		{"29.97 fps GOP of 60 frames", 2 * time.Second, 90000, []uint64{180180}, "#EXT-X-TARGETDURATION:3"},
		{"nominal above segments wins", 4 * time.Second, 1000, []uint64{2000, 2000}, "#EXT-X-TARGETDURATION:4"},
		{"fractional nominal rounds up", 1500 * time.Millisecond, 1000, []uint64{1500}, "#EXT-X-TARGETDURATION:2"},
		{"long segment wins", 2 * time.Second, 48000, []uint64{96000, 288000}, "#EXT-X-TARGETDURATION:6"},
		{"no nominal, no segments", 0, 1000, nil, "#EXT-X-TARGETDURATION:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Presentation{TargetDuration: tt.target}
			r := Rendition{Timescale: tt.timescale, Segments: segments(0, 0, tt.durations...)}
			lines := strings.Split(string(HLSMedia(&p, &r)), "\n")
			if !contains(lines, tt.want) {
				t.Errorf("want %q in %q", tt.want, lines)
			}
		})
	}
}

func TestSegmentName(t *testing.T) {
	for seq, want := range map[uint64]string{0: "00000000.m4s", 42: "00000042.m4s", 123456789: "123456789.m4s"} {
		if got := SegmentName(seq); got != want {
			t.Errorf("SegmentName(%d) = %q, want %q", seq, got, want)
		}
	}
}

func TestMeasureBandwidth(t *testing.T) {
	tests := []struct {
		name      string
		sizes     []int64
		durations []float64
		peak, avg int64
	}{
		{"empty", nil, nil, 0, 0},
		{"even", []int64{250_000, 250_000}, []float64{2, 2}, 1_000_000, 1_000_000},
		{"peak from the short heavy segment", []int64{500_000, 100_000}, []float64{2, 0.5}, 2_000_000, 1_920_000},
		{"rounds up", []int64{1}, []float64{3}, 3, 3},
		{"skips zero durations and unmatched sizes", []int64{100, 1000, 7}, []float64{1, 0}, 800, 800},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peak, avg := MeasureBandwidth(tt.sizes, tt.durations)
			if peak != tt.peak || avg != tt.avg {
				t.Errorf("MeasureBandwidth = %d, %d; want %d, %d", peak, avg, tt.peak, tt.avg)
			}
		})
	}
}
