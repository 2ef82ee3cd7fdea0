package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	testNow     = time.Unix(1_767_225_600, 0) // 2026-01-01T00:00:00Z
	testSecret  = []byte("0123456789abcdef-current")
	oldSecret   = []byte("0123456789abcdef-previous")
	otherSecret = []byte("0123456789abcdef-stranger")
	viewer      = netip.MustParseAddr("203.0.113.7")
)

func with(q url.Values, key, value string) url.Values {
	c := url.Values{}
	for k, v := range q {
		c[k] = append([]string(nil), v...)
	}
	c.Set(key, value)
	return c
}

func without(q url.Values, key string) url.Values {
	c := with(q, "_", "")
	delete(c, "_")
	delete(c, key)
	return c
}

func TestVerify(t *testing.T) {
	const path = "/live/cam1/index.m3u8"
	exp := testNow.Add(time.Hour)
	plain := Sign(testSecret, path, exp, "")
	stream := SignStream(testSecret, "cam1", exp, "")

	tests := []struct {
		name     string
		secrets  [][]byte
		path     string
		query    url.Values
		clientIP netip.Addr
		now      time.Time
		want     error
	}{
		{name: "valid", path: path, query: plain},
		{name: "valid one second before expiry", path: path, query: plain, now: exp.Add(-time.Second)},
		{name: "expired at expiry", path: path, query: plain, now: exp, want: ErrExpired},
		{name: "expired later", path: path, query: plain, now: exp.Add(time.Hour), want: ErrExpired},
		{name: "tampered path", path: "/live/cam2/index.m3u8", query: plain, want: ErrBadSignature},
		{name: "tampered expiry", path: path, query: with(plain, ParamExpires, "1767232801"), want: ErrBadSignature},
		{name: "expiry with leading zero", path: path, query: with(plain, ParamExpires, "0"+plain.Get(ParamExpires)), want: ErrBadSignature},
		{name: "tampered token", path: path, query: with(plain, ParamToken, strings.Repeat("ab", 32)), want: ErrBadSignature},
		{name: "uppercase hex", path: path, query: with(plain, ParamToken, strings.ToUpper(plain.Get(ParamToken)))},
		{name: "added ip binding", path: path, query: with(plain, ParamIP, "203.0.113.7"), want: ErrBadSignature},
		{name: "ip bound", path: path, query: Sign(testSecret, path, exp, "203.0.113.7")},
		{name: "ip bound, ipv4-mapped client", path: path, query: Sign(testSecret, path, exp, "203.0.113.7"),
			clientIP: netip.MustParseAddr("::ffff:203.0.113.7")},
		{name: "wrong ip", path: path, query: Sign(testSecret, path, exp, "198.51.100.1"), want: ErrIPMismatch},
		{name: "ip bound, no client ip", path: path, query: Sign(testSecret, path, exp, "203.0.113.7"),
			clientIP: netip.Addr{}, want: ErrIPMismatch},
		{name: "cidr inside", path: path, query: Sign(testSecret, path, exp, "203.0.113.0/24")},
		{name: "cidr outside", path: path, query: Sign(testSecret, path, exp, "203.0.112.0/24"), want: ErrIPMismatch},
		{name: "cidr widened", path: path, query: with(Sign(testSecret, path, exp, "203.0.113.0/24"), ParamIP, "0.0.0.0/0"), want: ErrBadSignature},
		{name: "ipv6 cidr", path: path, query: Sign(testSecret, path, exp, "2001:db8::/32"),
			clientIP: netip.MustParseAddr("2001:db8:1::5")},
		{name: "stream token on playlist", path: path, query: stream},
		{name: "stream token on segment", path: "/live/cam1/720p/seg-42.m4s", query: stream},
		{name: "stream token on flv", path: "/live/cam1.flv", query: stream},
		{name: "stream token on other stream", path: "/live/cam10/index.m3u8", query: stream, want: ErrBadSignature},
		{name: "stream token renamed", path: "/live/cam2/index.m3u8", query: with(stream, ParamStream, "cam2"), want: ErrBadSignature},
		{name: "stream token with traversal name", path: "/live/../x", query: with(stream, ParamStream, ".."), want: ErrMalformed},
		{name: "path token used with stream param", path: path, query: with(plain, ParamStream, "cam1"), want: ErrBadSignature},
		{name: "publish token used to play", path: path, query: SignPublish(testSecret, "cam1", exp, ""), want: ErrBadSignature},
		{name: "rotated: signed with previous", secrets: [][]byte{testSecret, oldSecret}, path: path, query: Sign(oldSecret, path, exp, "")},
		{name: "rotated: signed with current", secrets: [][]byte{testSecret, oldSecret}, path: path, query: plain},
		{name: "rotated: retired secret", secrets: [][]byte{testSecret, oldSecret}, path: path, query: Sign(otherSecret, path, exp, ""), want: ErrBadSignature},
		{name: "empty secrets skipped", secrets: [][]byte{nil, testSecret}, path: path, query: plain},
		{name: "no usable secret", secrets: [][]byte{nil}, path: path, query: plain, want: ErrNoSecret},
		{name: "empty query", path: path, query: url.Values{}, want: ErrMissingToken},
		{name: "missing token", path: path, query: without(plain, ParamToken), want: ErrMissingToken},
		{name: "empty token", path: path, query: with(plain, ParamToken, ""), want: ErrMissingToken},
		{name: "missing expires", path: path, query: without(plain, ParamExpires), want: ErrMissingToken},
		{name: "short token", path: path, query: with(plain, ParamToken, "abcd"), want: ErrMalformed},
		{name: "non-hex token", path: path, query: with(plain, ParamToken, strings.Repeat("zz", 32)), want: ErrMalformed},
		{name: "non-numeric expires", path: path, query: with(plain, ParamExpires, "17672256OO"), want: ErrMalformed},
		{name: "signed expires", path: path, query: with(plain, ParamExpires, "+1767229200"), want: ErrMalformed},
		{name: "zero expires", path: path, query: with(plain, ParamExpires, "0"), want: ErrMalformed},
		{name: "huge expires", path: path, query: with(plain, ParamExpires, "99999999999999999999"), want: ErrMalformed},
		{name: "bad ip", path: path, query: with(plain, ParamIP, "not-an-ip"), want: ErrMalformed},
		{name: "repeated token", path: path, query: url.Values{ParamToken: {plain.Get(ParamToken), "x"}, ParamExpires: plain[ParamExpires]}, want: ErrMalformed},
		{name: "newline in path", path: path + "\n1\n", query: plain, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets := tt.secrets
			if secrets == nil {
				secrets = [][]byte{testSecret}
			}
			now := tt.now
			if now.IsZero() {
				now = testNow
			}
			ip := tt.clientIP
			if ip == (netip.Addr{}) && !strings.Contains(tt.name, "no client ip") {
				ip = viewer
			}
			err := Verify(secrets, tt.path, tt.query, ip, now)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "auth: verify") {
				t.Errorf("error %q does not name the operation", err)
			}
		})
	}
}

