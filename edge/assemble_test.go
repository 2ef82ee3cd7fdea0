//go:build cgo

package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/auth"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// TestAssembledEdge runs the edge role as `livegrid edge` builds it in
// front of a real standalone origin: HTTP-FLV of the source and of a
// rendition through the relay, RTMP play from the edge, HLS with a signed
// URL whose token reaches the segment links, and the edge's own viewer
// counts.
func TestAssembledEdge(t *testing.T) {
	testmedia.Require(t, "ffmpeg", "ffprobe")
	const secret = "0123456789abcdef0123456789abcdef"
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 20, Format: "flv"})
	rtmpAddr, originBase, _ := startStandalone(t)

	cfg := config.Default()
	cfg.HTTP.Addr, cfg.RTMP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Edge.Origins = []string{originBase}
	cfg.Play.TokenSecret = secret // the edge signs its own origin requests; the origin does not enforce it here
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := Assemble(cfg, testLogger(t).With("node", "edge"))
	if err != nil {
		t.Fatal(err)
	}
	edgeBase, _ := runEdge(t, e)
	c := newClient(t)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pub := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", clip,
		"-c", "copy", "-f", "flv", fmt.Sprintf("rtmp://%s/live/cam", rtmpAddr))
	var pubErr bytes.Buffer
	pub.Stderr = &pubErr
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pub.Wait() }()

	sign := func(path string) string {
		q := auth.SignStream([]byte(secret), "cam", time.Now().Add(time.Hour), "")
		return edgeBase + path + "?" + q.Encode()
	}
	// HLS: the signed master links carry the viewer's token.
	var master string
	waitFor(t, "HLS through the edge", 45*time.Second, func() bool {
		resp, body := fetch(t, c, "GET", sign("/live/cam/index.m3u8"))
		master = string(body)
		return resp.StatusCode == 200 && strings.Contains(master, "180p/index.m3u8?")
	})
	if resp, _ := fetch(t, c, "GET", edgeBase+"/live/cam/index.m3u8"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned master through the edge: %d, want 403", resp.StatusCode)
	}

	// HTTP-FLV of the source and of a rendition: FLV header, then tags.
	for _, p := range []string{"/live/cam.flv", "/live/cam/180p.flv"} {
		req, _ := http.NewRequestWithContext(ctx, "GET", sign(p), nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		head := make([]byte, 64<<10)
		n, _ := io.ReadAtLeast(resp.Body, head, 4096)
		resp.Body.Close()
		if resp.StatusCode != 200 || n < 4096 || string(head[:3]) != "FLV" {
			t.Errorf("%s: status %d, %d bytes, starts %q", p, resp.StatusCode, n, head[:min(n, 3)])
		}
	}

	// A viewer held open is counted by the edge.
	req, _ := http.NewRequestWithContext(ctx, "GET", sign("/live/cam.flv"), nil)
	held, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Body.Close()
	go func() { _, _ = io.Copy(io.Discard, held.Body) }()
	waitFor(t, "the FLV viewer in the edge's /api/v1/streams", 10*time.Second, func() bool {
		resp, body := fetch(t, c, "GET", edgeBase+"/api/v1/streams/cam")
		var st struct {
			Viewers    int `json:"viewers"`
			ByProtocol struct {
				FLV int `json:"flv"`
			} `json:"by_protocol"`
		}
		return resp.StatusCode == 200 && json.Unmarshal(body, &st) == nil && st.ByProtocol.FLV >= 1
	})

	// RTMP play from the edge, with the token in the stream name's query.
	q := auth.SignStream([]byte(secret), "cam", time.Now().Add(time.Hour), "").Encode()
	probe := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
		fmt.Sprintf("rtmp://%s/live/cam?%s", e.RTMPAddr(), q))
	out, err := probe.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "video") {
		t.Errorf("ffprobe rtmp from the edge: %v\n%s", err, out)
	}
	unsigned := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rw_timeout", "5000000", fmt.Sprintf("rtmp://%s/live/cam", e.RTMPAddr()))
	if out, err := unsigned.CombinedOutput(); err == nil {
		t.Errorf("RTMP play without a token was allowed:\n%s", out)
	}
	cancel()
}
