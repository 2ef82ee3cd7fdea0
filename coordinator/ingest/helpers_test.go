package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/hub"
	"github.com/livegrid/livegrid/internal/testmedia"
	"go.uber.org/goleak"
)

// leakCheck verifies, after every other cleanup of the test, that no
// goroutine is left. Call it first.
func leakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// logBuffer collects a test's logs; they are printed if the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rig is a hub with the RTMP server and the HTTP-FLV handler in front of
// it, on loopback.
type rig struct {
	hub      *hub.Hub
	srv      *Server
	rtmpAddr string
	http     *httptest.Server
	logs     *logBuffer

	mu     sync.Mutex
	events []string
}

type rigConfig struct {
	hub          hub.Config
	auth         Authorizer
	writeTimeout time.Duration // HTTP-FLV
	handshake    time.Duration // RTMP HandshakeTimeout
	wrapHTTP     func(net.Listener) net.Listener
}

func startRig(t *testing.T, cfg rigConfig) *rig {
	t.Helper()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.hub.Logger = log
	r := &rig{hub: hub.New(cfg.hub), logs: logs}
	stop := r.hub.Watch(func(ev hub.Event) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, ev.Type.String()+" "+ev.Name)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.rtmpAddr = ln.Addr().String()
	r.srv = &Server{Hub: r.hub, Auth: cfg.auth, Log: log, HandshakeTimeout: cfg.handshake}
	served := make(chan error, 1)
	go func() { served <- r.srv.Serve(ln) }()

	mux := http.NewServeMux()
	mux.Handle("GET /live/{file}", &hub.FLVHandler{Hub: r.hub, Log: log, WriteTimeout: cfg.writeTimeout})
	r.http = httptest.NewUnstartedServer(mux)
	if cfg.wrapHTTP != nil {
		r.http.Listener = cfg.wrapHTTP(r.http.Listener)
	}
	r.http.Start()

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		r.hub.Close()
		stop()
		r.http.Close()
		if t.Failed() || os.Getenv("INGEST_TEST_LOGS") != "" {
			t.Logf("server logs:\n%s", logs)
		}
	})
	return r
}

func (r *rig) rtmpURL(stream string) string { return "rtmp://" + r.rtmpAddr + "/live/" + stream }
func (r *rig) flvURL(stream string) string  { return r.http.URL + "/live/" + stream + ".flv" }

// waitEvents waits until the watcher has seen want.
func (r *rig) waitEvents(t *testing.T, want []string) {
	t.Helper()
	waitFor(t, 5*time.Second, func() bool { return slices.Equal(r.eventList(), want) }, fmt.Sprintf("events %q (have %q)", want, r.eventList()))
}

func (r *rig) eventList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// waitLive waits until the stream has a keyframe cached, so a reader
// joining now starts at once.
func (r *rig) waitLive(t *testing.T, stream string) *hub.Stream {
	t.Helper()
	var s *hub.Stream
	waitFor(t, 10*time.Second, func() bool {
		var ok bool
		s, ok = r.hub.Lookup(stream)
		return ok && s.Stats().GOPTags > 0
	}, "stream "+stream+" live")
	return s
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clip is the test source: 3 s of 320x180 H.264 and AAC at 30 fps, a
// keyframe every 2 s.
func clip(t *testing.T) string {
	t.Helper()
	testmedia.Require(t, "ffmpeg", "ffprobe")
	return testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 3, Format: "flv"})
}

// proc is a running ffmpeg or ffprobe.
type proc struct {
	cmd    *exec.Cmd
	out    *logBuffer
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// run starts a tool; the test's cleanup kills it if it is still running.
func run(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{out: &logBuffer{}, done: make(chan struct{}), cancel: cancel}
	p.cmd = exec.CommandContext(ctx, name, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cancel()
		<-p.done
	})
	return p
}

// publish starts ffmpeg pushing the clip to url; realtime paces it.
func publish(t *testing.T, src, url string, realtime bool) *proc {
	t.Helper()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	if realtime {
		args = append(args, "-re")
	}
	args = append(args, "-i", src, "-c", "copy", "-f", "flv", url)
	return run(t, "ffmpeg", args...)
}

// wait waits for the process to exit and returns its error.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v; output:\n%s", p.cmd.Path, timeout, p.out)
		return nil
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

var frameRE = regexp.MustCompile(`frame=\s*(\d+)`)

// lastFrameCount returns the last "frame=N" ffmpeg printed.
func lastFrameCount(out string) int {
	m := frameRE.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

func mustContain(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s does not contain %q:\n%s", what, sub, s)
	}
}