func TestVerifyPublish(t *testing.T) {
	exp := testNow.Add(time.Minute)
	tests := []struct {
		name   string
		stream string
		query  url.Values
		want   error
	}{
		{name: "valid", stream: "cam1", query: SignPublish(testSecret, "cam1", exp, "")},
		{name: "other stream", stream: "cam2", query: SignPublish(testSecret, "cam1", exp, ""), want: ErrBadSignature},
		{name: "stream param swapped", stream: "cam2", query: with(SignPublish(testSecret, "cam1", exp, ""), ParamStream, "cam2"), want: ErrBadSignature},
		{name: "play token", stream: "cam1", query: SignStream(testSecret, "cam1", exp, ""), want: ErrBadSignature},
		{name: "expired", stream: "cam1", query: SignPublish(testSecret, "cam1", testNow, ""), want: ErrExpired},
		{name: "ip bound", stream: "cam1", query: SignPublish(testSecret, "cam1", exp, "203.0.113.0/24")},
		{name: "wrong ip", stream: "cam1", query: SignPublish(testSecret, "cam1", exp, "198.51.100.0/24"), want: ErrIPMismatch},
		{name: "bad stream name", stream: "a/b", query: SignPublish(testSecret, "a/b", exp, ""), want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyPublish(Keyring{testSecret}, tt.stream, tt.query, viewer, testNow)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("VerifyPublish = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestCanonicalString pins the documented canonical string, so other
// systems that mint tokens keep working.
func TestCanonicalString(t *testing.T) {
	tests := []struct {
		name      string
		query     url.Values
		canonical string
	}{
		{
			name:      "stream, package doc example",
			query:     SignStream([]byte("s3cret"), "cam1", time.Unix(1767225600, 0), ""),
			canonical: "livegrid-v1\nplay\nstream:cam1\n1767225600\n",
		},
		{
			name:      "path with cidr",
			query:     Sign([]byte("s3cret"), "/live/cam1/index.m3u8", time.Unix(1767225600, 0), "203.0.113.9/24"),
			canonical: "livegrid-v1\nplay\npath:/live/cam1/index.m3u8\n1767225600\n203.0.113.0/24",
		},
		{
			name:      "publish with ip",
			query:     SignPublish([]byte("s3cret"), "cam1", time.Unix(1767225600, 0), "::ffff:203.0.113.9"),
			canonical: "livegrid-v1\npublish\nstream:cam1\n1767225600\n203.0.113.9",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hmac.New(sha256.New, []byte("s3cret"))
			h.Write([]byte(tt.canonical))
			if got, want := tt.query.Get(ParamToken), hex.EncodeToString(h.Sum(nil)); got != want {
				t.Errorf("token %s, want HMAC of %q = %s", got, tt.canonical, want)
			}
		})
	}
	// The digest the package doc prints for its example.
	if got, want := SignStream([]byte("s3cret"), "cam1", time.Unix(1767225600, 0), "").Get(ParamToken), docExampleToken; got != want {
		t.Errorf("doc example token %s, want %s", got, want)
	}
}

const docExampleToken = "cd91615729cb426ee66a82434d41e31c372411b8b1203cdc2ba04536caa83fa4"

func TestKeyringSignsWithFirst(t *testing.T) {
	k := Keyring{testSecret, oldSecret}
	q := k.Sign("/live/a.flv", testNow.Add(time.Minute), "")
	if err := Verify([][]byte{testSecret}, "/live/a.flv", q, viewer, testNow); err != nil {
		t.Fatalf("first secret does not verify: %v", err)
	}
	if err := Verify([][]byte{oldSecret}, "/live/a.flv", q, viewer, testNow); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("second secret signed: %v", err)
	}
	if err := Verify(k, "/live/a/x.ts", k.SignStream("a", testNow.Add(time.Minute), ""), viewer, testNow); err != nil {
		t.Fatal(err)
	}
}

func TestStreamPaths(t *testing.T) {
	tests := []struct {
		path   string
		stream string
	}{
		{"/live/cam1/index.m3u8", "cam1"},
		{"/live/cam1/720p.flv", "cam1"},
		{"/live/cam1.flv", "cam1"},
		{"/live/cam1", "cam1"},
		{"/live/cam1/", "cam1"},
		{"/vod/cam1/index.m3u8", ""},
		{"/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := StreamFromPath(tt.path); got != tt.stream {
				t.Errorf("StreamFromPath = %q, want %q", got, tt.stream)
			}
			if tt.stream != "" && !StreamCovers(tt.stream, tt.path) {
				t.Errorf("StreamCovers(%q) = false", tt.stream)
			}
			if StreamCovers("cam", tt.path) {
				t.Errorf("StreamCovers(cam) = true")
			}
		})
	}
}

