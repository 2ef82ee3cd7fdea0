//go:build cgo

package coordinator_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/auth"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// TestSignedPlayback plays a token-protected stream as a player does: a
// signed master URL, then the links inside the playlists. Unsigned and
// tampered requests are refused with the reason; the signed URL's
// parameters are carried into every link, so relative segment URLs (which
// players resolve without the playlist's query) still carry the token.
func TestSignedPlayback(t *testing.T) {
	testmedia.Require(t, "ffmpeg")
	const secret = "0123456789abcdef0123456789abcdef"
	node := startNode(t, fastLadder, func(c *config.Config) { c.Play.TokenSecret = secret })
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: 6, FPS: 30, Format: "flv"})
	pub := node.publish(t, clip, "cam")
	defer pub.wait(t)

	signed, err := auth.SignStreamURL(secret, node.base, "cam", time.Hour, time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	query := signed[strings.Index(signed, "?"):]
	var master string
	waitFor(t, 30*time.Second, "signed master playlist", func() bool {
		var code int
		code, master = get(t, signed)
		return code == http.StatusOK && uriLine.MatchString(master)
	})
	media := strings.TrimSpace(uriLine.FindString(master))
	if !strings.Contains(media, "token=") {
		t.Fatalf("master links carry no token:\n%s", master)
	}
	var mediaPL string
	waitFor(t, 30*time.Second, "a segment in the media playlist", func() bool {
		var code int
		code, mediaPL = get(t, node.base+"/live/cam/"+media)
		return code == http.StatusOK && strings.Contains(mediaPL, ".m4s")
	})
	var seg string
	for _, l := range strings.Split(mediaPL, "\n") {
		if strings.Contains(l, ".m4s") {
			seg = strings.TrimSpace(l)
			break
		}
	}
	rendition := media[:strings.Index(media, "/")]
	if code, _ := get(t, node.base+"/live/cam/"+rendition+"/"+seg); code != http.StatusOK {
		t.Fatalf("signed segment link %s: %d", seg, code)
	}
	if code, _ := get(t, signed[:strings.Index(signed, "?")]+"?"+strings.Replace(query[1:], "token=", "token=00", 1)); code != http.StatusForbidden {
		t.Errorf("tampered token: %d, want 403", code)
	}
	resp, err := http.Get(node.base + "/live/cam/index.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get(auth.HeaderDenied) == "" {
		t.Errorf("unsigned master: %d %q, want 403 with %s", resp.StatusCode, resp.Header.Get(auth.HeaderDenied), auth.HeaderDenied)
	}
	if code, _ := get(t, node.base+"/live/cam.flv"); code != http.StatusForbidden {
		t.Errorf("unsigned HTTP-FLV: %d, want 403", code)
	}
}
