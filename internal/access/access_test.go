package access

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/livegrid/livegrid/internal/auth"
	"github.com/livegrid/livegrid/internal/config"
)

const secret = "0123456789abcdef0123456789abcdef"

func TestPolicyFromConfig(t *testing.T) {
	now := time.Now()
	signed := auth.SignStream([]byte(secret), "cam", now.Add(time.Hour), "")
	cases := []struct {
		name    string
		edit    func(*config.Config)
		req     auth.Request
		allowed bool
	}{
		{"defaults let a viewer in", func(*config.Config) {}, auth.Request{Action: auth.ActionPlay, Stream: "cam", Path: "/live/cam/index.m3u8"}, true},
		{"token required", func(c *config.Config) { c.Play.TokenSecret = secret },
			auth.Request{Action: auth.ActionPlay, Stream: "cam", Path: "/live/cam/index.m3u8"}, false},
		{"token given", func(c *config.Config) { c.Play.TokenSecret = secret },
			auth.Request{Action: auth.ActionPlay, Stream: "cam", Path: "/live/cam/index.m3u8", Query: signed}, true},
		{"denied network", func(c *config.Config) { c.Play.DenyCIDRs = []string{"10.0.0.0/8"} },
			auth.Request{Action: auth.ActionPlay, Stream: "cam", Path: "/live/cam.flv", ClientIP: netip.MustParseAddr("10.1.2.3")}, false},
		{"single address allowed", func(c *config.Config) { c.Play.AllowCIDRs = []string{"192.0.2.7"} },
			auth.Request{Action: auth.ActionPlay, Stream: "cam", Path: "/live/cam.flv", ClientIP: netip.MustParseAddr("192.0.2.7")}, true},
		{"other address refused", func(c *config.Config) { c.Play.AllowCIDRs = []string{"192.0.2.7"} },
			auth.Request{Action: auth.ActionPlay, Stream: "cam", Path: "/live/cam.flv", ClientIP: netip.MustParseAddr("192.0.2.8")}, false},
		{"foreign referer", func(c *config.Config) { c.Play.RefererAllow = []string{"*.example.com"} },
			auth.Request{Action: auth.ActionPlay, Stream: "cam", Path: "/live/cam.flv", Referer: "https://evil.test/"}, false},
		{"own referer", func(c *config.Config) { c.Play.RefererAllow = []string{"*.example.com"} },
			auth.Request{Action: auth.ActionPlay, Stream: "cam", Path: "/live/cam.flv", Referer: "https://www.example.com/p"}, true},
		{"empty referer refused by policy", func(c *config.Config) { c.Play.RefererAllowEmpty = false },
			auth.Request{Action: auth.ActionPlay, Stream: "cam", Path: "/live/cam.flv"}, false},
		{"publish key", func(c *config.Config) { c.Publish.Auth, c.Publish.Key = config.AuthKey, "k1" },
			auth.Request{Action: auth.ActionPublish, Stream: "cam", Query: url.Values{"key": {"k1"}}}, true},
		{"publish wrong key", func(c *config.Config) { c.Publish.Auth, c.Publish.Key = config.AuthKey, "k1" },
			auth.Request{Action: auth.ActionPublish, Stream: "cam", Query: url.Values{"key": {"k2"}}}, false},
		{"publish token", func(c *config.Config) { c.Publish.Auth, c.Publish.TokenSecret = config.AuthToken, secret },
			auth.Request{Action: auth.ActionPublish, Stream: "cam", Query: auth.SignPublish([]byte(secret), "cam", now.Add(time.Minute), "")}, true},
		{"publish token for another stream", func(c *config.Config) { c.Publish.Auth, c.Publish.TokenSecret = config.AuthToken, secret },
			auth.Request{Action: auth.ActionPublish, Stream: "cam", Query: auth.SignPublish([]byte(secret), "other", now.Add(time.Minute), "")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			tc.edit(cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("config: %v", err)
			}
			p, closeDB, err := Policy(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer closeDB()
			if d := p.Check(context.Background(), tc.req); d.Allowed != tc.allowed {
				t.Fatalf("allowed = %v (%s: %s), want %v", d.Allowed, d.Rule, d.Reason, tc.allowed)
			}
		})
	}
}

func TestCallbackFromConfig(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	cfg := config.Default()
	cfg.Play.CallbackURL = srv.URL
	p, closeDB, err := Policy(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	req := auth.Request{Action: auth.ActionPlay, Stream: "cam", Path: "/live/cam.flv"}
	for range 2 {
		if d := p.Check(context.Background(), req); d.Allowed {
			t.Fatal("callback's 403 allowed the play")
		}
	}
	if calls != 1 {
		t.Fatalf("callback called %d times, want 1 (the answer is cached for 'play.callback_cache')", calls)
	}
	if Open(p) {
		t.Fatal("Open = true with a callback set")
	}
}

func TestBadGeoDB(t *testing.T) {
	cfg := config.Default()
	cfg.Play.GeoIPDB = t.TempDir() + "/missing.mmdb"
	cfg.Play.DenyCountries = []string{"de"}
	if _, _, err := Policy(cfg, nil); err == nil {
		t.Fatal("a missing GeoIP database was accepted")
	}
}

func TestAuthorizePlay(t *testing.T) {
	cfg := config.Default()
	cfg.Play.TokenSecret = secret
	p, closeDB, err := Policy(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	ctx := context.Background()
	if err := p.AuthorizePlay(ctx, "cam", nil, "192.0.2.1:5000"); err == nil {
		t.Fatal("RTMP play without a token allowed")
	}
	q := auth.SignStream([]byte(secret), "cam", time.Now().Add(time.Minute), "")
	if err := p.AuthorizePlay(ctx, "cam", q, "192.0.2.1:5000"); err != nil {
		t.Fatalf("RTMP play with the stream's token: %v", err)
	}
	if err := p.AuthorizePlay(ctx, "other", q, "192.0.2.1:5000"); err == nil {
		t.Fatal("a token for cam played another stream")
	}
}
