package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Query parameters of a signed URL.
const (
	ParamExpires = "expires"
	ParamToken   = "token"
	ParamIP      = "ip"
	ParamStream  = "stream"
	// ParamKey is the stream key of a publish URL (?key=...).
	ParamKey = "key"
)

// StreamPrefix is the path under which every stream's URLs live.
const StreamPrefix = "/live/"

// canonicalVersion is the first line of the canonical string.
const canonicalVersion = "livegrid-v1"

// Action is what a client asks to do with a stream.
type Action string

// Actions.
const (
	ActionPlay    Action = "play"
	ActionPublish Action = "publish"
)

var (
	// ErrMissingToken means the URL carries no token or no expiry.
	ErrMissingToken = errors.New("auth: missing token")
	// ErrExpired means the token's expiry has passed.
	ErrExpired = errors.New("auth: token expired")
	// ErrBadSignature means no secret produces the token, or the token
	// does not cover the requested path.
	ErrBadSignature = errors.New("auth: bad token signature")
	// ErrIPMismatch means the token is bound to another address.
	ErrIPMismatch = errors.New("auth: client address does not match token")
	// ErrMalformed means a token parameter cannot be parsed.
	ErrMalformed = errors.New("auth: malformed token")
	// ErrNoSecret means no usable (non-empty) secret is configured.
	ErrNoSecret = errors.New("auth: no secret configured")
)

// Keyring is a list of HMAC secrets: the first signs, every one verifies.
type Keyring [][]byte

// Sign returns the query of a play URL for path signed with the first
// secret (see Sign).
func (k Keyring) Sign(path string, expires time.Time, ipOrCIDR string) url.Values {
	return Sign(k.first(), path, expires, ipOrCIDR)
}

// SignStream returns the query of a stream-scoped play token signed with
// the first secret (see SignStream).
func (k Keyring) SignStream(stream string, expires time.Time, ipOrCIDR string) url.Values {
	return SignStream(k.first(), stream, expires, ipOrCIDR)
}

func (k Keyring) first() []byte {
	if len(k) == 0 {
		return nil
	}
	return k[0]
}

// Sign returns the query parameters (expires, token and, when ipOrCIDR is
// not empty, ip) that authorise playing path until expires. ipOrCIDR binds
// the token to one address ("203.0.113.7") or a network
// ("203.0.113.0/24"); a value that is neither is carried as given and
// Verify refuses it as malformed.
func Sign(secret []byte, path string, expires time.Time, ipOrCIDR string) url.Values {
	return sign(secret, ActionPlay, "path:"+path, "", expires, ipOrCIDR)
}

// SignStream returns the query parameters of a stream-scoped play token:
// one token for every path of the stream (see the package doc).
func SignStream(secret []byte, stream string, expires time.Time, ipOrCIDR string) url.Values {
	return sign(secret, ActionPlay, "stream:"+stream, stream, expires, ipOrCIDR)
}

// SignPublish returns the query parameters of a token that authorises
// publishing stream until expires.
func SignPublish(secret []byte, stream string, expires time.Time, ipOrCIDR string) url.Values {
	return sign(secret, ActionPublish, "stream:"+stream, stream, expires, ipOrCIDR)
}

func sign(secret []byte, action Action, resource, stream string, expires time.Time, ipOrCIDR string) url.Values {
	exp := strconv.FormatInt(expires.Unix(), 10)
	ip := canonicalIP(ipOrCIDR)
	q := url.Values{}
	q.Set(ParamExpires, exp)
	if ip != "" {
		q.Set(ParamIP, ip)
	}
	if stream != "" {
		q.Set(ParamStream, stream)
	}
	q.Set(ParamToken, hex.EncodeToString(mac(secret, action, resource, exp, ip)))
	return q
}

// canonicalIP writes an address without a zone or IPv4-in-IPv6 mapping
// and a network masked to its prefix; anything else is returned as given.
func canonicalIP(s string) string {
	if s == "" {
		return ""
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap().String()
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked().String()
	}
	return s
}

