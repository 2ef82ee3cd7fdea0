package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/hub"
)

// startPuller returns a Puller on the rig's hub with short timeouts and
// waits, so tests see reconnects quickly; it closes with the test.
func startPuller(t *testing.T, r *rig) *Puller {
	t.Helper()
	p := &Puller{
		Hub: r.hub, Log: r.srv.Log,
		SetupTimeout: 10 * time.Second, IdleTimeout: 5 * time.Second,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
	}
	t.Cleanup(p.Close)
	return p
}

// mediaCheck reads a stream from the hub until it has seen metadata-free
// proof of a playable stream: a video and an audio sequence header and
// a keyframe, with timestamps that do not step back by more than a
// frame's interleave. It returns the last timestamp read.
func mediaCheck(t *testing.T, h *hub.Hub, stream string, timeout time.Duration) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rd *hub.Reader
	for rd == nil {
		var err error
		if rd, err = h.Subscribe(stream); err != nil {
			select {
			case <-ctx.Done():
				t.Fatalf("stream %q never went live: %v", stream, err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	defer rd.Close()
	var videoHdr, audioHdr, key bool
	var frames int
	var last uint32
	for !(videoHdr && audioHdr && key && frames >= 30) {
		tag, err := rd.Next(ctx)
		if err != nil {
			t.Fatalf("reading %q: %v (video header %v, audio header %v, keyframe %v, frames %d)", stream, err, videoHdr, audioHdr, key, frames)
		}
		switch tag.Type {
		case flv.TagVideo:
			v, err := flv.ParseVideo(tag.Data)
			if err != nil {
				t.Fatalf("video tag: %v", err)
			}
			switch {
			case v.SequenceHeader:
				if v.Codec != flv.CodecH264 {
					t.Fatalf("video codec %v", v.Codec)
				}
				if _, err := flv.ParseAVCConfig(v.Payload); err != nil {
					t.Fatalf("avcC: %v", err)
				}
				videoHdr = true
			case v.Keyframe:
				key = true
				fallthrough
			default:
				if !videoHdr {
					t.Fatal("video frame before the sequence header")
				}
				frames++
			}
		case flv.TagAudio:
			a, err := flv.ParseAudio(tag.Data)
			if err != nil {
				t.Fatalf("audio tag: %v", err)
			}
			if a.SequenceHeader {
				if a.Codec != flv.CodecAAC || a.SampleRate != 48000 || a.Channels != 2 {
					t.Fatalf("audio %v %d Hz %d channels", a.Codec, a.SampleRate, a.Channels)
				}
				audioHdr = true
			}
		}
		if last > 1000 && tag.Timestamp+1000 < last {
			t.Fatalf("timestamp stepped back from %d to %d", last, tag.Timestamp)
		}
		last = max(last, tag.Timestamp)
	}
	return last
}

// freePort returns a loopback address nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveRTMP starts ffmpeg as an RTMP server that sends src (at real-time
// pace, loops times over) to the first player of rtmp://addr/live/src,
// then exits.
func serveRTMP(t *testing.T, src, addr string, loops int) *proc {
	t.Helper()
	return run(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-stream_loop", strconv.Itoa(loops-1), "-i", src, "-c", "copy",
		"-f", "flv", "-listen", "1", "rtmp://"+addr+"/live/src")
}

func pullStatus(p *Puller, stream string) PullStatus {
	for _, s := range p.List() {
		if s.Stream == stream {
			return s
		}
	}
	return PullStatus{}
}

func TestPullRTMP(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	r := startRig(t, rigConfig{})
	p := startPuller(t, r)
	addr := freePort(t)
	server := serveRTMP(t, src, addr, 1)
	if err := p.Start("pulled", "rtmp://"+addr+"/live/src?key=secret"); err != nil {
		t.Fatal(err)
	}
	last := mediaCheck(t, r.hub, "pulled", 20*time.Second)
	st := pullStatus(p, "pulled")
	if st.State != PullLive || st.Sessions != 1 {
		t.Errorf("status %+v, want live after one session", st)
	}
	if strings.Contains(st.URL, "secret") {
		t.Errorf("status URL %q shows the key", st.URL)
	}

	// The 3 s source ends and ffmpeg exits: the pull retries until a new
	// server is up, and the stream's timestamps go on from where they were.
	if err := server.wait(t, 20*time.Second); err != nil {
		t.Fatalf("ffmpeg server: %v\n%s", err, server.out)
	}
	waitFor(t, 10*time.Second, func() bool {
		_, live := r.hub.Lookup("pulled")
		return !live && pullStatus(p, "pulled").State != PullLive
	}, "the pulled stream to end with its source")
	if st := pullStatus(p, "pulled"); st.LastError == "" {
		t.Errorf("status %+v has no last error", st)
	}
	serveRTMP(t, src, addr, 1)
	waitFor(t, 20*time.Second, func() bool { return pullStatus(p, "pulled").Sessions == 2 }, "a second session")
	first := firstMediaTimestamp(t, r.hub, "pulled")
	if first <= last {
		t.Errorf("second session starts at %d ms, not after the first's %d ms", first, last)
	}
	r.waitEvents(t, []string{"published pulled", "unpublished pulled", "published pulled"})
	if err := p.Stop("pulled"); err != nil {
		t.Fatal(err)
	}
	r.waitEvents(t, []string{"published pulled", "unpublished pulled", "published pulled", "unpublished pulled"})
	if err := p.Stop("pulled"); !errors.Is(err, ErrPullNotFound) {
		t.Errorf("second Stop = %v, want ErrPullNotFound", err)
	}
	mustContain(t, "log", r.logs.String(), "pull failed; retrying")
}

// firstMediaTimestamp returns the timestamp of the first audio or video
// frame a new reader of the stream gets (its GOP cache's).
func firstMediaTimestamp(t *testing.T, h *hub.Hub, stream string) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rd, err := h.Subscribe(stream)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for {
		tag, err := rd.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tag.Type == flv.TagVideo {
			if v, err := flv.ParseVideo(tag.Data); err == nil && !v.SequenceHeader {
				return tag.Timestamp
			}
		}
	}
}

// flvServer serves an FLV file as a live HTTP-FLV stream: the header,
// then the tags at the pace of their timestamps, loops times over with
// timestamps going on; then the response ends.
type flvServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
}

func startFLVServer(t *testing.T, src string, loops int) *flvServer {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	s := &flvServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "video/x-flv")
		rc := http.NewResponseController(w)
		fw, err := flv.NewWriter(w, flv.Header{Audio: true, Video: true})
		if err != nil {
			return
		}
		start := time.Now()
		var offset, last uint32
		for range loops {
			fr := flv.NewReader(bytes.NewReader(data))
			for {
				tag, err := fr.ReadTag()
				if err != nil {
					break
				}
				tag.Timestamp += offset
				last = max(last, tag.Timestamp)
				if d := time.Until(start.Add(time.Duration(tag.Timestamp) * time.Millisecond)); d > 0 {
					select {
					case <-time.After(d):
					case <-r.Context().Done():
						return
					}
				}
				if fw.WriteTag(tag) != nil || rc.Flush() != nil {
					return
				}
			}
			offset = last + 33
		}
	}))
	t.Cleanup(func() {
		// Cut off a client still streaming, or Close waits for the loops.
		s.CloseClientConnections()
		s.Close()
	})
	return s
}

