package packager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/cmaf"
	"github.com/livegrid/livegrid/internal/media"
	"github.com/livegrid/livegrid/internal/store/fsstore"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// clipRendition is one rendition of a clip ffmpeg cut into CMAF segments.
type clipRendition struct {
	info media.Rendition
	segs []clipSegment
}

type clipSegment struct {
	data            []byte
	start, duration uint64
	frames          int
}

// makeClip has ffmpeg encode 6 s of a two-rung ladder (320x240 and
// 160x120 H.264, 2 s GOPs) and AAC audio into 2 s fMP4 segments, and
// reads their timing back with the cmaf package. Audio's last 1024-sample
// remainder is dropped, so every rendition has three segments.
func makeClip(t *testing.T, ctx context.Context) []clipRendition {
	t.Helper()
	testmedia.Require(t, "ffmpeg", "ffprobe")
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-filter_complex", "[0:v]split=2[a][b];[b]scale=160:120[c]",
		"-map", "[a]", "-map", "[c]", "-map", "1:a", "-t", "6",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k", "-ac", "2",
		"-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "2", "-hls_playlist_type", "vod",
		"-var_stream_map", "v:0 v:1 a:0", "-hls_fmp4_init_filename", "init.mp4",
		"-hls_segment_filename", filepath.Join(dir, "r%v", "seg%d.m4s"), filepath.Join(dir, "r%v", "index.m3u8"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	ladder := []media.Rendition{
		{Name: "240p", Kind: "video", FrameRate: 30, Bitrate: 600_000},
		{Name: "120p", Kind: "video", FrameRate: 30, Bitrate: 200_000},
		{Name: "aac", Kind: "audio", Bitrate: 64_000},
	}
	var clip []clipRendition
	for i, info := range ladder {
		rdir := filepath.Join(dir, fmt.Sprintf("r%d", i))
		init, err := os.ReadFile(filepath.Join(rdir, fmt.Sprintf("init_%d.mp4", i)))
		if err != nil {
			t.Fatal(err)
		}
		in, err := cmaf.ParseInit(init)
		if err != nil {
			t.Fatal(err)
		}
		info.Init, info.Timescale, info.Codec = init, in.Timescale, in.Codec
		cr := clipRendition{info: info}
		for k := range 3 {
			data, err := os.ReadFile(filepath.Join(rdir, fmt.Sprintf("seg%d.m4s", k)))
			if err != nil {
				t.Fatal(err)
			}
			ms, err := cmaf.ParseMediaSegment(data)
			if err != nil {
				t.Fatal(err)
			}
			cr.segs = append(cr.segs, clipSegment{data: data, start: ms.BaseDecodeTime, duration: ms.Duration, frames: len(ms.Samples)})
		}
		clip = append(clip, cr)
	}
	return clip
}

// clipResult is source segment k of the clip as a worker would report it.
func clipResult(clip []clipRendition, stream, session string, k int) Result {
	r := Result{Stream: stream, Session: session, Seq: uint64(k)}
	for _, cr := range clip {
		s := cr.segs[k]
		r.Renditions = append(r.Renditions, Output{Rendition: cr.info, Segments: []Segment{{Segment: media.Segment{
			Start: s.start, Duration: s.duration, Timescale: cr.info.Timescale, Frames: s.frames, Data: s.data,
		}}}})
	}
	return r
}

// TestFFprobeLiveAndEnded feeds a real CMAF ladder through the packager
// into a folder store, out of order, serves it with Origin over HTTP, and
// has ffprobe decode the HLS master and the DASH MPD while the stream is
// live and after it ended, and the session's VOD playlist from the store.
func TestFFprobeLiveAndEnded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	clip := makeClip(t, ctx)
	frames := func(rend, upTo int) int {
		n := 0
		for _, s := range clip[rend].segs[:upTo] {
			n += s.frames
		}
		return n
	}

	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// ffmpeg's DASH demuxer places a live window by the wall clock, so
	// the fake clock starts at the real time.
	clock := newFakeClock(time.Now())
	p, err := New(Config{Store: st, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(&Origin{Packager: p, Store: st})
	defer srv.Close()
	base := srv.URL + "/live/test/"

	if err := p.Start("test", "s1", StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(clipResult(clip, "test", "s1", 1)); err != nil {
		t.Fatal(err)
	}
	if code := httpGet(t, base+"index.m3u8").StatusCode; code != http.StatusNotFound {
		t.Fatalf("master with segment 0 missing: %d", code)
	}
	if err := p.Publish(clipResult(clip, "test", "s1", 0)); err != nil {
		t.Fatal(err)
	}

	t.Run("live", func(t *testing.T) {
		// A live playlist does not end, so ffprobe is told to stop: after
		// all but the last video frame of the window, since it notices
		// its limit only when it reads one more.
		want := frames(0, 2) - 1
		for _, tt := range []struct {
			url  string
			args []string
		}{
			{base + "index.m3u8", []string{"-live_start_index", "0"}},
			{base + "index.mpd", nil},
		} {
			got := probeFrames(ctx, t, tt.url, "v:0", append(tt.args, "-read_intervals", "%+#"+strconv.Itoa(want))...)
			if got.frames != want || got.codec != "h264" || got.width != 320 {
				t.Errorf("%s: %+v, want %d frames of 320-wide h264", tt.url, got, want)
			}
		}
		resp := httpGet(t, base+"240p/index.m3u8")
		if resp.Header.Get("Cache-Control") != "max-age=1" || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			resp.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" {
			t.Errorf("media playlist headers %v", resp.Header)
		}
		resp = httpGet(t, base+"240p/00000001.m4s")
		if resp.Header.Get("Cache-Control") != cacheImmutable || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			resp.Header.Get("Content-Type") != "video/iso.segment" {
			t.Errorf("segment headers %v", resp.Header)
		}
	})

	if err := p.Publish(clipResult(clip, "test", "s1", 2)); err != nil {
		t.Fatal(err)
	}
	if err := p.End("test", "s1", 3); err != nil {
		t.Fatal(err)
	}
	clock.Advance(DefaultGrace)

	t.Run("ended", func(t *testing.T) {
		for _, url := range []string{base + "index.m3u8", base + "index.mpd", filepath.Join(st.Root(), "live/test/s1/vod.m3u8")} {
			for _, tr := range []struct {
				stream, codec string
				rend          int
			}{{"v:0", "h264", 0}, {"a:0", "aac", 2}} {
				got := probeFrames(ctx, t, url, tr.stream)
				if want := frames(tr.rend, 3); got.frames != want || got.codec != tr.codec {
					t.Errorf("%s %s: %+v, want %d frames of %s", url, tr.stream, got, want, tr.codec)
				}
			}
		}
		// The smaller rung is there too.
		if got := probeFrames(ctx, t, base+"120p/index.m3u8", "v:0"); got.frames != frames(1, 3) || got.width != 160 {
			t.Errorf("120p: %+v", got)
		}
	})
}

type probed struct {
	frames int
	codec  string
	width  int
}

// probeFrames has ffprobe decode one stream of a playlist or file and
// count its frames.
func probeFrames(ctx context.Context, t *testing.T, url, stream string, args ...string) probed {
	t.Helper()
	args = append([]string{"-v", "error", "-of", "json", "-protocol_whitelist", "file,http,tcp,crypto",
		"-select_streams", stream, "-count_frames", "-show_entries", "stream=codec_name,width,nb_read_frames"}, args...)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "ffprobe", append(args, url)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("ffprobe %s: %v\n%s", url, err, stderr)
	}
	var doc struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			Width  int    `json:"width"`
			Frames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Streams) == 0 {
		t.Fatalf("ffprobe %s: %v\n%s", url, err, out)
	}
	s := doc.Streams[0]
	n, _ := strconv.Atoi(s.Frames)
	return probed{frames: n, codec: s.Codec, width: s.Width}
}

