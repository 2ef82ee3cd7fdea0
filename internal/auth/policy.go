package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

var (
	// ErrMissingKey means a publish URL carries no key= where one is needed.
	ErrMissingKey = errors.New("auth: missing stream key")
	// ErrBadKey means the stream key does not match.
	ErrBadKey = errors.New("auth: wrong stream key")
	// ErrDenied means a rule other than a credential check refused.
	ErrDenied = errors.New("auth: denied")
)

// Credential decision reasons.
const (
	ReasonTokenMissing      = "token_missing"
	ReasonTokenExpired      = "token_expired"
	ReasonTokenBadSignature = "token_bad_signature"
	ReasonTokenIPMismatch   = "token_ip_mismatch"
	ReasonTokenMalformed    = "token_malformed"
	ReasonTokenNoSecret     = "token_no_secret"
	ReasonKeyMissing        = "key_missing"
	ReasonKeyInvalid        = "key_invalid"
)

// Decision is the verdict on one request: Rule names the rule that
// refused (RuleIP, RuleToken, ...) and Reason a short, fixed-vocabulary
// cause fit for a header and a metric label. Both are empty when allowed.
type Decision struct {
	Allowed bool
	Reason  string
	Rule    string
}

// Request is what a Policy decides on.
type Request struct {
	Action Action
	Stream string
	// Path is the cleaned URL path of a play (see CleanPath); publishes
	// have none.
	Path     string
	Query    url.Values
	ClientIP netip.Addr
	Referer  string
}

// Policy combines every access rule. Check applies them in a fixed
// order, cheapest and local first, so the first refusal names its rule:
//
//  1. IP: DenyCIDRs, country and region lists, allow lists (IPRules)
//  2. referer lists (plays only)
//  3. credentials: a play token when PlaySecrets is set; for a publish,
//     once any of PublishKey, StreamKeys or PublishSecrets is set, the
//     stream key (StreamKeys[stream], else PublishKey) or a publish token
//     signed with PublishSecrets; a stream with neither is refused
//  4. the HTTP callback, last because it costs a round trip
//
// A rule left unset (nil, empty) does not apply, so the zero Policy
// allows everything. Configure it, then use it from many goroutines; do
// not change it while in use.
type Policy struct {
	IP       *IPRules
	Referer  *RefererRules
	Callback *Callback

	// PlaySecrets verify play tokens; set, every play needs one.
	PlaySecrets Keyring
	// PublishSecrets verify publish tokens.
	PublishSecrets Keyring
	// PublishKey is the stream key of every stream without its own.
	PublishKey string
	// StreamKeys holds per-stream keys, which replace PublishKey.
	StreamKeys map[string]string

	// TrustedProxies are load balancers whose X-Forwarded-For the
	// middleware believes.
	TrustedProxies []netip.Prefix
	// MaxURLBytes and MaxHeaderBytes bound play requests; 0 means
	// DefaultMaxURLBytes and DefaultMaxHeaderBytes.
	MaxURLBytes    int
	MaxHeaderBytes int

	// Now is the clock for token expiry; nil uses time.Now.
	Now func() time.Time
	// Log receives denials at debug level; nil discards them.
	Log *slog.Logger

	denials denialCounter
}

// Validate refuses settings that cannot work.
func (p *Policy) Validate() error {
	if p.IP != nil {
		if err := p.IP.Validate(); err != nil {
			return err
		}
	}
	if p.Callback != nil {
		if err := p.Callback.Validate(); err != nil {
			return err
		}
	}
	for name, k := range map[string]Keyring{"play_secrets": p.PlaySecrets, "publish_secrets": p.PublishSecrets} {
		for _, s := range k {
			if len(s) < 16 {
				return fmt.Errorf("auth: '%s': a secret must be at least 16 bytes", name)
			}
		}
	}
	for stream, k := range p.StreamKeys {
		if k == "" {
			return fmt.Errorf("auth: 'stream_keys': stream %q has an empty key", stream)
		}
	}
	return nil
}

func (p *Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Policy) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Check decides on req and counts a denial by its reason.
func (p *Policy) Check(ctx context.Context, req Request) Decision {
	d, _ := p.check(ctx, req)
	return d
}

// check returns the decision and, for a denial, an error naming the cause.
func (p *Policy) check(ctx context.Context, req Request) (Decision, error) {
	d, err := p.decide(ctx, req)
	if !d.Allowed {
		p.denials.add(d.Reason)
		p.log().Debug("access denied", "action", req.Action, "stream", req.Stream,
			"client_ip", req.ClientIP, "rule", d.Rule, "reason", d.Reason, "error", err)
	}
	return d, err
}

func deny(rule, reason string, err error) (Decision, error) {
	return Decision{Rule: rule, Reason: reason}, err
}