func (s *flvServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func TestPullHTTPFLV(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	r := startRig(t, rigConfig{})
	p := startPuller(t, r)
	fs := startFLVServer(t, src, 1)
	// No .flv in the path: the puller recognizes the stream by its bytes.
	if err := p.Start("httpflv", fs.URL+"/stream?token=abc"); err != nil {
		t.Fatal(err)
	}
	last := mediaCheck(t, r.hub, "httpflv", 20*time.Second)
	// The response ends after 3 s: the puller connects again.
	waitFor(t, 20*time.Second, func() bool { return pullStatus(p, "httpflv").Sessions >= 2 }, "a second session")
	if n := fs.count(); n < 2 {
		t.Errorf("%d requests, want a reconnect", n)
	}
	if first := firstMediaTimestamp(t, r.hub, "httpflv"); first <= last {
		t.Errorf("second session starts at %d ms, not after the first's %d ms", first, last)
	}
	mustContain(t, "log", r.logs.String(), "end of the FLV stream")
}

func TestPullFailuresAreLoggedAndRetried(t *testing.T) {
	leakCheck(t)
	r := startRig(t, rigConfig{})
	p := startPuller(t, r)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing.flv":
			http.NotFound(w, r)
		case "/garbage.flv":
			_, _ = w.Write(bytes.Repeat([]byte("garbage!"), 100))
		case "/missing.m3u8":
			http.NotFound(w, r)
		case "/empty.m3u8":
		case "/silent.flv":
			_, _ = w.Write([]byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"))
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
		}
	}))
	defer bad.Close()
	p.IdleTimeout = 300 * time.Millisecond
	tests := []struct{ stream, url, want string }{
		{"missing", bad.URL + "/missing.flv", "HTTP 404"},
		{"garbage", bad.URL + "/garbage.flv", "bad header"},
		{"silent", bad.URL + "/silent.flv", "idle"},
		{"refused", "rtmp://" + freePort(t) + "/live/x", "connection refused"},
		{"hls404", bad.URL + "/missing.m3u8", "HTTP 404"},
		{"hlsempty", bad.URL + "/empty.m3u8", "not #EXTM3U"},
	}
	for _, tt := range tests {
		if err := p.Start(tt.stream, tt.url); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		waitFor(t, 10*time.Second, func() bool { return pullStatus(p, tt.stream).Failures >= 2 }, tt.stream+" to fail twice")
		st := pullStatus(p, tt.stream)
		if !strings.Contains(st.LastError, tt.want) {
			t.Errorf("%s: last error %q does not say %q", tt.stream, st.LastError, tt.want)
		}
		if _, live := r.hub.Lookup(tt.stream); live {
			t.Errorf("%s is live", tt.stream)
		}
	}
	if got := strings.Count(r.logs.String(), "pull failed; retrying"); got < 2*len(tests) {
		t.Errorf("%d failures logged, want each one", got)
	}
}

