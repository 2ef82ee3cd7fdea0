package flvrelay

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/livegrid/livegrid/internal/flv"
)

// Synthetic tags whose bodies flv.ParseVideo and flv.ParseAudio read as
// H.264 and AAC.
func metaTag(ts uint32) flv.Tag {
	b, err := flv.EncodeMetadata(flv.ECMAArray{{Key: "width", Value: 320.0}})
	if err != nil {
		panic(err)
	}
	return flv.Tag{Type: flv.TagScript, Timestamp: ts, Data: b}
}

func avcHeader(ts uint32) flv.Tag {
	return flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f}}
}

func keyframe(ts uint32) flv.Tag {
	return flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65}}
}

func interFrame(ts uint32) flv.Tag {
	return flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41}}
}

// withCTS sets a video frame's composition time.
func withCTS(t flv.Tag, ms int) flv.Tag {
	t.Data = append([]byte(nil), t.Data...)
	t.Data[2], t.Data[3], t.Data[4] = byte(ms>>16), byte(ms>>8), byte(ms)
	return t
}

func endOfSequence(ts uint32) flv.Tag {
	return flv.Tag{Type: flv.TagVideo, Timestamp: ts, Data: []byte{0x17, 2, 0, 0, 0}}
}

func aacHeader(ts uint32) flv.Tag {
	return flv.Tag{Type: flv.TagAudio, Timestamp: ts, Data: []byte{0xaf, 0, 0x12, 0x10}}
}

func aacFrame(ts uint32) flv.Tag {
	return flv.Tag{Type: flv.TagAudio, Timestamp: ts, Data: []byte{0xaf, 1, 0x21, 0x10, 0x04}}
}

// step is a tag from the current upstream, or (tag.Type 0) the switch to
// a new upstream of a stream that has carried video or not.
type step struct {
	tag   flv.Tag
	video bool
}

func next(video bool) step { return step{video: video} }