func (p *Policy) decide(ctx context.Context, req Request) (Decision, error) {
	if p.IP != nil {
		if rule, reason := p.IP.Check(req.ClientIP); rule != "" {
			return deny(rule, reason, ErrDenied)
		}
	}
	if p.Referer != nil && req.Action == ActionPlay {
		if reason := p.Referer.Check(req.Referer); reason != "" {
			return deny(RuleReferer, reason, ErrDenied)
		}
	}
	switch req.Action {
	case ActionPlay:
		if len(p.PlaySecrets) > 0 {
			if err := Verify(p.PlaySecrets, req.Path, req.Query, req.ClientIP, p.now()); err != nil {
				return deny(RuleToken, tokenReason(err), err)
			}
		}
	case ActionPublish:
		if rule, reason, err := p.publishCredentials(req); err != nil {
			return deny(rule, reason, err)
		}
	default:
		return deny(RuleRequest, "unknown_action", fmt.Errorf("%w: action %q", ErrDenied, req.Action))
	}
	if p.Callback != nil {
		allowed, reason, err := p.Callback.Check(ctx, CallbackRequest{
			Action:   req.Action,
			Stream:   req.Stream,
			ClientIP: clientIPString(req.ClientIP),
			Referer:  req.Referer,
			Query:    req.Query.Encode(),
		})
		if err != nil {
			p.log().Warn("auth callback failed", "error", err, "allowed", allowed)
		}
		if !allowed {
			if err == nil {
				err = ErrDenied
			}
			return deny(RuleCallback, reason, err)
		}
	}
	return Decision{Allowed: true}, nil
}

func clientIPString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.WithZone("").Unmap().String()
}

func tokenReason(err error) string {
	switch {
	case errors.Is(err, ErrMissingToken):
		return ReasonTokenMissing
	case errors.Is(err, ErrExpired):
		return ReasonTokenExpired
	case errors.Is(err, ErrIPMismatch):
		return ReasonTokenIPMismatch
	case errors.Is(err, ErrMalformed):
		return ReasonTokenMalformed
	case errors.Is(err, ErrNoSecret):
		return ReasonTokenNoSecret
	default:
		return ReasonTokenBadSignature
	}
}

// publishCredentials accepts a matching stream key or a valid publish
// token; it reports the token's failure when a token was sent (or no key
// applies to the stream).
func (p *Policy) publishCredentials(req Request) (rule, reason string, err error) {
	want := p.StreamKeys[req.Stream]
	if want == "" {
		want = p.PublishKey
	}
	if p.PublishKey == "" && len(p.StreamKeys) == 0 && len(p.PublishSecrets) == 0 {
		return "", "", nil
	}
	key, hasKey, err := single(req.Query, ParamKey)
	if err != nil {
		return RuleStreamKey, ReasonKeyInvalid, err
	}
	if hasKey && want != "" && keyEqual(key, want) {
		return "", "", nil
	}
	if len(p.PublishSecrets) > 0 && (req.Query.Has(ParamToken) || want == "") {
		if err := VerifyPublish(p.PublishSecrets, req.Stream, req.Query, req.ClientIP, p.now()); err != nil {
			return RuleToken, tokenReason(err), err
		}
		return "", "", nil
	}
	if hasKey {
		return RuleStreamKey, ReasonKeyInvalid, ErrBadKey
	}
	return RuleStreamKey, ReasonKeyMissing, ErrMissingKey
}

// keyEqual compares in constant time, also in the keys' lengths.
func keyEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// AuthorizePublish lets RTMP ingest ask whether a publisher may publish
// stream (it is coordinator/ingest's Authorizer). remoteAddr is the
// publisher's "host:port". The error wraps the cause: ErrBadKey,
// ErrMissingKey, a token error (ErrExpired, ...) or ErrDenied.
func (p *Policy) AuthorizePublish(ctx context.Context, stream string, query url.Values, remoteAddr string) error {
	d, err := p.check(ctx, Request{
		Action:   ActionPublish,
		Stream:   stream,
		Query:    query,
		ClientIP: parseRemote(remoteAddr),
	})
	if d.Allowed {
		return nil
	}
	return fmt.Errorf("auth: publish %q from %s: %s by %s: %w", stream, remoteAddr, d.Reason, d.Rule, err)
}

// AuthorizePlay lets an RTMP play server ask whether a player may play
// stream, as the HTTP middleware does for HTTP-FLV: a stream-scoped play
// token (livegrid token sign) covers the RTMP play of the stream too.
func (p *Policy) AuthorizePlay(ctx context.Context, stream string, query url.Values, remoteAddr string) error {
	d, err := p.check(ctx, Request{
		Action:   ActionPlay,
		Stream:   stream,
		Path:     StreamPrefix + stream + ".flv",
		Query:    query,
		ClientIP: parseRemote(remoteAddr),
	})
	if d.Allowed {
		return nil
	}
	return fmt.Errorf("auth: play %q from %s: %s by %s: %w", stream, remoteAddr, d.Reason, d.Rule, err)
}

// parseRemote reads "host:port" or a bare address; the zero Addr when
// neither.
func parseRemote(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// Denials returns how many requests were refused, by reason. Reasons are
// a bounded set, fit for Prometheus labels.
func (p *Policy) Denials() map[string]uint64 {
	return p.denials.snapshot()
}

// maxReasons bounds the distinct reasons counted; the rest count as
// "other" (a callback's reasons are the operator's free text).
const maxReasons = 64

type denialCounter struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (c *denialCounter) add(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[string]uint64)
	}
	if _, ok := c.n[reason]; !ok && len(c.n) >= maxReasons {
		reason = "other"
	}
	c.n[reason]++
}

func (c *denialCounter) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}
