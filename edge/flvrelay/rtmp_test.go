package flvrelay

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/coordinator/ingest"
)

// startRTMP serves the relay's hub over RTMP as the edge does: plays
// open streams through Acquire, publishes are refused.
func startRTMP(t *testing.T, e *edge) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &ingest.Server{Hub: e.relay.Hub(), Auth: ingest.DenyAll, OnPlay: e.relay.Acquire, Log: testLogger(t)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("rtmp shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ingest.ErrServerClosed) {
			t.Errorf("rtmp serve: %v", err)
		}
	})
	return "rtmp://" + ln.Addr().String() + "/live/"
}

// tool runs ffmpeg or ffprobe to its end, within a bound.
func tool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after 30 s:\n%s", name, strings.Join(args, " "), out)
	}
	return string(out), err
}

// TestRTMPPlay plays rtmp://edge/live/cam with ffprobe and ffmpeg while
// the relay pulls HTTP-FLV from an origin; a stream no origin has is
// refused, and so is a publisher.
func TestRTMPPlay(t *testing.T) {
	leakCheck(t)
	o := liveOrigins(t, "origin-1")[0]
	e := startEdge(t, Config{Origins: []string{o.url()}}, nil)
	base := startRTMP(t, e)

	out, err := tool(t, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "default=nw=1", base+"cam")
	if err != nil {
		t.Fatalf("ffprobe over RTMP: %v\n%s", err, out)
	}
	for _, want := range []string{"codec_name=h264", "width=320", "height=180", "codec_name=aac"} {
		if !strings.Contains(out, want) {
			t.Errorf("ffprobe output lacks %q:\n%s", want, out)
		}
	}
	// ffmpeg plays 2 s; meanwhile an HTTP-FLV viewer shares the upstream.
	v := watch(t, e.srv.Client(), e.flvURL("cam"), false)
	out, err = tool(t, "ffmpeg", "-hide_banner", "-nostdin", "-i", base+"cam", "-t", "2", "-f", "null", "-")
	if err != nil {
		t.Fatalf("ffmpeg over RTMP: %v\n%s", err, out)
	}
	if n := lastFrameCount(out); n < 40 {
		t.Errorf("ffmpeg decoded %d frames in 2 s over RTMP, want ~50:\n%s", n, out)
	}
	if frames(v.seenTags()) == 0 {
		t.Error("the HTTP-FLV viewer got nothing")
	}
	if got := o.requestList(); len(got) > 2 {
		// The RTMP players and the viewer shared the upstream while it
		// was open; at most one reopen after a linger.
		t.Errorf("origin requests %q", got)
	}
	v.stop()
	waitFor(t, 10*time.Second, func() bool { return e.relay.Metrics().Holds == 0 }, "the RTMP players' holds released")

	out, err = tool(t, "ffprobe", "-v", "error", base+"nope")
	if err == nil || !strings.Contains(out, `stream "nope" is not live`) {
		t.Errorf("ffprobe of a stream no origin has: %v\n%s", err, out)
	}
	if got := o.requestList(); got[len(got)-1] != "/live/nope.flv" {
		t.Errorf("origin requests %q, want the last for /live/nope.flv", got)
	}

	out, err = tool(t, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25",
		"-t", "1", "-c:v", "libx264", "-f", "flv", base+"pushed")
	if err == nil {
		t.Errorf("a publish to the edge succeeded:\n%s", out)
	}
	if _, ok := e.relay.Hub().Lookup("pushed"); ok {
		t.Error("the edge's hub has a pushed stream")
	}
}

// lastFrameCount returns the last "frame=N" ffmpeg printed.
func lastFrameCount(out string) int {
	i := strings.LastIndex(out, "frame=")
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range strings.TrimLeft(out[i+len("frame="):], " ") {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