func TestTimeline(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []string // label@timestamp of each tag passed on, "-" for one left out
	}{
		{
			name:  "first upstream passes through",
			steps: []step{{tag: metaTag(0)}, {tag: avcHeader(0)}, {tag: aacHeader(0)}, {tag: keyframe(1000)}, {tag: aacFrame(1010)}, {tag: interFrame(1040)}},
			want:  []string{"meta@0", "avc-hdr@0", "aac-hdr@0", "key@1000", "audio@1010", "video@1040"},
		},
		{
			name: "next upstream continues one frame after the last",
			steps: []step{{tag: keyframe(1000)}, {tag: interFrame(1040)}, {tag: interFrame(1080)},
				next(true), {tag: metaTag(0)}, {tag: avcHeader(500)}, {tag: keyframe(500)}, {tag: interFrame(540)}, {tag: aacFrame(530)}, {tag: aacFrame(560)}},
			want: []string{"key@1000", "video@1040", "video@1080",
				"meta@1080", "avc-hdr@1080", "key@1120", "video@1160", "audio@1160", "audio@1180"},
		},
		{
			name: "frames before the next upstream's keyframe are left out",
			steps: []step{{tag: keyframe(0)}, {tag: interFrame(33)},
				next(true), {tag: interFrame(900)}, {tag: aacFrame(905)}, {tag: keyframe(1000)}, {tag: aacFrame(1001)}},
			want: []string{"key@0", "video@33", "-", "-", "key@66", "audio@67"},
		},
		{
			name:  "audio-only stream does not wait for a keyframe",
			steps: []step{{tag: aacHeader(0)}, {tag: aacFrame(0)}, {tag: aacFrame(23)}, next(false), {tag: aacHeader(7000)}, {tag: aacFrame(7000)}},
			want:  []string{"aac-hdr@0", "audio@0", "audio@23", "aac-hdr@23", "audio@63"},
		},
		{
			name:  "end of sequence is left out",
			steps: []step{{tag: keyframe(0)}, {tag: endOfSequence(40)}, {tag: keyframe(80)}},
			want:  []string{"key@0", "-", "key@80"},
		},
		{
			name:  "never back within an upstream",
			steps: []step{{tag: keyframe(1000)}, {tag: aacFrame(990)}, {tag: interFrame(1040)}},
			want:  []string{"key@1000", "audio@1000", "video@1040"},
		},
		{
			name: "an upstream that failed before its first frame",
			steps: []step{{tag: keyframe(0)}, {tag: interFrame(40)},
				next(true), {tag: metaTag(9)}, next(true), {tag: keyframe(100)}},
			want: []string{"key@0", "video@40", "meta@40", "key@80"},
		},
		{
			name: "B-frames: the next upstream's first picture is shown after the last one",
			steps: []step{{tag: withCTS(keyframe(0), 80)}, {tag: withCTS(interFrame(40), 120)}, {tag: withCTS(interFrame(80), 0)},
				next(true), {tag: withCTS(keyframe(3000), 40)}, {tag: withCTS(interFrame(3040), 80)}},
			want: []string{"key@0", "video@40", "video@80", "key@160", "video@200"},
		},
		{
			name: "first upstream sent headers alone",
			steps: []step{{tag: metaTag(5000)}, {tag: avcHeader(5000)},
				next(true), {tag: metaTag(0)}, {tag: avcHeader(0)}, {tag: keyframe(0)}, {tag: interFrame(40)}},
			want: []string{"meta@5000", "avc-hdr@5000", "meta@5000", "avc-hdr@5000", "key@5000", "video@5040"},
		},
		{
			name:  "next upstream far behind",
			steps: []step{{tag: keyframe(90000)}, next(true), {tag: keyframe(5)}, {tag: interFrame(45)}},
			want:  []string{"key@90000", "key@90040", "video@90080"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tl timeline
			var got []string
			for _, s := range tt.steps {
				if s.tag.Type == 0 {
					tl.next(s.video)
					continue
				}
				out, _, ok := tl.stamp(s.tag)
				if !ok {
					got = append(got, "-")
					continue
				}
				got = append(got, describe(out).label+"@"+strconv.FormatUint(uint64(out.Timestamp), 10))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		path   string
		ok     bool
		key    string
		stream string // as viewer stats name it
	}{
		{"/live/cam.flv", true, "cam", "cam"},
		{"/live/cam/720p.flv", true, "cam__720p", "cam/720p"},
		{"/live/my-cam_2.x.flv", true, "my-cam_2.x", "my-cam_2.x"},
		{"/live/cam", false, "", ""},
		{"/live/.flv", false, "", ""},
		{"/live/cam/.flv", false, "", ""},
		{"/live/cam/a/b.flv", false, "", ""},
		{"/live/../cam.flv", false, "", ""},
		{"/live/.hidden.flv", false, "", ""},
		{"/other/cam.flv", false, "", ""},
		{"/live/cam/index.m3u8", false, "", ""},
		{"/live/c%20m.flv", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			sp, ok := parsePath("/live/", tt.path)
			if ok != tt.ok || sp.key() != tt.key && ok || sp.String() != tt.stream && ok {
				t.Errorf("parsePath(%q) = %q (key %q), %v; want %q (key %q), %v", tt.path, sp, sp.key(), ok, tt.stream, tt.key, tt.ok)
			}
			if ok && sp.upstreamPath("/live/") != tt.path {
				t.Errorf("upstream path %q, want %q", sp.upstreamPath("/live/"), tt.path)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no origin", Config{}, "'origins' must name at least one origin"},
		{"not a URL", Config{Origins: []string{"http://a:1", "::"}}, "'origins[1]'"},
		{"no scheme", Config{Origins: []string{"origin-1:8080"}}, "'origins[0]' must be an http or https URL"},
		{"query", Config{Origins: []string{"http://origin-1:8080/?token=x"}}, "'origins[0]' must have no query"},
		{"negative", Config{Origins: []string{"http://o"}, Linger: -1}, "'linger' must not be negative"},
		{"prefix", Config{Origins: []string{"http://o"}, Prefix: "live"}, "'prefix' must start and end with '/'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg)
			if err == nil {
				_ = r.Close()
				t.Fatalf("New accepted %+v", tt.cfg)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
	r, err := New(Config{Origins: []string{"http://origin-1:8080/", "https://origin-2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if want := []string{"http://origin-1:8080", "https://origin-2"}; !slices.Equal(r.origins, want) {
		t.Errorf("origins %q, want %q", r.origins, want)
	}
}
