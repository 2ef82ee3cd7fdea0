package ingest

import (
	"bufio"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// flvSummary is what an HTTP-FLV viewer saw.
type flvSummary struct {
	header           flv.Header
	firstVideo       []string // kinds of the first video tags
	videoFrames      int
	audioFrames      int
	metadata         bool
	err              error
	contentType      string
	cors             string
	transferEncoding []string
}

// readFLV reads an HTTP-FLV stream to its end.
func readFLV(client *http.Client, url string) flvSummary {
	var s flvSummary
	resp, err := client.Get(url)
	if err != nil {
		s.err = err
		return s
	}
	defer resp.Body.Close()
	s.contentType = resp.Header.Get("Content-Type")
	s.cors = resp.Header.Get("Access-Control-Allow-Origin")
	s.transferEncoding = resp.TransferEncoding
	if resp.StatusCode != http.StatusOK {
		s.err = io.ErrUnexpectedEOF
		return s
	}
	r := flv.NewReader(bufio.NewReader(resp.Body))
	if s.header, s.err = r.Header(); s.err != nil {
		return s
	}
	for {
		tag, err := r.ReadTag()
		if err == io.EOF {
			return s
		}
		if err != nil {
			s.err = err
			return s
		}
		switch tag.Type {
		case flv.TagScript:
			if _, err := flv.ParseMetadata(tag.Data); err == nil {
				s.metadata = true
			}
		case flv.TagAudio:
			if a, err := flv.ParseAudio(tag.Data); err == nil && !a.SequenceHeader {
				s.audioFrames++
			}
		case flv.TagVideo:
			v, err := flv.ParseVideo(tag.Data)
			kind := "frame"
			switch {
			case err != nil:
				kind = "bad"
			case v.SequenceHeader:
				kind = v.Codec.String() + " sequence header"
			case v.Keyframe:
				kind = "keyframe"
			}
			if len(s.firstVideo) < 2 {
				s.firstVideo = append(s.firstVideo, kind)
			}
			if err == nil && !v.SequenceHeader {
				s.videoFrames++
			}
		}
	}
}

// TestPublishPlayback pushes a clip with ffmpeg and reads it back three
// ways at once: a Go HTTP-FLV client that checks the tags, ffprobe over
// HTTP-FLV that decodes every frame, and ffmpeg playing over RTMP.
func TestPublishPlayback(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	r := startRig(t, rigConfig{})
	pub := publish(t, src, r.rtmpURL("test"), true)
	r.waitLive(t, "test")

	viewer := make(chan flvSummary, 1)
	go func() { viewer <- readFLV(r.http.Client(), r.flvURL("test")) }()
	probe := run(t, "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "default=nw=1", r.flvURL("test"))
	player := run(t, "ffmpeg", "-hide_banner", "-nostdin", "-i", r.rtmpURL("test"), "-t", "2", "-f", "null", "-")
	// This one plays to the end: the server tells it the stream ended.
	toEnd := run(t, "ffmpeg", "-hide_banner", "-nostdin", "-i", r.rtmpURL("test"), "-f", "null", "-")

	if err := pub.wait(t, 15*time.Second); err != nil {
		t.Fatalf("publisher: %v\n%s", err, pub.out)
	}

	v := <-viewer
	if v.err != nil {
		t.Fatalf("HTTP-FLV viewer: %v", v.err)
	}
	if v.contentType != "video/x-flv" || v.cors != "*" || !slices.Equal(v.transferEncoding, []string{"chunked"}) {
		t.Errorf("Content-Type %q, Access-Control-Allow-Origin %q, Transfer-Encoding %q", v.contentType, v.cors, v.transferEncoding)
	}
	if !v.header.Audio || !v.header.Video || !v.metadata {
		t.Errorf("FLV header %+v, metadata %v", v.header, v.metadata)
	}
	if want := []string{"H.264 sequence header", "keyframe"}; !slices.Equal(v.firstVideo, want) {
		t.Errorf("first video tags %q, want %q", v.firstVideo, want)
	}
	// It joined at the cached GOP, so it has the whole 3 s clip.
	if v.videoFrames < 85 || v.audioFrames < 100 {
		t.Errorf("viewer got %d video and %d audio frames, want the clip's 90 and ~140", v.videoFrames, v.audioFrames)
	}

	if err := probe.wait(t, 15*time.Second); err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, probe.out)
	}
	out := probe.out.String()
	mustContain(t, "ffprobe output", out, "codec_name=h264")
	mustContain(t, "ffprobe output", out, "width=320")
	if n := field(out, "nb_read_frames"); n < 85 {
		t.Errorf("ffprobe decoded %d frames over HTTP-FLV, want ~90:\n%s", n, out)
	}

	if err := player.wait(t, 15*time.Second); err != nil {
		t.Fatalf("RTMP player: %v\n%s", err, player.out)
	}
	if n := lastFrameCount(player.out.String()); n < 50 {
		t.Errorf("RTMP player decoded %d frames in 2 s, want ~60:\n%s", n, player.out)
	}
	if err := toEnd.wait(t, 5*time.Second); err != nil {
		t.Errorf("RTMP player at the stream's end: %v\n%s", err, toEnd.out)
	}
	if n := lastFrameCount(toEnd.out.String()); n < 85 {
		t.Errorf("RTMP player decoded %d frames to the end, want ~90", n)
	}
	mustContain(t, "server log", r.logs.String(), "rtmp play ended: stream unpublished")
	if want := []string{"published test", "unpublished test"}; !slices.Equal(r.eventList(), want) {
		t.Errorf("events %q, want %q", r.eventList(), want)
	}
}

// field reads "key=N" from ffprobe's default output.
func field(out, key string) int {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return -1
}

func TestPlayUnknownStream(t *testing.T) {
	leakCheck(t)
	testmedia.Require(t, "ffmpeg")
	r := startRig(t, rigConfig{})
	p := run(t, "ffmpeg", "-hide_banner", "-nostdin", "-i", r.rtmpURL("nope"), "-f", "null", "-")
	if err := p.wait(t, 10*time.Second); err == nil {
		t.Fatalf("playing a stream that is not live succeeded:\n%s", p.out)
	}
	mustContain(t, "player output", p.out.String(), `stream "nope" is not live`)
}
