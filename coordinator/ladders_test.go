//go:build cgo

package coordinator_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/testmedia"
)

// TestLadderByAPI sets a stream's ladder through the management API
// before it is published: the stream is transcoded with that ladder,
// not the configured one.
func TestLadderByAPI(t *testing.T) {
	testmedia.Require(t, "ffmpeg")
	node := startNode(t, fastLadder, nil)
	put := func(stream, body string) int {
		req, _ := http.NewRequest(http.MethodPut, node.base+"/api/v1/streams/"+stream+"/ladder", bytes.NewBufferString(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, bad := range []string{`{"profile": "/etc/passwd.yaml"}`, `{"profile": "nope"}`, `{"profile": "mobile", "x": 1}`, `not json`} {
		if code := put("cam", bad); code != http.StatusBadRequest {
			t.Errorf("PUT %s: %d, want 400", bad, code)
		}
	}
	if code := put("cam", `{"profile": "mobile"}`); code != http.StatusOK {
		t.Fatalf("PUT mobile: %d", code)
	}
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 4, FPS: 30, Format: "flv"})
	pub := node.publish(t, clip, "cam")
	defer pub.wait(t)
	var master string
	waitFor(t, 30*time.Second, "a master playlist", func() bool {
		var code int
		code, master = get(t, node.base+"/live/cam/index.m3u8")
		return code == http.StatusOK && uriLine.MatchString(master)
	})
	// mobile's rungs that fit a 180p source: 160p; fast's would be 180p and 144p.
	if !strings.Contains(master, "160p/") || strings.Contains(master, "144p/") {
		t.Fatalf("the stream did not get the mobile ladder:\n%s", master)
	}
	req, _ := http.NewRequest(http.MethodDelete, node.base+"/api/v1/streams/cam/ladder", nil)
	for _, want := range []int{http.StatusNoContent, http.StatusNotFound} {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("DELETE: %d, want %d", resp.StatusCode, want)
		}
	}
}