func TestPullStartRefusals(t *testing.T) {
	leakCheck(t)
	r := startRig(t, rigConfig{})
	p := startPuller(t, r)
	if _, err := r.hub.Publish("busy", hub.Publisher{RemoteAddr: "test"}); err != nil {
		t.Fatal(err)
	}
	unreachable := "rtmp://" + freePort(t) + "/live/x"
	if err := p.Start("a", unreachable); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		stream, url string
		want        error
		field       string
	}{
		{"a", unreachable, ErrPullExists, ""},
		{"busy", unreachable, ErrStreamLive, ""},
		{"a b", unreachable, ErrBadPull, "stream"},
		{"b", "srt://h:9000", ErrBadPull, "url"},
		{"b", "http:///nohost", ErrBadPull, "url"},
		{"b", "rtmp://h/onlyapp", ErrBadPull, "url"},
	}
	for _, tt := range tests {
		err := p.Start(tt.stream, tt.url)
		if !errors.Is(err, tt.want) {
			t.Errorf("Start(%q, %q) = %v, want %v", tt.stream, tt.url, err, tt.want)
			continue
		}
		var fe *FieldError
		if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
			t.Errorf("Start(%q, %q) = %v, want a FieldError for %q", tt.stream, tt.url, err, tt.field)
		}
	}
	p.Close()
	if err := p.Start("c", unreachable); !errors.Is(err, ErrPullerClosed) {
		t.Errorf("Start after Close = %v", err)
	}
}

