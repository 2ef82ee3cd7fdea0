//go:build cgo

package coordinator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/flv"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// serveLiveFLV serves an FLV file as a live HTTP-FLV source: its tags at
// the pace of their timestamps, the file looped with timestamps going on.
func serveLiveFLV(t *testing.T, path string, loops int) *httptest.Server {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// TestStandalonePullAndHTTPPush runs a standalone whose config pulls an
// HTTP-FLV source: the pulled stream is transcoded and its HLS master
// appears. On the same node, a pull started through the API is listed,
// and an ffmpeg publishing with HTTP POST is live.
func TestStandalonePullAndHTTPPush(t *testing.T) {
	testmedia.Require(t, "ffmpeg", "ffprobe")
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 6, Format: "flv"})
	src := serveLiveFLV(t, clip, 4)
	n := startNode(t, fastLadder, func(c *config.Config) {
		c.Worker.ID = "pull-test"
		c.Pull = []config.Pull{{Stream: "pulled", URL: src.URL + "/live/src.flv"}}
	})

	// The config's pull: an HLS master with the ladder and 2+ segments.
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get(t, n.base+"/live/pulled/index.m3u8")
		if code == http.StatusOK && strings.Contains(body, "180p") && mediaSegments(t, n.base+"/live/pulled/", body) >= 2 {
			t.Logf("master playlist of the pulled stream:\n%s", body)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HLS for the pulled stream in time; last %d:\n%s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A pull started through the API is listed beside the config's.
	resp, err := http.Post(n.base+"/api/v1/pulls", "application/json",
		strings.NewReader(`{"stream": "second", "url": "`+src.URL+`/live/src.flv"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/pulls: %d", resp.StatusCode)
	}
	waitFor(t, 20*time.Second, "both pulls live", func() bool {
		code, body := get(t, n.base+"/api/v1/pulls")
		var list struct {
			Pulls []struct{ Stream, State string }
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list.Pulls) != 2 {
			return false
		}
		return list.Pulls[0].Stream == "pulled" && list.Pulls[0].State == "live" &&
			list.Pulls[1].Stream == "second" && list.Pulls[1].State == "live"
	})
	req, _ := http.NewRequest(http.MethodDelete, n.base+"/api/v1/pulls/second", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// HTTP-FLV push with ffmpeg's POST, played back from the same path.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	push := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", clip,
		"-c", "copy", "-f", "flv", "-method", "POST", n.base+"/live/pushed.flv")
	var pushErr bytes.Buffer
	push.Stderr = &pushErr
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the pushed stream live", func() bool {
		head, err := getPrefix(n.base+"/live/pushed.flv", 3)
		return err == nil && string(head) == "FLV"
	})
	if err := push.Wait(); err != nil {
		t.Fatalf("ffmpeg push: %v\n%s", err, pushErr.String())
	}
	n.stop()
}