func TestSignStreamURL(t *testing.T) {
	tests := []struct {
		name     string
		base     string
		stream   string
		ttl      time.Duration
		ip       string
		wantPath string
		wantErr  bool
	}{
		{name: "host only", base: "https://edge.example.com", stream: "cam1", ttl: time.Hour, wantPath: "/live/cam1/index.m3u8"},
		{name: "slash", base: "https://edge.example.com/", stream: "cam1", ttl: time.Hour, wantPath: "/live/cam1/index.m3u8"},
		{name: "flv path kept", base: "http://edge:8080/live/cam1.flv?x=1", stream: "cam1", ttl: time.Minute, wantPath: "/live/cam1.flv"},
		{name: "ip bound", base: "https://edge.example.com", stream: "cam1", ttl: time.Hour, ip: "203.0.113.0/24", wantPath: "/live/cam1/index.m3u8"},
		{name: "path of another stream", base: "https://edge/live/cam2/index.m3u8", stream: "cam1", ttl: time.Hour, wantErr: true},
		{name: "no scheme", base: "edge.example.com", stream: "cam1", ttl: time.Hour, wantErr: true},
		{name: "zero ttl", base: "https://edge", stream: "cam1", wantErr: true},
		{name: "bad ip", base: "https://edge", stream: "cam1", ttl: time.Hour, ip: "nope", wantErr: true},
		{name: "bad stream", base: "https://edge", stream: "a/b", ttl: time.Hour, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := SignStreamURL(string(testSecret), tt.base, tt.stream, tt.ttl, testNow, tt.ip)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("SignStreamURL = %q, want an error", s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			if u.Path != tt.wantPath {
				t.Errorf("path %q, want %q", u.Path, tt.wantPath)
			}
			q := u.Query()
			if got, want := q.Get(ParamExpires), strconv.FormatInt(testNow.Add(tt.ttl).Unix(), 10); got != want {
				t.Errorf("expires %s, want %s", got, want)
			}
			if strings.Contains(tt.base, "x=1") && q.Get("x") != "1" {
				t.Errorf("query of the base URL lost: %s", s)
			}
			if err := Verify(Keyring{testSecret}, u.Path, q, viewer, testNow.Add(tt.ttl-time.Second)); err != nil {
				t.Errorf("signed URL does not verify: %v", err)
			}
			if err := Verify(Keyring{testSecret}, u.Path, q, viewer, testNow.Add(tt.ttl)); !errors.Is(err, ErrExpired) {
				t.Errorf("at now+ttl: %v, want ErrExpired", err)
			}
		})
	}
	if _, err := SignStreamURL("", "https://edge", "cam1", time.Hour, testNow, ""); !errors.Is(err, ErrNoSecret) {
		t.Errorf("empty secret: %v, want ErrNoSecret", err)
	}
}
