package cmaf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Sources and encoders for the real-media tests; each produces 2 s of
// fragmented MP4 the way the transcode worker's libav muxer does.
var (
	videoIn = []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"}
	audioIn = []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}
	x264    = []string{"-c:v", "libx264", "-g", "30"}
	x265    = []string{"-c:v", "libx265", "-g", "30", "-x265-params", "log-level=error"}
	svtAV1  = []string{"-c:v", "libsvtav1", "-preset", "12", "-g", "30"}
	aacEnc  = []string{"-c:a", "aac"}
)

var mediaCache struct {
	sync.Mutex
	files map[string][]byte
}

// ffmpegMedia encodes (once per test binary) a fragmented MP4 from args.
func ffmpegMedia(t *testing.T, args ...[]string) []byte {
	t.Helper()
	flat := slices.Concat(args...)
	key := strings.Join(flat, " ")
	mediaCache.Lock()
	defer mediaCache.Unlock()
	if b, ok := mediaCache.files[key]; ok {
		return b
	}
	out := filepath.Join(t.TempDir(), "out.mp4")
	cmd := slices.Concat([]string{"-nostdin", "-v", "error", "-y"}, flat, []string{"-t", "2",
		"-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", out})
	if msg, err := exec.Command("ffmpeg", cmd...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(cmd, " "), err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if mediaCache.files == nil {
		mediaCache.files = map[string][]byte{}
	}
	mediaCache.files[key] = b
	return b
}

// splitFragmented splits a fragmented MP4 into its init segment and its
// moof+mdat fragments.
func splitFragmented(t *testing.T, b []byte) (init []byte, frags [][]byte) {
	t.Helper()
	boxes, err := ReadBoxes(b)
	if err != nil {
		t.Fatalf("ReadBoxes() error = %v", err)
	}
	for i, bx := range boxes {
		switch bx.Type {
		case "moov":
			init = b[:bx.Offset+bx.Size]
		case "moof":
			if i+1 == len(boxes) || boxes[i+1].Type != "mdat" {
				t.Fatalf("moof at %d not followed by mdat", bx.Offset)
			}
			frags = append(frags, b[bx.Offset:boxes[i+1].Offset+boxes[i+1].Size])
		}
	}
	if init == nil || len(frags) == 0 {
		t.Fatalf("no moov or no fragments in %d bytes", len(b))
	}
	return init, frags
}

type probeStream struct {
	CodecTag   string `json:"codec_tag_string"`
	TimeBase   string `json:"time_base"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	SampleRate string `json:"sample_rate"`
	Channels   int    `json:"channels"`
	Level      int    `json:"level"`
}

type probePacket struct {
	PTS   int64  `json:"pts"`
	DTS   int64  `json:"dts"`
	Size  string `json:"size"`
	Flags string `json:"flags"`
}

// ffprobe reports the first stream and its packets in b.
func ffprobe(t *testing.T, b []byte) (probeStream, []probePacket) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "probe.mp4")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "0", "-of", "json",
		"-show_entries", "stream=codec_tag_string,time_base,width,height,sample_rate,channels,level:packet=pts,dts,size,flags",
		path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffprobe: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("ffprobe: %v", err)
	}
	var res struct {
		Streams []probeStream
		Packets []probePacket
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	if len(res.Streams) != 1 {
		t.Fatalf("ffprobe found %d streams, want 1", len(res.Streams))
	}
	return res.Streams[0], res.Packets
}

func TestRealMedia(t *testing.T) {
	tests := []struct {
		name    string
		args    [][]string
		want    Init // Codec is checked by codecOK; the rest by equality
		codecOK func(c string, s probeStream) bool
		muxed   bool // audio and video share each mdat: no rewrap
	}{
		{
			name: "h264",
			args: [][]string{videoIn, x264},
			want: Init{TrackID: 1, Handler: "vide", SampleEntry: "avc1", Width: 320, Height: 240},
			codecOK: func(c string, s probeStream) bool {
				return strings.HasPrefix(c, "avc1.64") && strings.HasSuffix(c, fmt.Sprintf("%02x", s.Level))
			},
		},
		{
			name: "hevc hvc1",
			args: [][]string{videoIn, x265, {"-tag:v", "hvc1"}},
			want: Init{TrackID: 1, Handler: "vide", SampleEntry: "hvc1", Width: 320, Height: 240},
			codecOK: func(c string, s probeStream) bool {
				return strings.HasPrefix(c, fmt.Sprintf("hvc1.1.6.L%d.", s.Level))
			},
		},
		{
			name: "hevc hev1",
			args: [][]string{videoIn, x265},
			want: Init{TrackID: 1, Handler: "vide", SampleEntry: "hev1", Width: 320, Height: 240},
			codecOK: func(c string, s probeStream) bool {
				return strings.HasPrefix(c, fmt.Sprintf("hev1.1.6.L%d.", s.Level))
			},
		},
		{
			name: "av1",
			args: [][]string{videoIn, svtAV1},
			want: Init{TrackID: 1, Handler: "vide", SampleEntry: "av01", Width: 320, Height: 240},
			codecOK: func(c string, _ probeStream) bool {
				return strings.HasPrefix(c, "av01.0.") && strings.HasSuffix(c, "M.08")
			},
		},
		{
			name: "aac",
			args: [][]string{audioIn, aacEnc},
			want: Init{TrackID: 1, Handler: "soun", SampleEntry: "mp4a", SampleRate: 48000, Channels: 1},
			codecOK: func(c string, _ probeStream) bool {
				return c == "mp4a.40.2"
			},
		},
		{
			name: "h264 and aac muxed reads as the video track",
			args: [][]string{videoIn, audioIn, x264, aacEnc},
			want: Init{TrackID: 1, Handler: "vide", SampleEntry: "avc1", Width: 320, Height: 240},
			codecOK: func(c string, s probeStream) bool {
				return strings.HasPrefix(c, "avc1.64") && strings.HasSuffix(c, fmt.Sprintf("%02x", s.Level))
			},
			muxed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := ffmpegMedia(t, tt.args...)
			initSeg, frags := splitFragmented(t, file)

			got, err := ParseInit(initSeg)
			if err != nil {
				t.Fatalf("ParseInit() error = %v", err)
			}
			stream, packets := ffprobe(t, file)
			tt.want.Timescale = timescale(t, stream)
			if !tt.codecOK(got.Codec, stream) {
				t.Errorf("Codec = %q, not what ffprobe's %+v implies", got.Codec, stream)
			}
			tt.want.Codec = got.Codec
			if *got != tt.want {
				t.Errorf("ParseInit() = %+v, want %+v", *got, tt.want)
			}

			var samples []SampleInfo
			for i, f := range frags {
				seg, err := ParseMediaSegment(f)
				if err != nil {
					t.Fatalf("ParseMediaSegment(fragment %d) error = %v", i, err)
				}
				if seg.TrackID != got.TrackID || seg.Seq != uint32(i+1) {
					t.Errorf("fragment %d: track %d seq %d, want track %d seq %d", i, seg.TrackID, seg.Seq, got.TrackID, i+1)
				}
				samples = append(samples, seg.Samples...)
			}
			comparePackets(t, "ffmpeg's fragments", samples, 0, packets)
			if tt.muxed {
				return
			}

			t.Run("rewrapped", func(t *testing.T) {
				// Shift every fragment by ten seconds to prove that ffprobe
				// takes decode times from our tfdt.
				shift := 10 * uint64(got.Timescale)
				out := slices.Clone(initSeg)
				var first uint64
				for i, f := range frags {
					seg, sampleData := fragmentSamples(t, f)
					if i == 0 {
						first = seg.BaseDecodeTime + shift
					}
					out = AppendMediaSegment(out, uint32(i+1), got.TrackID, seg.BaseDecodeTime+shift, sampleData)
				}
				_, rewrapped := ffprobe(t, out)
				comparePackets(t, "rewrapped segments", samples, int64(first), rewrapped)
				if got.Handler == "vide" {
					decodeClean(t, out)
				}
			})
		})
	}
}

func timescale(t *testing.T, s probeStream) uint32 {
	t.Helper()
	den, ok := strings.CutPrefix(s.TimeBase, "1/")
	n, err := strconv.ParseUint(den, 10, 32)
	if !ok || err != nil {
		t.Fatalf("ffprobe time_base %q", s.TimeBase)
	}
	return uint32(n)
}

// fragmentSamples reads one ffmpeg single-track fragment back into Samples,
// whose data ffmpeg lays out back to back from the start of the mdat.
func fragmentSamples(t *testing.T, frag []byte) (*MediaSegment, []Sample) {
	t.Helper()
	seg, err := ParseMediaSegment(frag)
	if err != nil {
		t.Fatal(err)
	}
	boxes, err := ReadBoxes(frag)
	if err != nil {
		t.Fatal(err)
	}
	data := payload(frag, boxes[len(boxes)-1])
	var out []Sample
	for _, s := range seg.Samples {
		if int(s.Size) > len(data) {
			t.Fatalf("sample sizes exceed the mdat")
		}
		out = append(out, Sample{Duration: s.Duration, CTSOffset: s.CTSOffset, Keyframe: s.Keyframe, Data: data[:s.Size]})
		data = data[s.Size:]
	}
	if len(data) != 0 {
		t.Fatalf("%d mdat bytes not covered by samples", len(data))
	}
	return seg, out
}

// comparePackets checks that ffprobe saw the samples, and when firstDTS is
// not 0, that decode times run from it.
func comparePackets(t *testing.T, what string, samples []SampleInfo, firstDTS int64, packets []probePacket) {
	t.Helper()
	if len(packets) != len(samples) {
		t.Fatalf("%s: ffprobe counts %d packets, want %d samples", what, len(packets), len(samples))
	}
	dts := firstDTS
	for i, s := range samples {
		p := packets[i]
		if p.Size != strconv.Itoa(int(s.Size)) {
			t.Errorf("%s: packet %d size %s, want %d", what, i, p.Size, s.Size)
		}
		if key := strings.HasPrefix(p.Flags, "K"); key != s.Keyframe {
			t.Errorf("%s: packet %d keyframe %v, want %v", what, i, key, s.Keyframe)
		}
		if firstDTS != 0 && (p.DTS != dts || p.PTS != dts+int64(s.CTSOffset)) {
			t.Errorf("%s: packet %d dts/pts %d/%d, want %d/%d", what, i, p.DTS, p.PTS, dts, dts+int64(s.CTSOffset))
		}
		dts += int64(s.Duration)
	}
}

// decodeClean fails the test if ffmpeg reports any error decoding b.
func decodeClean(t *testing.T, b []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "decode.mp4")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("decoding rewrapped segments: %v\n%s", err, out)
	}
}

func TestParseInitErrors(t *testing.T) {
	initSeg, _ := splitFragmented(t, ffmpegMedia(t, videoIn, x264))
	// rename returns a copy of initSeg with the first box of type from,
	// at any depth, renamed to "to".
	rename := func(from, to string) []byte {
		b := slices.Clone(initSeg)
		i := bytes.Index(b, []byte(from))
		if i < 4 {
			t.Fatalf("no %q in init segment", from)
		}
		copy(b[i:], to)
		return b
	}
	otherTrex := slices.Clone(initSeg)
	i := bytes.Index(otherTrex, []byte("trex"))
	binary.BigEndian.PutUint32(otherTrex[i+8:], 99) // track_ID after version and flags

	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{name: "empty", in: nil, wantErr: ErrMalformed},
		{name: "no mvex", in: rename("mvex", "free"), wantErr: ErrNotFragmented},
		{name: "trex for another track", in: otherTrex, wantErr: ErrNotFragmented},
		{name: "no trak", in: rename("trak", "free"), wantErr: ErrNoTrack},
		{name: "text track", in: rename("vide", "text"), wantErr: ErrNoTrack},
		{name: "unknown sample entry", in: rename("avc1", "xxxx"), wantErr: ErrUnsupportedCodec},
		{name: "no avcC", in: rename("avcC", "free"), wantErr: ErrMalformed},
		{name: "media segment", in: AppendMediaSegment(nil, 1, 1, 0, []Sample{{Keyframe: true}}), wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInit(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseInit() error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	t.Run("every prefix", func(t *testing.T) {
		for n := range len(initSeg) {
			if _, err := ParseInit(initSeg[:n]); err == nil {
				t.Errorf("ParseInit(first %d of %d bytes) succeeded", n, len(initSeg))
			}
		}
	})
}

func TestRewriteSampleEntry(t *testing.T) {
	hev1, _ := splitFragmented(t, ffmpegMedia(t, videoIn, x265))
	b := slices.Clone(hev1)
	if err := RewriteSampleEntry(b, "hev1", "hvc1"); err != nil {
		t.Fatalf("RewriteSampleEntry() error = %v", err)
	}
	got, err := ParseInit(b)
	if err != nil {
		t.Fatalf("ParseInit() error = %v", err)
	}
	if got.SampleEntry != "hvc1" || !strings.HasPrefix(got.Codec, "hvc1.") {
		t.Errorf("after rewrite: entry %q codec %q, want hvc1", got.SampleEntry, got.Codec)
	}
	if len(b) != len(hev1) || bytes.Count(b, []byte("hev1")) != 0 {
		t.Error("rewrite changed the length or left hev1 behind")
	}
	if stream, _ := ffprobe(t, b); stream.CodecTag != "hvc1" {
		t.Errorf("ffprobe codec tag %q, want hvc1", stream.CodecTag)
	}

	tests := []struct {
		name     string
		from, to string
		wantErr  error
	}{
		{name: "absent entry", from: "avc1", to: "avc3", wantErr: ErrNoSampleEntry},
		{name: "short type", from: "hev1", to: "hvc", wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := slices.Clone(hev1)
			if err := RewriteSampleEntry(b, tt.from, tt.to); !errors.Is(err, tt.wantErr) {
				t.Errorf("RewriteSampleEntry() error = %v, want %v", err, tt.wantErr)
			}
			if !bytes.Equal(b, hev1) {
				t.Error("failed rewrite changed the init segment")
			}
		})
	}
}
