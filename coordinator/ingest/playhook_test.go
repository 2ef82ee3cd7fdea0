package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/hub"
)

// TestPlayHook has a player ask for a stream that is not in the hub: the
// OnPlay hook brings it in (here by starting a publisher) and its release
// runs once when the play ends. A hook error refuses the play, AuthPlay
// refuses players before the hook sees them, and DenyAll refuses
// publishers.
func TestPlayHook(t *testing.T) {
	leakCheck(t)
	src := clip(t)
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := hub.New(hub.Config{Logger: log})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "rtmp://" + ln.Addr().String() + "/live/"

	var (
		mu       sync.Mutex
		calls    []string
		released []string
	)
	// The publisher goes through a second server that takes publishes
	// into the same hub, as an edge's relay fills its hub from elsewhere.
	pubLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pubSrv := &Server{Hub: h, Log: log}
	authPlay := func(_ context.Context, stream string, q url.Values, remote string) error {
		if stream == "secret" && q.Get("token") != "ok" || !strings.HasPrefix(remote, "127.0.0.1:") {
			return errors.New("no token")
		}
		return nil
	}
	srv := &Server{Hub: h, Auth: DenyAll, AuthPlay: authPlay, Log: log, OnPlay: func(ctx context.Context, stream string) (func(), error) {
		mu.Lock()
		calls = append(calls, stream)
		mu.Unlock()
		if stream != "late" {
			return nil, errors.New("no origin has it")
		}
		p := publish(t, src, "rtmp://"+pubLn.Addr().String()+"/live/late", true)
		for {
			if s, ok := h.Lookup("late"); ok && s.Stats().GOPTags > 0 {
				break
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		return func() {
			mu.Lock()
			released = append(released, stream)
			mu.Unlock()
			p.cancel()
		}, nil
	}}
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	go func() { served <- pubSrv.Serve(pubLn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range []*Server{srv, pubSrv} {
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
		for range 2 {
			if err := <-served; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v", err)
			}
		}
		h.Close()
		if t.Failed() {
			t.Logf("server logs:\n%s", logs)
		}
	})

	player := run(t, "ffmpeg", "-hide_banner", "-nostdin", "-i", base+"late", "-t", "1", "-f", "null", "-")
	if err := player.wait(t, 20*time.Second); err != nil {
		t.Fatalf("player: %v\n%s", err, player.out)
	}
	if n := lastFrameCount(player.out.String()); n < 20 {
		t.Errorf("player decoded %d frames, want ~30:\n%s", n, player.out)
	}
	waitFor(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(released) == 1
	}, "the hook's release")

	refused := run(t, "ffmpeg", "-hide_banner", "-nostdin", "-i", base+"nope", "-f", "null", "-")
	if err := refused.wait(t, 10*time.Second); err == nil {
		t.Errorf("play of a stream the hook refused succeeded:\n%s", refused.out)
	}
	mustContain(t, "player output", refused.out.String(), `stream "nope" is not live`)

	denied := run(t, "ffmpeg", "-hide_banner", "-nostdin", "-i", base+"secret", "-f", "null", "-")
	if err := denied.wait(t, 10*time.Second); err == nil {
		t.Errorf("play without a token succeeded:\n%s", denied.out)
	}
	mustContain(t, "player output", denied.out.String(), `play of "secret" refused: not authorized`)
	// With the token it gets past AuthPlay to the hook, which has no such
	// stream.
	withToken := run(t, "ffmpeg", "-hide_banner", "-nostdin", "-i", base+"secret?token=ok", "-f", "null", "-")
	if err := withToken.wait(t, 10*time.Second); err == nil {
		t.Errorf("play of a stream the hook refused succeeded:\n%s", withToken.out)
	}
	mustContain(t, "player output", withToken.out.String(), `stream "secret" is not live`)

	pushed := publish(t, src, base+"pushed", false)
	if err := pushed.wait(t, 10*time.Second); err == nil {
		t.Errorf("publish through DenyAll succeeded:\n%s", pushed.out)
	}
	mustContain(t, "server log", logs.String(), "this server takes no publishers")

	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(calls, []string{"late", "nope", "secret"}) || !slices.Equal(released, []string{"late"}) {
		t.Errorf("hook calls %q, releases %q; want [late nope secret] and [late]", calls, released)
	}
}
