//go:build cgo

package coordinator_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/livegrid/livegrid/coordinator"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/queue"
	"github.com/livegrid/livegrid/internal/queue/redistest"
	"github.com/livegrid/livegrid/internal/store/storetest"
	"github.com/livegrid/livegrid/internal/testmedia"
)

// TestClusterEndToEnd runs the cluster roles in one process on a real
// redis-server and a real MinIO: one coordinator and two workers. ffmpeg
// publishes an 8 s clip; after the first segments the worker that holds
// the stream drops off the network (its Redis connection cut) and is
// stopped. The other worker must take over with no gap: the playlists list
// every segment and ffprobe decodes every frame through the origin.
func TestClusterEndToEnd(t *testing.T) {
	testmedia.Require(t, "ffmpeg", "ffprobe")
	rs := redistest.Start(t)
	minio := storetest.StartMinIO(t)
	t.Setenv("AWS_ACCESS_KEY_ID", storetest.MinIOUser)
	t.Setenv("AWS_SECRET_ACCESS_KEY", storetest.MinIOPassword)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	const seconds, fps = 8, 30
	clip := testmedia.Make(t, testmedia.Clip{Width: 320, Height: 180, Seconds: seconds, FPS: fps, Format: "flv"})
	dir := t.TempDir()
	ladderPath := filepath.Join(dir, "fast.yaml")
	if err := os.WriteFile(ladderPath, []byte(fastLadder), 0o644); err != nil {
		t.Fatal(err)
	}
	// Worker 1 reaches Redis through a proxy the test cuts.
	proxy := redistest.NewProxy(t, rs.Addr)
	redisURL := func(addr string) string {
		return "redis://" + addr + "?dial_timeout=1s&read_timeout=2s&write_timeout=1s"
	}
	newConfig := func(redisAddr, workerID string) *config.Config {
		cfg := config.Default()
		cfg.RTMP.Addr = "127.0.0.1:0"
		cfg.HTTP.Addr = "127.0.0.1:0"
		cfg.DataDir = filepath.Join(dir, "data-"+workerID)
		cfg.Redis.URL = redisURL(redisAddr)
		cfg.Store.URL = minio.URL("livegrid")
		cfg.Transcode.Profile = ladderPath
		cfg.Worker.ID = workerID
		cfg.Worker.ShutdownTimeout = 5 * time.Second
		cfg.Packager.Grace = 2 * time.Second // a publisher that left is not waited for long
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	// Roles refuse a config without Redis or a shared store.
	if _, err := coordinator.NewCoordinator(config.Default(), nil); err == nil || !strings.Contains(err.Error(), "redis.url") {
		t.Errorf("coordinator without redis.url: %v", err)
	}
	noStore := newConfig(rs.Addr, "x")
	noStore.Store.URL = ""
	if _, err := coordinator.NewWorker(noStore, nil); err == nil || !strings.Contains(err.Error(), "store.url") {
		t.Errorf("worker without store.url: %v", err)
	}

	coord, err := coordinator.NewCoordinator(newConfig(rs.Addr, "coord"), testLogger(t, "coordinator"))
	if err != nil {
		t.Fatal(err)
	}
	stopCoord := runRole(t, "coordinator", coord.Run)
	defer stopCoord()
	w1, err := coordinator.NewWorker(newConfig(proxy.Addr, "w1"), testLogger(t, "w1"))
	if err != nil {
		t.Fatal(err)
	}
	stopW1 := runRole(t, "w1", w1.Run)
	defer stopW1()
	select {
	case <-coord.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("coordinator not ready in 10 s")
	}
	rtmpAddr, httpAddr := coord.Addrs()
	node := &liveNode{rtmp: rtmpAddr.String(), base: "http://" + httpAddr.String()}
	base := node.base
	node.checkHealth(t)
	pub := node.publish(t, clip, "test")

	// Worker 1 alone transcodes the first segment, so the stream is its.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := get(t, base+"/live/test/index.m3u8")
		if code == http.StatusOK && mediaSegments(t, base+"/live/test/", body) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no first segment in 20 s; last %d:\n%s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Worker 2 joins; worker 1 drops off the network mid-stream.
	w2, err := coordinator.NewWorker(newConfig(rs.Addr, "w2"), testLogger(t, "w2"))
	if err != nil {
		t.Fatal(err)
	}
	stopW2 := runRole(t, "w2", w2.Run)
	defer stopW2()
	proxy.Cut()
	t.Log("worker w1 cut off from Redis")
	go stopW1() // its drain cannot reach Redis; it ends after its shutdown timeout

	pub.wait(t)

	// The stream ended: every media playlist must end with every segment.
	var master string
	var playlists []string
	deadline = time.Now().Add(45 * time.Second)
	for {
		var code int
		code, master = get(t, base+"/live/test/index.m3u8")
		playlists = playlists[:0]
		ended := code == http.StatusOK
		for _, u := range uriLine.FindAllString(master, -1) {
			c, body := get(t, base+"/live/test/"+strings.TrimSpace(u))
			ended = ended && c == http.StatusOK && strings.Contains(body, "#EXT-X-ENDLIST")
			playlists = append(playlists, body)
		}
		if ended && len(playlists) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("playlists did not end in 45 s; master %d:\n%s\nmedia:\n%s", code, master, strings.Join(playlists, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("master playlist:\n%s\nfirst media playlist:\n%s", master, playlists[0])
	wantSegs := seconds / 2
	for i, pl := range playlists {
		n := strings.Count(pl, "#EXTINF")
		if n < wantSegs || n > wantSegs+1 {
			t.Errorf("media playlist %d has %d segments, want %d or %d", i, n, wantSegs, wantSegs+1)
		}
		if strings.Contains(pl, "#EXT-X-GAP") || strings.Contains(pl, "#EXT-X-DISCONTINUITY") {
			t.Errorf("media playlist %d has a gap or discontinuity:\n%s", i, pl)
		}
		if !strings.Contains(pl, "#EXT-X-MEDIA-SEQUENCE:0") {
			t.Errorf("media playlist %d does not start at segment 0:\n%s", i, pl)
		}
	}

	// Who did what, from the result log.
	rdb := redis.NewClient(rs.Options())
	defer rdb.Close()
	msgs, err := rdb.XRange(context.Background(), queue.ResultsKey("test"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, m := range msgs {
		s, _ := m.Values["result"].(string)
		r, err := queue.DecodeResult([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		by[r.Worker+"/"+string(r.Status)]++
	}
	t.Logf("results by worker: %v", by)
	if by["w2/"+string(queue.StatusDone)] == 0 {
		t.Errorf("worker w2 took over no segment: %v", by)
	}
	if by["w1/"+string(queue.StatusDone)] == 0 {
		t.Errorf("worker w1 did no segment before it was cut: %v", by)
	}

	// Decode through the origin as a player would: every frame is there.
	frames := countFrames(t, base+"/live/test/index.m3u8")
	t.Logf("decoded video frames through the origin: %d of %d", frames, seconds*fps)
	if frames < seconds*fps*95/100 {
		t.Errorf("decoded %d video frames, want about %d", frames, seconds*fps)
	}

	stopW2()
	stopW1()
	stopCoord()
}
