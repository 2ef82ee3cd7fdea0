package profiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBuiltinMatchesFile(t *testing.T) {
	if got, want := BuiltinNames(), []string{"default", "hevc", "mobile"}; !slices.Equal(got, want) {
		t.Fatalf("BuiltinNames() = %v, want %v", got, want)
	}
	for _, name := range BuiltinNames() {
		t.Run(name, func(t *testing.T) {
			builtin, err := Builtin(name)
			if err != nil {
				t.Fatal(err)
			}
			if builtin.Source != "builtin:"+name || builtin.Name != name {
				t.Errorf("Source, Name = %q, %q", builtin.Source, builtin.Name)
			}
			file, err := Load(name + ".yaml")
			if err != nil {
				t.Fatal(err)
			}
			if err := file.Validate(); err != nil {
				t.Fatal(err)
			}
			file.Source = builtin.Source
			if !reflect.DeepEqual(builtin, file) {
				t.Errorf("Builtin(%q) != Load(%q)", name, name+".yaml")
			}
		})
	}
}

// Every shipped file opens with a comment block that documents every key.
func TestBuiltinFilesDocumentEveryKey(t *testing.T) {
	var keys []string
	for _, v := range []any{rawLadder{}, rawAudio{}, rawRung{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			keys = append(keys, typ.Field(i).Tag.Get("yaml"))
		}
	}
	for _, name := range BuiltinNames() {
		t.Run(name, func(t *testing.T) {
			data, err := builtinFS.ReadFile(name + ".yaml")
			if err != nil {
				t.Fatal(err)
			}
			header, _, _ := strings.Cut(string(data), "\n\n")
			for _, key := range keys {
				if !regexp.MustCompile(`(?m)^#\s+` + key + `\s`).MatchString(header) {
					t.Errorf("header does not document %q", key)
				}
			}
		})
	}
}

func TestDefaultLadder(t *testing.T) {
	l, err := Builtin("default")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name             string
		height           int
		bitrate, maxrate int64
		bufsize          int64
		profile          string
	}{
		{"1080p", 1080, 5_000_000, 5_500_000, 10_000_000, "high"},
		{"720p", 720, 3_000_000, 3_300_000, 6_000_000, "high"},
		{"480p", 480, 1_500_000, 1_650_000, 3_000_000, "main"},
		{"360p", 360, 800_000, 880_000, 1_600_000, "main"},
	}
	if len(l.Rungs) != len(want) {
		t.Fatalf("%d rungs, want %d", len(l.Rungs), len(want))
	}
	for i, w := range want {
		t.Run(w.name, func(t *testing.T) {
			r := l.Rungs[i]
			got := fmt.Sprint(r.Name, r.Height, r.Bitrate, r.MaxRate, r.BufSize, r.Codec, r.Preset, r.Profile, r.Encoders)
			exp := fmt.Sprint(w.name, w.height, w.bitrate, w.maxrate, w.bufsize, CodecH264, "veryfast", w.profile, DefaultEncoderOrder)
			if got != exp {
				t.Errorf("got  %s\nwant %s", got, exp)
			}
		})
	}
	if l.GOP != 2*time.Second || l.Cascade != CascadeAuto || l.Audio != (Audio{"aac", 128_000, 48000, 2}) {
		t.Errorf("GOP, Cascade, Audio = %v, %q, %+v", l.GOP, l.Cascade, l.Audio)
	}
}

// Defaults left to the file: the mobile and hevc ladders omit maxrate,
// bufsize and encoders.
func TestRungDefaults(t *testing.T) {
	l := mustParse(t, "name: t\nrungs:\n  - {name: a, height: 720, bitrate: 1.5M}\n")
	r := l.Rungs[0]
	if r.MaxRate != 1_650_000 || r.BufSize != 3_000_000 || r.Codec != CodecH264 || !slices.Equal(r.Encoders, DefaultEncoderOrder) {
		t.Errorf("got %+v", r)
	}
	r.Encoders[0] = EncoderSoftware
	if DefaultEncoderOrder[0] != EncoderNVENC {
		t.Error("a rung's Encoders aliases DefaultEncoderOrder")
	}
}