// hlsDir is a folder of HLS files served over HTTP.
type hlsDir struct {
	dir string
	srv *httptest.Server
}

func startHLSDir(t *testing.T) *hlsDir {
	t.Helper()
	d := &hlsDir{dir: t.TempDir()}
	d.srv = httptest.NewServer(http.FileServer(http.Dir(d.dir)))
	t.Cleanup(d.srv.Close)
	return d
}

func TestPullHLSLive(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	r := startRig(t, rigConfig{})
	p := startPuller(t, r)
	d := startHLSDir(t)
	// A live TS playlist that ffmpeg keeps writing: 1 s segments cut at
	// the clip's 2 s keyframes, a window of 4, old segments deleted.
	writer := run(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-stream_loop", "-1", "-i", src, "-c", "copy",
		"-f", "hls", "-hls_time", "1", "-hls_list_size", "4",
		"-hls_flags", "delete_segments+temp_file", filepath.Join(d.dir, "live.m3u8"))
	// A master playlist whose best variant is the live one.
	master := "#EXTM3U\n#EXT-X-VERSION:3\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=160x90\nmissing.m3u8\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=320x180,CODECS=\"avc1.42c00d,mp4a.40.2\"\nlive.m3u8\n"
	if err := os.WriteFile(filepath.Join(d.dir, "master.m3u8"), []byte(master), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(d.dir, "live.m3u8"))
		return err == nil
	}, "ffmpeg to write the playlist")
	if err := p.Start("hlslive", d.srv.URL+"/master.m3u8"); err != nil {
		t.Fatal(err)
	}
	mediaCheck(t, r.hub, "hlslive", 30*time.Second)
	s, ok := r.hub.Lookup("hlslive")
	if !ok {
		t.Fatal("not live")
	}
	// Live: the stream keeps growing at about real-time pace.
	before := s.Stats()
	time.Sleep(3 * time.Second)
	after := s.Stats()
	if after.Tags <= before.Tags {
		t.Errorf("no tags in 3 s (%d)", after.Tags)
	}
	if st := pullStatus(p, "hlslive"); st.State != PullLive || st.Sessions != 1 {
		t.Errorf("status %+v", st)
	}
	decodeCheck(t, r.flvURL("hlslive"))
	if writer.exited() {
		t.Fatalf("ffmpeg stopped: %v\n%s", writer.err, writer.out)
	}

	// The source stops: the playlist no longer grows, the pull gives the
	// session up and retries; a new writer brings it back.
	writer.cancel()
	<-writer.done
	waitFor(t, 30*time.Second, func() bool {
		st := pullStatus(p, "hlslive")
		return st.State != PullLive && strings.Contains(st.LastError, "no new segment")
	}, "the pull to notice the stalled playlist")
	run(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-stream_loop", "-1", "-i", src, "-c", "copy",
		"-f", "hls", "-hls_time", "1", "-hls_list_size", "4",
		"-hls_flags", "delete_segments+temp_file", filepath.Join(d.dir, "live.m3u8"))
	waitFor(t, 30*time.Second, func() bool { return pullStatus(p, "hlslive").Sessions == 2 }, "the pull to come back")
	mediaCheck(t, r.hub, "hlslive", 20*time.Second)
}

