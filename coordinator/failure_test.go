//go:build cgo

package coordinator_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livegrid/livegrid/coordinator"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/queue"
	"github.com/livegrid/livegrid/internal/queue/redistest"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// TestClusterSurvivesKillAndRedisRestart is the cluster under the two
// failures operators meet: a worker process killed with SIGKILL
// mid-stream (a real `livegrid worker` process, so nothing of it runs
// its shutdown), then the Redis server restarted with its data gone. The
// stream must end with every segment listed, no gap, and every frame
// decodable through the origin.
func TestClusterSurvivesKillAndRedisRestart(t *testing.T) {
	testmedia.Require(t, "ffmpeg", "ffprobe", "go")
	if testing.Short() {
		t.Skip("builds the livegrid binary and streams for 16 s")
	}
	rs := redistest.Start(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "livegrid")
	build := exec.Command("go", "build", "-o", bin, "../cmd/livegrid")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const seconds, fps = 16, 30
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: seconds, FPS: fps, Format: "flv"})
	ladderPath := filepath.Join(dir, "fast.yaml")
	if err := os.WriteFile(ladderPath, []byte(fastLadder), 0o644); err != nil {
		t.Fatal(err)
	}
	redisURL := "redis://" + rs.Addr + "?dial_timeout=1s&read_timeout=2s&write_timeout=1s"
	storeURL := "file://" + filepath.Join(dir, "store")

	// w1: a separate process, killed later.
	w1 := exec.Command(bin, "worker", "--redis-url", redisURL, "--store-url", storeURL, "--http-addr", "127.0.0.1:0")
	w1.Env = append(os.Environ(), "LIVEGRID_WORKER_ID=w1", "LIVEGRID_TRANSCODE_PROFILE="+ladderPath)
	w1.Stdout, w1.Stderr = testWriter{t}, testWriter{t}
	if err := w1.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = w1.Process.Kill()
			_ = w1.Wait()
		}
	}()

	cfg := config.Default()
	cfg.RTMP.Addr, cfg.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data-coord")
	cfg.Redis.URL, cfg.Store.URL = redisURL, storeURL
	cfg.Transcode.Profile = ladderPath
	cfg.Packager.Grace = 2 * time.Second
	cfg.Packager.Window = 20 // the whole stream stays listed
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	coord, err := coordinator.NewCoordinator(cfg, testLogger(t, "coordinator"))
	if err != nil {
		t.Fatal(err)
	}
	stopCoord := runRole(t, "coordinator", coord.Run)
	defer stopCoord()
	select {
	case <-coord.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("coordinator not ready in 10 s")
	}
	rtmpAddr, httpAddr := coord.Addrs()
	node := &liveNode{rtmp: rtmpAddr.String(), base: "http://" + httpAddr.String()}
	base := node.base
	pub := node.publish(t, clip, "test")

	// w1 alone transcodes the first segments.
	rdb := redis.NewClient(rs.Options())
	defer rdb.Close()
	doneBy := func(worker string) int {
		msgs, err := rdb.XRange(context.Background(), queue.ResultsKey("test"), "-", "+").Result()
		if err != nil {
			return 0
		}
		n := 0
		for _, m := range msgs {
			s, _ := m.Values["result"].(string)
			if r, err := queue.DecodeResult([]byte(s)); err == nil && r.Worker == worker && r.Status == queue.StatusDone {
				n++
			}
		}
		return n
	}
	waitFor(t, 30*time.Second, "segment done by w1", func() bool { return doneBy("w1") >= 1 })
	w2cfg := *cfg
	w2cfg.Worker.ID = "w2"
	w2cfg.DataDir = filepath.Join(dir, "data-w2")
	w2cfg.HTTP.Addr = "127.0.0.1:0"
	w2, err := coordinator.NewWorker(&w2cfg, testLogger(t, "w2"))
	if err != nil {
		t.Fatal(err)
	}
	stopW2 := runRole(t, "w2", w2.Run)
	defer stopW2()

	if err := w1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w1.Wait()
	killed = true
	t.Log("worker w1 killed with SIGKILL")

	time.Sleep(3 * time.Second)
	rs.Restart()
	t.Log("redis-server restarted with its data gone")

	pub.wait(t)
	var playlists []string
	waitFor(t, 60*time.Second, "the playlists to end", func() bool {
		code, master := get(t, base+"/live/test/index.m3u8")
		playlists = playlists[:0]
		ended := code == http.StatusOK
		for _, u := range uriLine.FindAllString(master, -1) {
			c, body := get(t, base+"/live/test/"+strings.TrimSpace(u))
			ended = ended && c == http.StatusOK && strings.Contains(body, "#EXT-X-ENDLIST")
			playlists = append(playlists, body)
		}
		return ended && len(playlists) == 2
	})
	for i, pl := range playlists {
		if n := strings.Count(pl, "#EXTINF"); n < seconds/2 || n > seconds/2+1 {
			t.Errorf("media playlist %d has %d segments, want %d or %d:\n%s", i, n, seconds/2, seconds/2+1, pl)
		}
		if strings.Contains(pl, "#EXT-X-GAP") || strings.Contains(pl, "#EXT-X-DISCONTINUITY") {
			t.Errorf("media playlist %d has a gap or discontinuity:\n%s", i, pl)
		}
	}
	// The result log restarted with Redis; w2 must have written in it.
	if n := doneBy("w2"); n == 0 {
		t.Error("no segment done by w2 after the restart")
	}
	frames := countFrames(t, base+"/live/test/index.m3u8")
	t.Logf("decoded video frames through the origin: %d of %d", frames, seconds*fps)
	if frames < seconds*fps*95/100 {
		t.Errorf("decoded %d video frames, want about %d", frames, seconds*fps)
	}
	// The worker role has its own probes and metrics.
	wbase := "http://" + w2.HTTPAddr().String()
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, wbase+p); code != http.StatusOK {
			t.Errorf("worker GET %s: %d %s", p, code, body)
		}
	}
	if code, body := get(t, wbase+"/metrics"); code != http.StatusOK || !strings.Contains(body, "livegrid_segments_transcoded_total{rendition=") {
		t.Errorf("worker /metrics: %d, no livegrid_segments_transcoded_total:\n%.2000s", code, body)
	}
	stopW2()
	stopCoord()
}