func TestParseRefusesBadLadders(t *testing.T) {
	// rungs builds a valid two-rung list with extra lines appended to the first rung.
	rungs := func(extra ...string) string {
		s := "rungs:\n  - name: hi\n    height: 720\n    bitrate: 3M\n"
		for _, e := range extra {
			s += "    " + e + "\n"
		}
		return s + "  - name: lo\n    height: 360\n    bitrate: 800k\n"
	}
	ok := "name: t\n" + rungs()
	tests := []struct {
		name string
		yaml string
		key  string // "" when the error names no key
	}{
		{"unknown top-level key", "colour: red\n" + ok, "colour"},
		{"unknown rung key", "name: t\n" + rungs("bitrat: 5M"), "rungs[0].bitrat"},
		{"unknown audio key", ok + "audio:\n  volume: 11\n", "audio.volume"},
		{"repeated key", ok + "name: u\n", "name"},
		{"missing name", rungs(), "name"},
		{"bad name", "name: Default!\n" + rungs(), "name"},
		{"duplicate rung names", "name: t\nrungs:\n  - {name: a, height: 720, bitrate: 3M}\n  - {name: a, height: 360, bitrate: 1M}\n", "rungs[1].name"},
		{"missing rung name", "name: t\nrungs:\n  - {height: 720, bitrate: 3M}\n", "rungs[0].name"},
		{"rung name with slash", "name: t\nrungs:\n  - {name: a/b, height: 720, bitrate: 3M}\n", "rungs[0].name"},
		{"equal heights", "name: t\nrungs:\n  - {name: a, height: 720, bitrate: 3M}\n  - {name: b, height: 720, bitrate: 1M}\n", "rungs[1].height"},
		{"increasing heights", "name: t\nrungs:\n  - {name: a, height: 360, bitrate: 3M}\n  - {name: b, height: 720, bitrate: 1M}\n", "rungs[1].height"},
		{"odd height", "name: t\nrungs:\n  - {name: a, height: 721, bitrate: 3M}\n", "rungs[0].height"},
		{"height too small", "name: t\nrungs:\n  - {name: a, height: 32, bitrate: 3M}\n", "rungs[0].height"},
		{"missing height", "name: t\nrungs:\n  - {name: a, bitrate: 3M}\n", "rungs[0].height"},
		{"width not a number", "name: t\n" + rungs("width: abc"), "rungs[0].width"},
		{"odd width", "name: t\n" + rungs("width: 1279"), "rungs[0].width"},
		{"width below height", "name: t\n" + rungs("width: 640"), "rungs[0].width"},
		{"bad bitrate string", "name: t\nrungs:\n  - {name: a, height: 720, bitrate: 5x}\n", "rungs[0].bitrate"},
		{"missing bitrate", "name: t\nrungs:\n  - {name: a, height: 720}\n", "rungs[0].bitrate"},
		{"bitrate a list", "name: t\nrungs:\n  - {name: a, height: 720, bitrate: [5M]}\n", "rungs[0].bitrate"},
		{"maxrate below bitrate", "name: t\n" + rungs("maxrate: 2M"), "rungs[0].maxrate"},
		{"bufsize below maxrate/4", "name: t\n" + rungs("bufsize: 100k"), "rungs[0].bufsize"},
		{"unknown codec", "name: t\n" + rungs("codec: vp9"), "rungs[0].codec"},
		{"av1 preset on h264", "name: t\n" + rungs("preset: 8"), "rungs[0].preset"},
		{"x264 preset on av1", "name: t\n" + rungs("codec: av1", "preset: veryfast"), "rungs[0].preset"},
		{"av1 preset out of range", "name: t\n" + rungs("codec: av1", "preset: 14"), "rungs[0].preset"},
		{"h264 profile on hevc", "name: t\n" + rungs("codec: hevc", "profile: high"), "rungs[0].profile"},
		{"unknown profile", "name: t\n" + rungs("profile: extended"), "rungs[0].profile"},
		{"bad level", "name: t\n" + rungs(`level: "4.7"`), "rungs[0].level"},
		{"h264 level on hevc", "name: t\n" + rungs("codec: hevc", `level: "1b"`), "rungs[0].level"},
		{"frame rate too high", "name: t\n" + rungs("max_frame_rate: 300"), "rungs[0].max_frame_rate"},
		{"bad encoders entry", "name: t\n" + rungs("encoders: [nvenc, cuda]"), "rungs[0].encoders[1]"},
		{"duplicate encoder", "name: t\n" + rungs("encoders: [qsv, software, qsv]"), "rungs[0].encoders[2]"},
		{"empty encoders", "name: t\n" + rungs("encoders: []"), "rungs[0].encoders"},
		{"encoders scalar", "name: t\n" + rungs("encoders: nvenc"), "rungs[0].encoders"},
		{"gop too long", "gop: 20s\n" + ok, "gop"},
		{"gop too short", "gop: 100ms\n" + ok, "gop"},
		{"gop not a duration", "gop: 2\n" + ok, "gop"},
		{"bad cascade", "cascade: sometimes\n" + ok, "cascade"},
		{"zero rungs", "name: t\nrungs: []\n", "rungs"},
		{"no rungs key", "name: t\n", "rungs"},
		{"eleven rungs", "name: t\nrungs:\n" + strings.Repeat("  - {name: a, height: 720, bitrate: 1M}\n", 11), "rungs"},
		{"rungs a mapping", "name: t\nrungs: {name: a}\n", "rungs"},
		{"audio codec not aac", ok + "audio: {codec: opus}\n", "audio.codec"},
		{"audio bitrate too low", ok + "audio: {bitrate: 8k}\n", "audio.bitrate"},
		{"audio sample rate", ok + "audio: {sample_rate: 44000}\n", "audio.sample_rate"},
		{"audio channels", ok + "audio: {channels: 0}\n", "audio.channels"},
		{"bad YAML syntax", "name: [t\n" + rungs(), ""},
		{"two documents", ok + "---\n" + ok, ""},
		{"empty file", "# nothing\n", ""},
		{"not a mapping", "- name: t\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil {
				t.Fatalf("accepted: %+v", l)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "profiles: bad.yaml: ") {
				t.Errorf("error does not name the file: %s", msg)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("not a *FieldError: %s", msg)
			}
			if fe.Key != tt.key {
				t.Errorf("key = %q, want %q: %s", fe.Key, tt.key, msg)
			}
			if tt.key != "" && !strings.Contains(msg, "'"+tt.key+"'") {
				t.Errorf("message does not quote the key: %s", msg)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		extra string // added to a one-rung h264 ladder's rung
	}{
		{"level 3.0", `level: "3.0"`},
		{"level 4 unquoted", "level: 4"},
		{"level 4.1 unquoted", "level: 4.1"},
		{"av1 preset as int", "codec: av1\n    preset: 8"},
		{"av1 preset as string", "codec: av1\n    preset: \"12\"\n    level: \"5.1\""},
		{"hevc main10", "codec: hevc\n    profile: main10\n    preset: slow"},
		{"encoders subset", "encoders: [software]"},
		{"width cap", "width: 1280"},
		{"fractional frame rate", "max_frame_rate: 29.97"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustParse(t, "name: t\nrungs:\n  - name: a\n    height: 720\n    bitrate: 3M\n    "+tt.extra+"\n")
		})
	}
}

