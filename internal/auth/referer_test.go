package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestRefererRules(t *testing.T) {
	type rules struct {
		allow, deny []string
		allowEmpty  bool
	}
	site := rules{allow: []string{"example.com", "*.example.com", "player-*.cdn.net"}, deny: []string{"bad.example.com"}}
	tests := []struct {
		name    string
		rules   rules
		referer string
		want    string
	}{
		{"exact host", site, "https://example.com/watch", ""},
		{"subdomain", site, "https://www.example.com/watch?v=1", ""},
		{"deep subdomain", site, "https://a.b.example.com/", ""},
		{"case and port", site, "HTTPS://WWW.Example.COM:8443/x", ""},
		{"trailing dot", site, "https://www.example.com./x", ""},
		{"label glob", site, "https://player-eu.cdn.net/", ""},
		{"label glob empty run", site, "https://player-.cdn.net/", ""},
		{"label glob stays in label", site, "https://player-x.evil.cdn.net/", ReasonRefererNotAllowed},
		{"deny wins over allow", site, "https://bad.example.com/", ReasonRefererDenied},
		{"suffix is not subdomain", site, "https://notexample.com/", ReasonRefererNotAllowed},
		{"pattern as prefix", site, "https://example.com.evil.net/", ReasonRefererNotAllowed},
		{"userinfo trick", site, "https://example.com@evil.net/", ReasonRefererNotAllowed},
		{"empty denied", site, "", ReasonRefererEmpty},
		{"empty allowed", rules{allow: site.allow, allowEmpty: true}, "", ""},
		{"no scheme", site, "example.com/watch", ReasonRefererInvalid},
		{"garbage", site, "::::", ReasonRefererInvalid},
		{"deny list only", rules{deny: []string{"*.pirate.tv"}, allowEmpty: true}, "https://x.pirate.tv/", ReasonRefererDenied},
		{"deny list only, other host", rules{deny: []string{"*.pirate.tv"}, allowEmpty: true}, "https://pirate.tv/", ""},
		{"deny list only, garbage", rules{deny: []string{"*.pirate.tv"}, allowEmpty: true}, "garbage", ""},
		{"allow any", rules{allow: []string{"*"}}, "https://anything.io/", ""},
		{"long hostile label", rules{allow: []string{"a*b*c*d*e.com"}}, "https://" + strings.Repeat("a", 3000) + ".com/", ReasonRefererNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRefererRules(tt.rules.allow, tt.rules.deny, tt.rules.allowEmpty)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Check(tt.referer); got != tt.want {
				t.Errorf("Check(%q) = %q, want %q", tt.referer, got, tt.want)
			}
		})
	}
}

func TestRefererPatternErrors(t *testing.T) {
	for _, p := range []string{"", "*.", "a..b", "http://x.com/path", "*."} {
		t.Run(p, func(t *testing.T) {
			if _, err := NewRefererRules([]string{p}, nil, false); !errors.Is(err, ErrBadPattern) {
				t.Errorf("NewRefererRules(%q) = %v, want ErrBadPattern", p, err)
			}
		})
	}
}
