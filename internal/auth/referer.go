package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrBadPattern means a host pattern cannot be used.
var ErrBadPattern = errors.New("auth: bad host pattern")

// Referer decision reasons.
const (
	ReasonRefererDenied     = "referer_denied"
	ReasonRefererNotAllowed = "referer_not_allowed"
	ReasonRefererEmpty      = "referer_empty"
	ReasonRefererInvalid    = "referer_invalid"
)

// RefererRules allow or deny a play request by the host of its Referer.
// Deny wins over allow; with an allow list, only hosts on it pass. Host
// patterns are case-insensitive and ignore ports:
//
//	example.com      that host only
//	*.example.com    any subdomain of example.com (not example.com itself)
//	cdn*.example.com '*' inside a label matches within that label
//	*                any host
type RefererRules struct {
	allow, deny []hostPattern
	allowEmpty  bool
}

// NewRefererRules compiles the allow and deny host patterns. allowEmpty
// says whether a request without a Referer (direct visits, apps, players
// that send none) passes.
func NewRefererRules(allow, deny []string, allowEmpty bool) (*RefererRules, error) {
	r := &RefererRules{allowEmpty: allowEmpty}
	var err error
	if r.allow, err = compilePatterns(allow); err != nil {
		return nil, fmt.Errorf("auth: referer allow list: %w", err)
	}
	if r.deny, err = compilePatterns(deny); err != nil {
		return nil, fmt.Errorf("auth: referer deny list: %w", err)
	}
	return r, nil
}

// Check returns "" when referer passes, else the denial reason.
func (r *RefererRules) Check(referer string) string {
	if referer == "" {
		if r.allowEmpty {
			return ""
		}
		return ReasonRefererEmpty
	}
	host, ok := refererHost(referer)
	if !ok {
		if len(r.allow) > 0 {
			return ReasonRefererInvalid
		}
		return ""
	}
	for _, p := range r.deny {
		if p.match(host) {
			return ReasonRefererDenied
		}
	}
	if len(r.allow) == 0 {
		return ""
	}
	for _, p := range r.allow {
		if p.match(host) {
			return ""
		}
	}
	return ReasonRefererNotAllowed
}

// refererHost returns the lowercase host of an absolute referer URL.
func refererHost(referer string) (string, bool) {
	u, err := url.Parse(referer)
	if err != nil || u.Host == "" || u.Scheme == "" {
		return "", false
	}
	return normHost(u.Hostname()), true
}

func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// hostPattern is a compiled pattern; labels hold the pattern's labels,
// anySub a leading "*." that stands for one or more labels.
type hostPattern struct {
	all    bool
	anySub bool
	labels []string
}

func compilePatterns(ps []string) ([]hostPattern, error) {
	out := make([]hostPattern, 0, len(ps))
	for _, s := range ps {
		p, err := compilePattern(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func compilePattern(s string) (hostPattern, error) {
	orig := s
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.LastIndexByte(s, ':'); i >= 0 && i+1 < len(s) && strings.Trim(s[i+1:], "0123456789") == "" {
		s = s[:i] // a port; referers are matched by host
	}
	if s == "*" {
		return hostPattern{all: true}, nil
	}
	var p hostPattern
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		p.anySub, s = true, rest
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return hostPattern{}, fmt.Errorf("%w: %q", ErrBadPattern, orig)
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || strings.ContainsAny(l, "/:@?#[] ") {
			return hostPattern{}, fmt.Errorf("%w: %q", ErrBadPattern, orig)
		}
	}
	p.labels = strings.Split(s, ".")
	return p, nil
}

func (p hostPattern) match(host string) bool {
	if p.all {
		return true
	}
	labels := strings.Split(host, ".")
	if p.anySub {
		if len(labels) <= len(p.labels) {
			return false
		}
		labels = labels[len(labels)-len(p.labels):]
	} else if len(labels) != len(p.labels) {
		return false
	}
	for i, l := range labels {
		if !globLabel(p.labels[i], l) {
			return false
		}
	}
	return true
}

// globLabel matches one label where '*' stands for any run of
// characters; linear backtracking keeps long hostile labels cheap.
func globLabel(pat, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pat) && pat[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}