func TestParseBitrate(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"800k", 800_000, false},
		{"800K", 800_000, false},
		{"5M", 5_000_000, false},
		{"1.5M", 1_500_000, false},
		{"1.65M", 1_650_000, false},
		{"2500000", 2_500_000, false},
		{"2.5e6", 2_500_000, false},
		{"", 0, false},
		{"5x", 0, true},
		{"M", 0, true},
		{"0", 0, true},
		{"-1M", 0, true},
		{"1.5", 0, true}, // no such thing as half a bit per second
		{"5G", 0, true},
		{"NaN", 0, true},
		{"Infk", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseBitrate(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseBitrate(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}

	// Through YAML: plain integers and suffixed strings, quoted or not.
	for _, v := range []string{`2500000`, `"2500000"`, `2.5M`, `"2500k"`} {
		t.Run("yaml "+v, func(t *testing.T) {
			l := mustParse(t, "name: t\nrungs:\n  - {name: a, height: 720, bitrate: "+v+"}\n")
			if got := l.Rungs[0].Bitrate; got != 2_500_000 {
				t.Errorf("bitrate = %d", got)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mine.yaml")
	writeFile(t, path, "name: mine\nrungs:\n  - {name: a, height: 720, bitrate: 3M}\n")
	// A file called like a builtin shadows it.
	writeFile(t, filepath.Join(dir, "mobile"), "name: shadow\nrungs:\n  - {name: a, height: 720, bitrate: 3M}\n")
	t.Chdir(dir)

	tests := []struct {
		arg, wantName, wantSource string
	}{
		{"default", "default", "builtin:default"},
		{"builtin:hevc", "hevc", "builtin:hevc"},
		{path, "mine", path},
		{"mobile", "shadow", "mobile"},
		{"builtin:mobile", "mobile", "builtin:mobile"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			l, err := Open(tt.arg)
			if err != nil {
				t.Fatal(err)
			}
			if l.Name != tt.wantName || l.Source != tt.wantSource {
				t.Errorf("Name, Source = %q, %q; want %q, %q", l.Name, l.Source, tt.wantName, tt.wantSource)
			}
		})
	}
	for _, arg := range []string{"nosuch", "builtin:nosuch", "builtin:../profiles/default"} {
		t.Run("refuses "+arg, func(t *testing.T) {
			if _, err := Open(arg); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := Builtin("nosuch"); !errors.Is(err, ErrUnknownLadder) {
		t.Errorf("Builtin(nosuch) = %v, want ErrUnknownLadder", err)
	}
}

func TestResolve(t *testing.T) {
	mobile, err := Builtin("mobile")
	if err != nil {
		t.Fatal(err)
	}
	deflt, err := Builtin("default")
	if err != nil {
		t.Fatal(err)
	}
	fromSource := *deflt
	fromSource.Cascade = CascadeSource
	widthCap := mustParse(t, "name: t\nrungs:\n  - {name: wide, height: 720, width: 960, bitrate: 2M}\n  - {name: low, height: 540, bitrate: 1M}\n  - {name: tiny, height: 270, bitrate: 500k}\n")
	rateFirst := mustParse(t, "name: t\nrungs:\n  - {name: a, height: 720, bitrate: 2M, max_frame_rate: 30}\n  - {name: b, height: 360, bitrate: 1M}\n")

	tests := []struct {
		name       string
		ladder     *Ladder
		w, h       int
		sarN, sarD int
		fps        float64
		want       []string // "rung WxH fps from"
	}{
		{"landscape 1080p", deflt, 1920, 1080, 0, 0, 30, []string{
			"1080p 1920x1080 0 -1", "720p 1280x720 0 0", "480p 854x480 0 1", "360p 640x360 0 2"}},
		{"square SAR 1:1", deflt, 1920, 1080, 1, 1, 30, []string{
			"1080p 1920x1080 0 -1", "720p 1280x720 0 0", "480p 854x480 0 1", "360p 640x360 0 2"}},
		{"portrait", deflt, 1080, 1920, 0, 0, 30, []string{
			"1080p 1080x1920 0 -1", "720p 720x1280 0 0", "480p 480x854 0 1", "360p 360x640 0 2"}},
		{"4:3", deflt, 1440, 1080, 0, 0, 30, []string{
			"1080p 1440x1080 0 -1", "720p 960x720 0 0", "480p 640x480 0 1", "360p 480x360 0 2"}},
		{"1366x768 skips 1080p", deflt, 1366, 768, 0, 0, 30, []string{
			"720p 1280x720 0 -1", "480p 854x480 0 0", "360p 640x360 0 1"}},
		{"720p source skips 1080p", deflt, 1280, 720, 0, 0, 30, []string{
			"720p 1280x720 0 -1", "480p 854x480 0 0", "360p 640x360 0 1"}},
		{"anamorphic PAL 16:9", deflt, 720, 576, 64, 45, 25, []string{
			"480p 854x480 0 -1", "360p 640x360 0 0"}},
		{"tiny source clamps to source", deflt, 320, 180, 0, 0, 30, []string{
			"360p 320x180 0 -1"}},
		{"tiny odd source never upscales", deflt, 321, 181, 0, 0, 30, []string{
			"360p 320x180 0 -1"}},
		{"width cap landscape", widthCap, 1920, 1080, 0, 0, 30, []string{
			"wide 960x540 0 -1", "low 960x540 0 -1", "tiny 480x270 0 1"}},
		{"width cap portrait", widthCap, 1080, 1920, 0, 0, 30, []string{
			"wide 540x960 0 -1", "low 540x960 0 -1", "tiny 270x480 0 1"}},
		{"width cap not binding at 4:3", widthCap, 1440, 1080, 0, 0, 30, []string{
			"wide 960x720 0 -1", "low 720x540 0 0", "tiny 360x270 0 1"}},
		{"frame-rate cap at 60 fps", mobile, 1920, 1080, 0, 0, 60, []string{
			"540p 960x540 30 -1", "360p 640x360 30 0", "240p 426x240 15 1", "160p 284x160 15 2"}},
		{"frame-rate cap at 25 fps", mobile, 1920, 1080, 0, 0, 25, []string{
			"540p 960x540 0 -1", "360p 640x360 0 0", "240p 426x240 15 1", "160p 284x160 15 2"}},
		{"unknown fps keeps source rate", mobile, 1920, 1080, 0, 0, 0, []string{
			"540p 960x540 0 -1", "360p 640x360 0 0", "240p 426x240 0 1", "160p 284x160 0 2"}},
		{"no cascade from a lower frame rate", rateFirst, 1920, 1080, 0, 0, 60, []string{
			"a 1280x720 30 -1", "b 640x360 0 -1"}},
		{"cascade source", &fromSource, 1920, 1080, 0, 0, 30, []string{
			"1080p 1920x1080 0 -1", "720p 1280x720 0 -1", "480p 854x480 0 -1", "360p 640x360 0 -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs, err := tt.ladder.Resolve(tt.w, tt.h, tt.sarN, tt.sarD, tt.fps)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range outs {
				got = append(got, fmt.Sprintf("%s %dx%d %g %d", o.Rung.Name, o.Width, o.Height, o.FrameRate, o.ScaleFrom))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestResolveRefusesBadSource(t *testing.T) {
	l, err := Builtin("default")
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range [][2]int{{0, 1080}, {1920, 0}, {-1920, 1080}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			if _, err := l.Resolve(size[0], size[1], 1, 1, 30); err == nil {
				t.Error("no error")
			}
		})
	}
}

// Ladders may come from broadcasters through the management API.
func FuzzParse(f *testing.F) {
	for _, name := range BuiltinNames() {
		data, err := builtinFS.ReadFile(name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: t\nrungs:\n  - {name: a, height: 720, width: 960, bitrate: 1.5M, encoders: [qsv]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		outs, err := l.Resolve(1920, 1080, 1, 1, 60)
		if err != nil || len(outs) == 0 {
			t.Fatalf("Resolve = %v, %v", outs, err)
		}
		for _, o := range outs {
			if o.Width < 2 || o.Height < 2 || o.Width%2 != 0 || o.Height%2 != 0 {
				t.Fatalf("odd or empty output %dx%d", o.Width, o.Height)
			}
		}
	})
}

func mustParse(t *testing.T, doc string) *Ladder {
	t.Helper()
	l, err := Parse([]byte(doc), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
