package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// callbackServer answers with handle and records the requests it saw.
type callbackServer struct {
	*httptest.Server
	calls atomic.Int32
	mu    sync.Mutex
	seen  []CallbackRequest
}

func newCallbackServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *callbackServer {
	t.Helper()
	s := &callbackServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		var req CallbackRequest
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("callback got %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("callback body: %v", err)
		}
		s.mu.Lock()
		s.seen = append(s.seen, req)
		s.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *callbackServer) requests() []CallbackRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CallbackRequest(nil), s.seen...)
}

func status(code int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		w.Write([]byte(body))
	}
}

var playReq = CallbackRequest{
	Action:   ActionPlay,
	Stream:   "cam1",
	ClientIP: "203.0.113.7",
	Referer:  "https://example.com/",
	Query:    "a=1",
}

func TestCallbackAnswers(t *testing.T) {
	tests := []struct {
		name        string
		handle      func(http.ResponseWriter, *http.Request)
		failOpen    bool
		wantAllowed bool
		wantReason  string
		wantErr     bool
	}{
		{name: "200 allows", handle: status(200, `{"reason":"ignored"}`), wantAllowed: true},
		{name: "204 allows", handle: status(204, ""), wantAllowed: true},
		{name: "403 denies", handle: status(403, ""), wantReason: ReasonCallbackDenied},
		{name: "401 with reason", handle: status(401, `{"reason":"subscription expired!"}`), wantReason: "subscription_expired"},
		{name: "404 with hostile reason", handle: status(404, `{"reason":"x\r\nSet-Cookie: a=b"}`), wantReason: "xSet-Cookie:_ab"},
		{name: "403 with text body", handle: status(403, "nope"), wantReason: ReasonCallbackDenied},
		{name: "500 fails closed", handle: status(500, ""), wantReason: ReasonCallbackError, wantErr: true},
		{name: "500 fails open", handle: status(500, ""), failOpen: true, wantAllowed: true, wantErr: true},
		{name: "304 is a failure", handle: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotModified)
		}, wantReason: ReasonCallbackError, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCallbackServer(t, tt.handle)
			c := &Callback{URL: srv.URL, AllowOnTimeout: tt.failOpen, Timeout: time.Second}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			allowed, reason, err := c.Check(context.Background(), playReq)
			if allowed != tt.wantAllowed || reason != tt.wantReason || (err != nil) != tt.wantErr {
				t.Fatalf("Check = %v, %q, %v; want %v, %q, error %v", allowed, reason, err, tt.wantAllowed, tt.wantReason, tt.wantErr)
			}
			if seen := srv.requests(); len(seen) != 1 || seen[0] != playReq {
				t.Errorf("callback saw %+v, want one %+v", seen, playReq)
			}
		})
	}
}

func TestCallbackTimeout(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		name := map[bool]string{false: "deny on timeout", true: "allow on timeout"}[failOpen]
		t.Run(name, func(t *testing.T) {
			release := make(chan struct{})
			srv := newCallbackServer(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			t.Cleanup(func() { close(release) })
			c := &Callback{URL: srv.URL, Timeout: 30 * time.Millisecond, AllowOnTimeout: failOpen, CacheTTL: time.Minute}
			start := time.Now()
			allowed, reason, err := c.Check(context.Background(), playReq)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Check took %s with a 30ms timeout", took)
			}
			if err == nil {
				t.Fatal("no error on timeout")
			}
			if allowed != failOpen {
				t.Errorf("allowed = %v, want %v", allowed, failOpen)
			}
			if !failOpen && reason != ReasonCallbackTimeout {
				t.Errorf("reason %q, want %q", reason, ReasonCallbackTimeout)
			}
			if len(c.cache) != 0 {
				t.Error("a timeout was cached")
			}
		})
	}
}

func TestCallbackCache(t *testing.T) {
	var deny atomic.Bool
	srv := newCallbackServer(t, func(w http.ResponseWriter, r *http.Request) {
		if deny.Load() {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	now := testNow
	c := &Callback{URL: srv.URL, CacheTTL: 10 * time.Second, Now: func() time.Time { return now }, MaxEntries: 3}
	check := func(req CallbackRequest) bool {
		t.Helper()
		allowed, _, err := c.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return allowed
	}
	other := playReq
	other.Query = "a=2"
	publish := playReq
	publish.Action = ActionPublish

	steps := []struct {
		name        string
		advance     time.Duration
		deny        bool
		req         CallbackRequest
		wantAllowed bool
		wantCalls   int32
	}{
		{name: "first call asks", req: playReq, wantAllowed: true, wantCalls: 1},
		{name: "repeat is cached", advance: 5 * time.Second, req: playReq, wantAllowed: true, wantCalls: 1},
		{name: "other query asks", req: other, wantAllowed: true, wantCalls: 2},
		{name: "other action asks", req: publish, wantAllowed: true, wantCalls: 3},
		{name: "cached allow outlives a changed answer", deny: true, advance: 4 * time.Second, req: playReq, wantAllowed: true, wantCalls: 3},
		{name: "expired entry asks again", deny: true, advance: time.Second, req: playReq, wantAllowed: false, wantCalls: 4},
		{name: "denial is cached", deny: false, advance: 9 * time.Second, req: playReq, wantAllowed: false, wantCalls: 4},
		{name: "denial expires", deny: false, advance: time.Second, req: playReq, wantAllowed: true, wantCalls: 5},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		deny.Store(s.deny)
		if got := check(s.req); got != s.wantAllowed {
			t.Fatalf("%s: allowed = %v, want %v", s.name, got, s.wantAllowed)
		}
		if got := srv.calls.Load(); got != s.wantCalls {
			t.Fatalf("%s: %d calls, want %d", s.name, got, s.wantCalls)
		}
		if len(c.cache) > c.MaxEntries {
			t.Fatalf("%s: %d cache entries, bound %d", s.name, len(c.cache), c.MaxEntries)
		}
	}
}

func TestCallbackValidate(t *testing.T) {
	for _, u := range []string{"", "ftp://x/", "/relative", "http://"} {
		if err := (&Callback{URL: u}).Validate(); err == nil {
			t.Errorf("Validate accepted URL %q", u)
		}
	}
}
