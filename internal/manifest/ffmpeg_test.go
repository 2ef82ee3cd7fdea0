package manifest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// TestFFprobeReadsPlaylists has ffmpeg cut a short CMAF video and audio
// track, renames the files to the SegmentName scheme, renders the HLS
// playlists and the MPD from timing read out of the segments' own boxes,
// and checks that ffprobe reads every packet of both tracks through each.
func TestFFprobeReadsPlaylists(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-map", "0:v", "-map", "1:a", "-t", "6",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k", "-ac", "2",
		"-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "1",
		"-init_seg_name", "init-$RepresentationID$.mp4", "-media_seg_name", "seg-$RepresentationID$-$Number%08d$.m4s",
		filepath.Join(src, "ffmpeg.mpd"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}

	const firstSeq = 7 // not ffmpeg's 1, so a numbering mistake cannot pass
	video := Rendition{Name: "240p", Kind: Video, Width: 320, Height: 240, FrameRate: 30}
	audio := Rendition{Name: "aac", Kind: Audio, Codecs: "mp4a.40.2", SampleRate: 48000, Channels: 2}
	var samples [2]uint64
	for id, r := range []*Rendition{&video, &audio} {
		out := filepath.Join(dir, r.Name)
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		initSeg, err := os.ReadFile(filepath.Join(src, fmt.Sprintf("init-%d.mp4", id)))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, DefaultInitName), initSeg, 0o644); err != nil {
			t.Fatal(err)
		}
		track := parseInit(t, initSeg)
		r.Timescale = track.timescale
		if r.Kind == Video {
			r.Codecs = track.codecs
		}
		files, err := filepath.Glob(filepath.Join(src, fmt.Sprintf("seg-%d-*.m4s", id)))
		if err != nil || len(files) < 3 {
			t.Fatalf("segments of track %d: %v %v", id, files, err)
		}
		sort.Strings(files)
		var sizes []int64
		var durations []float64
		for i, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			frag := parseFragment(t, data, track.defaultDuration)
			seg := Segment{Seq: firstSeq + uint64(i), Start: frag.start, Duration: frag.duration}
			if err := os.WriteFile(filepath.Join(out, SegmentName(seg.Seq)), data, 0o644); err != nil {
				t.Fatal(err)
			}
			r.Segments = append(r.Segments, seg)
			samples[id] += frag.samples
			sizes = append(sizes, int64(len(data)))
			durations = append(durations, float64(frag.duration)/float64(track.timescale))
		}
		r.Bandwidth, r.AverageBandwidth = MeasureBandwidth(sizes, durations)
		t.Logf("%s: codecs %s timescale %d segments %+v, bandwidth %d/%d", r.Name, r.Codecs, r.Timescale, r.Segments, r.Bandwidth, r.AverageBandwidth)
	}

	p := &Presentation{Renditions: []Rendition{video, audio}, TargetDuration: 2 * time.Second}
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	master := write("index.m3u8", HLSMaster(p, nil))
	for i := range p.Renditions {
		r := &p.Renditions[i]
		write(filepath.Join(r.Name, "index.m3u8"), HLSMedia(p, r))
	}
	mpd, err := DASH(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	mpdPath := write("index.mpd", mpd)

	tracks := []struct {
		kind, codec string
		packets     uint64
	}{
		{"video", "h264", samples[0]},
		{"audio", "aac", samples[1]},
	}
	for _, path := range []string{master, mpdPath} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			// One track at a time: ffmpeg's DASH demuxer stops at the first
			// track to end, before the last audio frame, whichever MPD it reads.
			for _, tr := range tracks {
				got := ffprobe(ctx, t, "-select_streams", tr.kind[:1], "-show_entries", "stream=codec_type,codec_name:packet=pts", path)
				if len(got.Streams) != 1 || got.Streams[0].CodecType != tr.kind || got.Streams[0].CodecName != tr.codec {
					t.Errorf("ffprobe found %s streams %+v, want one %s", tr.kind, got.Streams, tr.codec)
				}
				// Every segment is read.
				if uint64(len(got.Packets)) != tr.packets {
					t.Errorf("ffprobe read %d %s packets, want %d", len(got.Packets), tr.kind, tr.packets)
				}
			}
		})
	}
}

