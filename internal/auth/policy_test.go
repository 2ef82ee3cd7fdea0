package auth

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"
)

func TestPolicyOrder(t *testing.T) {
	srv := newCallbackServer(t, status(http.StatusOK, ""))
	denyCallback := newCallbackServer(t, status(http.StatusForbidden, `{"reason":"blackout"}`))
	referers, err := NewRefererRules([]string{"*.example.com"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	const path = "/live/cam1/index.m3u8"
	good := SignStream(testSecret, "cam1", testNow.Add(time.Hour), "")
	newPolicy := func(callbackURL string) *Policy {
		return &Policy{
			IP:          &IPRules{DenyCIDRs: prefixes("198.51.100.0/24")},
			Referer:     referers,
			PlaySecrets: Keyring{testSecret},
			Callback:    &Callback{URL: callbackURL, Timeout: time.Second},
			Now:         func() time.Time { return testNow },
		}
	}
	req := Request{
		Action:   ActionPlay,
		Stream:   "cam1",
		Path:     path,
		Query:    good,
		ClientIP: viewer,
		Referer:  "https://www.example.com/watch",
	}
	tests := []struct {
		name      string
		callback  string
		edit      func(*Request)
		want      Decision
		wantCalls int32
	}{
		{name: "all pass", callback: srv.URL, want: Decision{Allowed: true}, wantCalls: 1},
		{name: "ip first", callback: denyCallback.URL, edit: func(r *Request) {
			r.ClientIP = netip.MustParseAddr("198.51.100.1")
			r.Referer = "https://evil.net/"
			r.Query = url.Values{}
		}, want: Decision{Rule: RuleIP, Reason: ReasonIPDenied}},
		{name: "referer before token", callback: denyCallback.URL, edit: func(r *Request) {
			r.Referer = "https://evil.net/"
			r.Query = url.Values{}
		}, want: Decision{Rule: RuleReferer, Reason: ReasonRefererNotAllowed}},
		{name: "token before callback", callback: denyCallback.URL, edit: func(r *Request) {
			r.Query = url.Values{}
		}, want: Decision{Rule: RuleToken, Reason: ReasonTokenMissing}},
		{name: "expired token", callback: srv.URL, edit: func(r *Request) {
			r.Query = SignStream(testSecret, "cam1", testNow, "")
		}, want: Decision{Rule: RuleToken, Reason: ReasonTokenExpired}},
		{name: "token bound elsewhere", callback: srv.URL, edit: func(r *Request) {
			r.Query = SignStream(testSecret, "cam1", testNow.Add(time.Hour), "192.0.2.1")
		}, want: Decision{Rule: RuleToken, Reason: ReasonTokenIPMismatch}},
		{name: "callback last", callback: denyCallback.URL, want: Decision{Rule: RuleCallback, Reason: "blackout"}, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(tt.callback)
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			before := srv.calls.Load() + denyCallback.calls.Load()
			r := req
			if tt.edit != nil {
				tt.edit(&r)
			}
			got := p.Check(context.Background(), r)
			if got != tt.want {
				t.Errorf("Check = %+v, want %+v", got, tt.want)
			}
			if calls := srv.calls.Load() + denyCallback.calls.Load() - before; calls != tt.wantCalls {
				t.Errorf("callback called %d times, want %d", calls, tt.wantCalls)
			}
			denials := p.Denials()
			if tt.want.Allowed && len(denials) != 0 || !tt.want.Allowed && denials[tt.want.Reason] != 1 {
				t.Errorf("Denials = %v", denials)
			}
		})
	}
}

func TestZeroPolicyAllows(t *testing.T) {
	var p Policy
	for _, a := range []Action{ActionPlay, ActionPublish} {
		if d := p.Check(context.Background(), Request{Action: a, Stream: "x"}); !d.Allowed {
			t.Errorf("%s: %+v", a, d)
		}
	}
	if d := p.Check(context.Background(), Request{Action: "delete"}); d.Allowed {
		t.Error("unknown action allowed")
	}
}

func TestAuthorizePublish(t *testing.T) {
	exp := testNow.Add(time.Minute)
	tests := []struct {
		name   string
		policy *Policy
		stream string
		query  url.Values
		remote string
		want   error // nil allows
	}{
		{name: "global key", policy: &Policy{PublishKey: "global-key"}, stream: "cam1", query: url.Values{"key": {"global-key"}}},
		{name: "global key wrong", policy: &Policy{PublishKey: "global-key"}, stream: "cam1", query: url.Values{"key": {"global-kex"}}, want: ErrBadKey},
		{name: "global key prefix", policy: &Policy{PublishKey: "global-key"}, stream: "cam1", query: url.Values{"key": {"global"}}, want: ErrBadKey},
		{name: "key missing", policy: &Policy{PublishKey: "global-key"}, stream: "cam1", query: url.Values{}, want: ErrMissingKey},
		{name: "key repeated", policy: &Policy{PublishKey: "global-key"}, stream: "cam1", query: url.Values{"key": {"global-key", "x"}}, want: ErrMalformed},
		{name: "stream key", policy: &Policy{PublishKey: "global-key", StreamKeys: map[string]string{"cam1": "cam1-key"}}, stream: "cam1", query: url.Values{"key": {"cam1-key"}}},
		{name: "stream key replaces global", policy: &Policy{PublishKey: "global-key", StreamKeys: map[string]string{"cam1": "cam1-key"}}, stream: "cam1", query: url.Values{"key": {"global-key"}}, want: ErrBadKey},
		{name: "other stream's key", policy: &Policy{StreamKeys: map[string]string{"cam1": "cam1-key", "cam2": "cam2-key"}}, stream: "cam2", query: url.Values{"key": {"cam1-key"}}, want: ErrBadKey},
		{name: "stream without key, no global", policy: &Policy{StreamKeys: map[string]string{"cam1": "cam1-key"}}, stream: "cam9", query: url.Values{}, want: ErrMissingKey},
		{name: "stream without key, key sent", policy: &Policy{StreamKeys: map[string]string{"cam1": "cam1-key"}}, stream: "cam9", query: url.Values{"key": {"cam1-key"}}, want: ErrBadKey},
		{name: "stream without key, token", policy: &Policy{StreamKeys: map[string]string{"cam1": "cam1-key"}, PublishSecrets: Keyring{testSecret}}, stream: "cam9", query: SignPublish(testSecret, "cam9", exp, "")},
		{name: "token", policy: &Policy{PublishSecrets: Keyring{testSecret}}, stream: "cam1", query: SignPublish(testSecret, "cam1", exp, "")},
		{name: "token expired", policy: &Policy{PublishSecrets: Keyring{testSecret}}, stream: "cam1", query: SignPublish(testSecret, "cam1", testNow, ""), want: ErrExpired},
		{name: "token for other stream", policy: &Policy{PublishSecrets: Keyring{testSecret}}, stream: "cam2", query: SignPublish(testSecret, "cam1", exp, ""), want: ErrBadSignature},
		{name: "play token refused", policy: &Policy{PublishSecrets: Keyring{testSecret}}, stream: "cam1", query: SignStream(testSecret, "cam1", exp, ""), want: ErrBadSignature},
		{name: "token missing", policy: &Policy{PublishSecrets: Keyring{testSecret}}, stream: "cam1", query: url.Values{}, want: ErrMissingToken},
		{name: "token bound to publisher", policy: &Policy{PublishSecrets: Keyring{testSecret}}, stream: "cam1", query: SignPublish(testSecret, "cam1", exp, "203.0.113.7"), remote: "203.0.113.7:50000"},
		{name: "token bound to other address", policy: &Policy{PublishSecrets: Keyring{testSecret}}, stream: "cam1", query: SignPublish(testSecret, "cam1", exp, "203.0.113.7"), remote: "[2001:db8::1]:50000", want: ErrIPMismatch},
		{name: "key or token: key", policy: &Policy{PublishKey: "global-key", PublishSecrets: Keyring{testSecret}}, stream: "cam1", query: url.Values{"key": {"global-key"}}},
		{name: "key or token: token", policy: &Policy{PublishKey: "global-key", PublishSecrets: Keyring{testSecret}}, stream: "cam1", query: SignPublish(testSecret, "cam1", exp, "")},
		{name: "key or token: bad token reported", policy: &Policy{PublishKey: "global-key", PublishSecrets: Keyring{testSecret}}, stream: "cam1",
			query: with(SignPublish(otherSecret, "cam1", exp, ""), "key", "wrong"), want: ErrBadSignature},
		{name: "key or token: neither", policy: &Policy{PublishKey: "global-key", PublishSecrets: Keyring{testSecret}}, stream: "cam1", query: url.Values{}, want: ErrMissingKey},
		{name: "ip rule applies to publish", policy: &Policy{PublishKey: "k", IP: &IPRules{AllowCIDRs: prefixes("10.0.0.0/8")}}, stream: "cam1", query: url.Values{"key": {"k"}}, want: ErrDenied},
		{name: "unparseable remote with ip rules", policy: &Policy{IP: &IPRules{AllowCIDRs: prefixes("10.0.0.0/8")}}, stream: "cam1", query: url.Values{}, remote: "pipe", want: ErrDenied},
		{name: "referer rules skip publish", policy: &Policy{PublishKey: "k", Referer: mustReferer(t)}, stream: "cam1", query: url.Values{"key": {"k"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.Now = func() time.Time { return testNow }
			remote := tt.remote
			if remote == "" {
				remote = "203.0.113.7:41000"
			}
			err := tt.policy.AuthorizePublish(context.Background(), tt.stream, tt.query, remote)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("AuthorizePublish = %v, want %v", err, tt.want)
			}
			if err != nil && len(tt.policy.Denials()) != 1 {
				t.Errorf("Denials = %v, want one reason", tt.policy.Denials())
			}
		})
	}
}

func mustReferer(t *testing.T) *RefererRules {
	t.Helper()
	r, err := NewRefererRules([]string{"example.com"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy *Policy
	}{
		{"short secret", &Policy{PlaySecrets: Keyring{[]byte("short")}}},
		{"empty publish secret", &Policy{PublishSecrets: Keyring{nil}}},
		{"empty stream key", &Policy{StreamKeys: map[string]string{"cam1": ""}}},
		{"bad callback", &Policy{Callback: &Callback{URL: "nope"}}},
		{"geo without database", &Policy{IP: &IPRules{DenyCountries: []string{"CN"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.Validate(); err == nil {
				t.Error("Validate accepted it")
			}
		})
	}
}

func TestDenialReasonsBounded(t *testing.T) {
	var p Policy
	for i := range 2 * maxReasons {
		p.denials.add(string(rune('A' + i)))
	}
	d := p.Denials()
	if len(d) > maxReasons+1 || d["other"] != maxReasons {
		t.Errorf("%d reasons, other = %d", len(d), d["other"])
	}
}