// parseIPBinding parses the ip parameter into the network it allows.
func parseIPBinding(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// canonical returns the signed string; see the package doc.
func canonical(action Action, resource, expires, ip string) string {
	return canonicalVersion + "\n" + string(action) + "\n" + resource + "\n" + expires + "\n" + ip
}

func mac(secret []byte, action Action, resource, expires, ip string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(canonical(action, resource, expires, ip)))
	return h.Sum(nil)
}

// Verify checks the play token in query for path: the signature against
// each secret in turn (constant-time), then the expiry against now, then
// the ip binding against clientIP. A stream-scoped token (stream=NAME)
// covers every path of NAME. Errors wrap ErrMissingToken, ErrMalformed,
// ErrBadSignature, ErrExpired, ErrIPMismatch or ErrNoSecret.
func Verify(secrets [][]byte, path string, query url.Values, clientIP netip.Addr, now time.Time) error {
	if err := verify(secrets, ActionPlay, path, "", query, clientIP, now); err != nil {
		return fmt.Errorf("auth: verify %q: %w", path, err)
	}
	return nil
}

// VerifyPublish checks the publish token in query for stream, like Verify.
func VerifyPublish(secrets [][]byte, stream string, query url.Values, clientIP netip.Addr, now time.Time) error {
	if err := verify(secrets, ActionPublish, "", stream, query, clientIP, now); err != nil {
		return fmt.Errorf("auth: verify publish %q: %w", stream, err)
	}
	return nil
}

// single returns the only value of key; repeated keys are refused so
// that two parts of the stack cannot read different values.
func single(q url.Values, key string) (string, bool, error) {
	v, ok := q[key]
	switch {
	case !ok || len(v) == 0:
		return "", false, nil
	case len(v) > 1:
		return "", true, fmt.Errorf("%w: %d %q parameters", ErrMalformed, len(v), key)
	}
	return v[0], true, nil
}

func verify(secrets [][]byte, action Action, path, stream string, q url.Values, clientIP netip.Addr, now time.Time) error {
	tok, hasTok, err := single(q, ParamToken)
	if err != nil {
		return err
	}
	exp, hasExp, err := single(q, ParamExpires)
	if err != nil {
		return err
	}
	if !hasTok || tok == "" {
		return ErrMissingToken
	}
	if !hasExp || exp == "" {
		return fmt.Errorf("%w: no %s", ErrMissingToken, ParamExpires)
	}
	ip, hasIP, err := single(q, ParamIP)
	if err != nil {
		return err
	}
	tokStream, hasStream, err := single(q, ParamStream)
	if err != nil {
		return err
	}
	if len(tok) != 2*sha256.Size {
		return fmt.Errorf("%w: token is %d characters, want %d", ErrMalformed, len(tok), 2*sha256.Size)
	}
	sum, err := hex.DecodeString(tok)
	if err != nil {
		return fmt.Errorf("%w: token is not hex", ErrMalformed)
	}
	expUnix, err := parseExpires(exp)
	if err != nil {
		return err
	}
	var allowed netip.Prefix
	if hasIP {
		if allowed, err = parseIPBinding(ip); err != nil {
			return fmt.Errorf("%w: %s %q", ErrMalformed, ParamIP, ip)
		}
	}

	var resource string
	switch {
	case action == ActionPublish:
		if !validStreamName(stream) {
			return fmt.Errorf("%w: stream name %q", ErrMalformed, stream)
		}
		if !hasStream || tokStream != stream {
			return fmt.Errorf("%w: token is not for stream %q", ErrBadSignature, stream)
		}
		resource = "stream:" + stream
	case hasStream:
		if !validStreamName(tokStream) {
			return fmt.Errorf("%w: %s %q", ErrMalformed, ParamStream, tokStream)
		}
		if !StreamCovers(tokStream, path) {
			return fmt.Errorf("%w: token for stream %q does not cover the path", ErrBadSignature, tokStream)
		}
		resource = "stream:" + tokStream
	default:
		resource = "path:" + path
	}
	if strings.ContainsAny(resource, "\r\n") || strings.ContainsAny(ip, "\r\n") {
		return fmt.Errorf("%w: newline in a signed field", ErrMalformed)
	}

	ok, usable := false, false
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		usable = true
		if hmac.Equal(sum, mac(s, action, resource, exp, ip)) {
			ok = true
			break
		}
	}
	if !usable {
		return ErrNoSecret
	}
	if !ok {
		return ErrBadSignature
	}
	if now.Unix() >= expUnix {
		return fmt.Errorf("%w at %s", ErrExpired, time.Unix(expUnix, 0).UTC().Format(time.RFC3339))
	}
	if hasIP && !allowed.Contains(clientIP.WithZone("").Unmap()) {
		return fmt.Errorf("%w: %s not in %s", ErrIPMismatch, clientIP, allowed)
	}
	return nil
}