type probeResult struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
	} `json:"streams"`
	Packets []struct{} `json:"packets"`
}

func ffprobe(ctx context.Context, t *testing.T, args ...string) probeResult {
	t.Helper()
	args = append([]string{"-v", "error", "-of", "json"}, args...)
	out, err := exec.CommandContext(ctx, "ffprobe", args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("ffprobe %q: %v\n%s", args, err, stderr)
	}
	var r probeResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ffprobe %q output: %v\n%s", args, err, out)
	}
	return r
}

// track is what the test needs from an init segment.
type track struct {
	timescale       uint32
	codecs          string // avc1 only
	defaultDuration uint32 // trex default_sample_duration
}

// fragment sums the movie fragments of one media segment.
type fragment struct {
	start, duration, samples uint64
}

// walkBoxes calls fn with the type and payload of each ISO BMFF box in b.
func walkBoxes(t *testing.T, b []byte, fn func(typ string, payload []byte)) {
	t.Helper()
	for len(b) >= 8 {
		size, header := uint64(binary.BigEndian.Uint32(b)), uint64(8)
		typ := string(b[4:8])
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				t.Fatalf("truncated %s box", typ)
			}
			size, header = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size < header || size > uint64(len(b)) {
			t.Fatalf("bad %s box size %d of %d bytes", typ, size, len(b))
		}
		fn(typ, b[header:size])
		b = b[size:]
	}
}

func parseInit(t *testing.T, b []byte) track {
	var tr track
	var walk func(typ string, p []byte)
	walk = func(typ string, p []byte) {
		switch typ {
		case "moov", "trak", "mdia", "minf", "stbl", "mvex":
			walkBoxes(t, p, walk)
		case "stsd": // full box, entry count, then sample entries
			walkBoxes(t, p[8:], walk)
		case "avc1": // VisualSampleEntry is 78 bytes before its child boxes
			walkBoxes(t, p[78:], walk)
		case "avcC":
			tr.codecs = fmt.Sprintf("avc1.%02x%02x%02x", p[1], p[2], p[3])
		case "mdhd":
			if p[0] == 1 {
				tr.timescale = binary.BigEndian.Uint32(p[20:])
			} else {
				tr.timescale = binary.BigEndian.Uint32(p[12:])
			}
		case "trex":
			tr.defaultDuration = binary.BigEndian.Uint32(p[12:])
		}
	}
	walkBoxes(t, b, walk)
	if tr.timescale == 0 {
		t.Fatal("init segment has no mdhd timescale")
	}
	return tr
}

func parseFragment(t *testing.T, b []byte, trexDuration uint32) fragment {
	var f fragment
	haveStart := false
	defaultDuration := trexDuration
	var walk func(typ string, p []byte)
	walk = func(typ string, p []byte) {
		switch typ {
		case "moof", "traf":
			walkBoxes(t, p, walk)
		case "tfhd":
			flags, off := binary.BigEndian.Uint32(p)&0xffffff, 8 // version/flags, track_ID
			if flags&0x01 != 0 {
				off += 8
			}
			if flags&0x02 != 0 {
				off += 4
			}
			defaultDuration = trexDuration
			if flags&0x08 != 0 {
				defaultDuration = binary.BigEndian.Uint32(p[off:])
			}
		case "tfdt":
			start := uint64(binary.BigEndian.Uint32(p[4:]))
			if p[0] == 1 {
				start = binary.BigEndian.Uint64(p[4:])
			}
			if !haveStart {
				f.start, haveStart = start, true
			}
		case "trun":
			flags, count, off := binary.BigEndian.Uint32(p)&0xffffff, binary.BigEndian.Uint32(p[4:]), 8
			if flags&0x01 != 0 {
				off += 4
			}
			if flags&0x04 != 0 {
				off += 4
			}
			for range count {
				d := defaultDuration
				if flags&0x100 != 0 {
					d = binary.BigEndian.Uint32(p[off:])
				}
				for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
					if flags&bit != 0 {
						off += 4
					}
				}
				f.duration += uint64(d)
			}
			f.samples += uint64(count)
		}
	}
	walkBoxes(t, b, walk)
	if !haveStart || f.duration == 0 {
		t.Fatalf("segment has no tfdt or no samples: %+v", f)
	}
	return f
}
