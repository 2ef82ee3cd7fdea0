package ingest

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/hub"
)

func TestSecondPublisher(t *testing.T) {
	tests := []struct {
		name       string
		policy     hub.Policy
		wantEvents []string
	}{
		{
			name:       "refused by default",
			policy:     hub.Refuse,
			wantEvents: []string{"published test"},
		},
		{
			name:       "takes over",
			policy:     hub.TakeOver,
			wantEvents: []string{"published test", "unpublished test", "published test"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			src := clip(t)
			r := startRig(t, rigConfig{hub: hub.Config{Policy: tt.policy}})
			first := publish(t, src, r.rtmpURL("test"), true)
			s1 := r.waitLive(t, "test")
			firstAddr := s1.Stats().PublisherAddr

			second := publish(t, src, r.rtmpURL("test"), true)
			switch tt.policy {
			case hub.Refuse:
				err := second.wait(t, 10*time.Second)
				if err == nil {
					t.Fatalf("second publisher was not refused:\n%s", second.out)
				}
				// ffmpeg prints the onStatus description.
				mustContain(t, "second publisher's output", second.out.String(), `stream "test" is already being published`)
				s, ok := r.hub.Lookup("test")
				if !ok || s != s1 || first.exited() {
					t.Fatal("the first publisher lost its stream")
				}
				before := s.Stats().Tags
				waitFor(t, 5*time.Second, func() bool { return s.Stats().Tags > before }, "the first publisher to go on")
				mustContain(t, "server log", r.logs.String(), "rtmp request refused")
			case hub.TakeOver:
				if err := first.wait(t, 10*time.Second); err == nil {
					t.Errorf("first publisher was not cut off:\n%s", first.out)
				}
				s2 := r.waitLive(t, "test")
				if s2 == s1 || s2.Stats().PublisherAddr == firstAddr {
					t.Fatal("the stream still belongs to the first publisher")
				}
				if second.exited() {
					t.Fatalf("second publisher stopped: %v\n%s", second.err, second.out)
				}
				mustContain(t, "server log", r.logs.String(), "rtmp publisher evicted")
			}
			// Stop the live publishers now rather than at the clip's end.
			first.cancel()
			second.cancel()
			<-first.done
			<-second.done
			r.waitEvents(t, append(slices.Clone(tt.wantEvents), "unpublished test"))
		})
	}
}

// authCall is one call the test Authorizer saw.
type authCall struct {
	stream string
	query  url.Values
	remote string
}

func TestAuthorizer(t *testing.T) {
	tests := []struct {
		name      string
		path      string // after rtmp://HOST/live/
		wantOK    bool
		wantQuery url.Values
	}{
		{"right key", "test?key=secret", true, url.Values{"key": {"secret"}}},
		{"token and expiry", "test?token=secret&expires=1700000000", true, url.Values{"token": {"secret"}, "expires": {"1700000000"}}},
		{"wrong key", "test?key=guess", false, url.Values{"key": {"guess"}}},
		{"no key", "test", false, url.Values{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			src := clip(t)
			var mu sync.Mutex
			var calls []authCall
			auth := AuthorizerFunc(func(ctx context.Context, stream string, q url.Values, remote string) error {
				mu.Lock()
				calls = append(calls, authCall{stream, q, remote})
				mu.Unlock()
				if q.Get("key") == "secret" || q.Get("token") == "secret" {
					return nil
				}
				return errors.New("bad key")
			})
			r := startRig(t, rigConfig{auth: auth})
			p := publish(t, src, "rtmp://"+r.rtmpAddr+"/live/"+tt.path, false)
			err := p.wait(t, 10*time.Second)

			mu.Lock()
			defer mu.Unlock()
			if len(calls) != 1 {
				t.Fatalf("Authorizer called %d times, want once", len(calls))
			}
			c := calls[0]
			if c.stream != "test" || !equalQuery(c.query, tt.wantQuery) {
				t.Errorf("Authorizer got stream %q, query %v; want test, %v", c.stream, c.query, tt.wantQuery)
			}
			if host, _, _ := net.SplitHostPort(c.remote); host != "127.0.0.1" {
				t.Errorf("Authorizer got remote address %q", c.remote)
			}
			logs := r.logs.String()
			if tt.wantOK {
				if err != nil {
					t.Fatalf("publish refused: %v\n%s", err, p.out)
				}
				r.waitEvents(t, []string{"published test", "unpublished test"})
				return
			}
			if err == nil {
				t.Fatalf("publish was not refused:\n%s", p.out)
			}
			mustContain(t, "publisher's output", p.out.String(), `publish to "test" refused: not authorized`)
			mustContain(t, "server log", logs, "NetStream.Publish.Denied")
			mustContain(t, "server log", logs, "bad key")
			if got := r.eventList(); len(got) != 0 {
				t.Errorf("a refused publish made events %q", got)
			}
			if strings.Contains(p.out.String(), "bad key") {
				t.Error("the Authorizer's reason reached the client")
			}
		})
	}
}

func equalQuery(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