// parseExpires reads a positive decimal Unix time, digits only.
func parseExpires(s string) (int64, error) {
	if len(s) > 19 {
		return 0, fmt.Errorf("%w: %s too long", ErrMalformed, ParamExpires)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %s %q is not a Unix time", ErrMalformed, ParamExpires, s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: %s %q is not a Unix time", ErrMalformed, ParamExpires, s)
	}
	return n, nil
}

// validStreamName reports whether s can name a stream: not empty, no
// slash, backslash, control character or dot-only name.
func validStreamName(s string) bool {
	if s == "" || len(s) > 256 || strings.Trim(s, ".") == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '/' || c == '\\' {
			return false
		}
	}
	return true
}

// StreamCovers reports whether path belongs to stream: /live/NAME,
// /live/NAME.flv or anything under /live/NAME/.
func StreamCovers(stream, path string) bool {
	rest, ok := strings.CutPrefix(path, StreamPrefix+stream)
	return ok && (rest == "" || rest == ".flv" || strings.HasPrefix(rest, "/"))
}

// StreamFromPath returns the stream a play path belongs to ("" when the
// path is not under /live/): /live/s/index.m3u8, /live/s/720p.flv and
// /live/s.flv all give "s".
func StreamFromPath(path string) string {
	rest, ok := strings.CutPrefix(path, StreamPrefix)
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i]
	}
	return strings.TrimSuffix(rest, ".flv")
}

// SignStreamURL returns baseURL with a stream-scoped play token valid for
// ttl from now, bound to ip when it is not empty. A baseURL without a path
// gets the stream's HLS master playlist (/live/STREAM/index.m3u8); a path
// must belong to the stream. It backs "livegrid token sign".
func SignStreamURL(secret, baseURL, stream string, ttl time.Duration, now time.Time, ip string) (string, error) {
	switch {
	case secret == "":
		return "", fmt.Errorf("auth: sign url: %w", ErrNoSecret)
	case !validStreamName(stream):
		return "", fmt.Errorf("auth: sign url: invalid stream name %q", stream)
	case ttl <= 0:
		return "", fmt.Errorf("auth: sign url: ttl %s must be positive", ttl)
	}
	if ip != "" {
		if _, err := parseIPBinding(ip); err != nil {
			return "", fmt.Errorf("auth: sign url: ip %q is neither an address nor a CIDR", ip)
		}
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return "", fmt.Errorf("auth: sign url: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("auth: sign url: %q needs a scheme and a host", baseURL)
	}
	switch {
	case u.Path == "" || u.Path == "/":
		u.Path = StreamPrefix + stream + "/index.m3u8"
		u.RawPath = ""
	case !StreamCovers(stream, u.Path):
		return "", fmt.Errorf("auth: sign url: path %q is not under %s%s", u.Path, StreamPrefix, stream)
	}
	q := u.Query()
	for k, v := range SignStream([]byte(secret), stream, now.Add(ttl), ip) {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