func TestPullHLSVOD(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	r := startRig(t, rigConfig{})
	p := startPuller(t, r)
	d := startHLSDir(t)
	out, err := runOnce(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", src, "-c", "copy",
		"-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", filepath.Join(d.dir, "vod.m3u8"))
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	// The same as one file with byte ranges.
	out, err = runOnce(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", src, "-c", "copy",
		"-f", "hls", "-hls_time", "1", "-hls_flags", "single_file", "-hls_playlist_type", "vod", filepath.Join(d.dir, "ranges.m3u8"))
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	start := time.Now()
	if err := p.Start("vod", d.srv.URL+"/vod.m3u8"); err != nil {
		t.Fatal(err)
	}
	if err := p.Start("ranges", d.srv.URL+"/ranges.m3u8"); err != nil {
		t.Fatal(err)
	}
	mediaCheck(t, r.hub, "vod", 20*time.Second)
	mediaCheck(t, r.hub, "ranges", 20*time.Second)
	// The 3 s VOD plays at its own pace, ends, and plays again.
	waitFor(t, 20*time.Second, func() bool { return pullStatus(p, "vod").Sessions >= 2 }, "the VOD to play again")
	if took := time.Since(start); took < 2500*time.Millisecond {
		t.Errorf("a 3 s VOD played in %v: not paced", took)
	}
	mustContain(t, "log", r.logs.String(), "EXT-X-ENDLIST")
}

// decodeCheck decodes 2 s of a live HTTP-FLV URL with ffmpeg and fails
// on any error it reports: the tags made from MPEG-TS must be a stream
// a player takes.
func decodeCheck(t *testing.T, url string) {
	t.Helper()
	out, err := runOnce(t, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-t", "2", "-i", url,
		"-f", "null", "-")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("ffmpeg decoding %s: %v\n%s", url, err, out)
	}
}

// runOnce runs a command to its end and returns its output.
func runOnce(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	p := run(t, name, args...)
	err := p.wait(t, 60*time.Second)
	return p.out.String(), err
}

func TestTimeline(t *testing.T) {
	var tl timeline
	got := func(in ...uint32) []uint32 {
		var out []uint32
		for _, ts := range in {
			out = append(out, tl.next(ts))
		}
		return out
	}
	check := func(what string, have, want []uint32) {
		t.Helper()
		if fmt.Sprint(have) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", what, have, want)
		}
	}
	tl.restart()
	check("first session starts at 0", got(5000, 5033, 5020, 5066), []uint32{0, 33, 20, 66})
	check("a clock jump continues", got(60000, 60033), []uint32{106, 139})
	tl.restart()
	check("a new session continues", got(0, 33), []uint32{179, 212})
	check("a small step back", got(0xffffffff), []uint32{178})
	tl2 := timeline{}
	tl2.restart()
	check("wrapping source", []uint32{tl2.next(0xfffffff0), tl2.next(0x10)}, []uint32{0, 32})
	_ = io.EOF
}

func TestPullYieldsToPublisher(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	r := startRig(t, rigConfig{hub: hub.Config{Policy: hub.TakeOver}})
	p := startPuller(t, r)
	fs := startFLVServer(t, src, 20)
	if err := p.Start("shared", fs.URL+"/src.flv"); err != nil {
		t.Fatal(err)
	}
	r.waitLive(t, "shared")
	// A publisher takes the name over; the pull does not take it back
	// while the publisher is live, and does once it has left.
	pub := publish(t, src, r.rtmpURL("shared"), true)
	waitFor(t, 10*time.Second, func() bool {
		s, ok := r.hub.Lookup("shared")
		return ok && !strings.HasPrefix(s.Stats().PublisherAddr, "pull:")
	}, "the publisher to take over")
	waitFor(t, 10*time.Second, func() bool {
		st := pullStatus(p, "shared")
		return st.Failures >= 2 && strings.Contains(st.LastError, "already being published")
	}, "the pull to wait for the publisher")
	if s, ok := r.hub.Lookup("shared"); !ok || strings.HasPrefix(s.Stats().PublisherAddr, "pull:") {
		t.Fatal("the pull took the stream back from a live publisher")
	}
	if err := pub.wait(t, 20*time.Second); err != nil {
		t.Fatalf("publisher: %v\n%s", err, pub.out)
	}
	waitFor(t, 10*time.Second, func() bool { return pullStatus(p, "shared").Sessions >= 2 }, "the pull to come back")
}