func httpGet(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestFFprobeReconnect: a publisher that reconnects as a new session
// within the grace period continues the presentation across a
// discontinuity; ffprobe decodes every frame of both sessions through the
// master playlist, and each session's VOD playlist on its own.
func TestFFprobeReconnect(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	clip := makeClip(t, ctx)
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(time.Now())
	p, err := New(Config{Store: st, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(&Origin{Packager: p, Store: st})
	defer srv.Close()

	if err := p.Start("test", "s1", StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for k := range 2 {
		if err := p.Publish(clipResult(clip, "test", "s1", k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.End("test", "s1", 2); err != nil {
		t.Fatal(err)
	}
	clock.Advance(3 * time.Second)
	if err := p.Start("test", "s2", StartOptions{}); err != nil {
		t.Fatal(err)
	}
	// The segmenter's timeline runs on: the clip's third segment is the
	// new session's first.
	r := clipResult(clip, "test", "s2", 2)
	r.Seq = 0
	if err := p.Publish(r); err != nil {
		t.Fatal(err)
	}
	if err := p.End("test", "s2", 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(DefaultGrace)

	frames := func(rend int, segs ...int) int {
		n := 0
		for _, k := range segs {
			n += clip[rend].segs[k].frames
		}
		return n
	}
	for _, tt := range []struct {
		url          string
		video, audio int
	}{
		{srv.URL + "/live/test/index.m3u8", frames(0, 0, 1, 2), frames(2, 0, 1, 2)},
		{filepath.Join(st.Root(), "live/test/s1/vod.m3u8"), frames(0, 0, 1), frames(2, 0, 1)},
		{filepath.Join(st.Root(), "live/test/s2/vod.m3u8"), frames(0, 2), frames(2, 2)},
	} {
		if got := probeFrames(ctx, t, tt.url, "v:0"); got.frames != tt.video {
			t.Errorf("%s video: %+v, want %d frames", tt.url, got, tt.video)
		}
		if got := probeFrames(ctx, t, tt.url, "a:0"); got.frames != tt.audio {
			t.Errorf("%s audio: %+v, want %d frames", tt.url, got, tt.audio)
		}
	}
	resp, err := http.Get(srv.URL + "/live/test/240p/index.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	pl := parseHLSMedia(t, string(body))
	if !pl.ended || !slices.Equal(pl.discBefore, []string{"00000002.m4s"}) {
		t.Errorf("media playlist:\n%s", body)
	}
}
