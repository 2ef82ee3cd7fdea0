package auth

import (
	"errors"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

// The seeds under testdata/fuzz/ hold valid path- and stream-scoped
// tokens (signed with fuzzSecret for fuzzNow), tampered and repeated
// parameters, and paths with traversal in its many spellings.

var fuzzSecret = []byte("fuzz-secret-0123456789")

func isTokenError(err error) bool {
	for _, s := range []error{ErrMissingToken, ErrExpired, ErrBadSignature, ErrIPMismatch, ErrMalformed} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzVerify feeds Verify an untrusted path and query string, then checks
// that any path and binding signed by Sign verifies.
func FuzzVerify(f *testing.F) {
	client := netip.MustParseAddr("203.0.113.7")
	f.Fuzz(func(t *testing.T, p, rawQuery, ip string) {
		q, _ := url.ParseQuery(rawQuery)
		err := Verify(Keyring{fuzzSecret}, p, q, client, testNow)
		if err != nil && !isTokenError(err) {
			t.Fatalf("Verify(%q, %q) = %v, not a token sentinel", p, rawQuery, err)
		}
		if err == nil {
			exp, perr := parseExpires(q.Get(ParamExpires))
			if perr != nil || exp <= testNow.Unix() {
				t.Fatalf("accepted expires %q at %d", q.Get(ParamExpires), testNow.Unix())
			}
			if s := q.Get(ParamStream); s != "" && !StreamCovers(s, p) {
				t.Fatalf("stream token %q accepted for %q", s, p)
			}
		}

		// Round trip: what Sign makes, Verify takes.
		exp := testNow.Add(1e9)
		signed := Sign(fuzzSecret, p, exp, ip)
		var who netip.Addr
		binding, berr := parseIPBinding(signed.Get(ParamIP))
		switch {
		case ip == "":
			who = client
		case berr != nil:
			who = client
		default:
			who = binding.Addr()
		}
		err = Verify(Keyring{fuzzSecret}, p, signed, who, testNow)
		switch {
		case strings.ContainsAny(p, "\r\n"):
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("newline in path: %v", err)
			}
		case ip != "" && berr != nil:
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ip %q: %v, want ErrMalformed", ip, err)
			}
		case err != nil:
			t.Fatalf("Sign(%q, ip %q) does not verify: %v", p, ip, err)
		}
		if err == nil && Verify(Keyring{fuzzSecret}, p+"x", signed, who, testNow) == nil {
			t.Fatalf("token for %q accepted for %q", p, p+"x")
		}
	})
}

// FuzzCleanPath checks that an accepted path is plain: rooted, decoded,
// no dot segment, backslash, '%', control character or invalid UTF-8,
// and that cleaning it again changes nothing.
func FuzzCleanPath(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := CleanPath(raw)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("CleanPath(%q) = %v, not ErrBadPath", raw, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") || strings.ContainsAny(out, "\\%") || !utf8.ValidString(out) {
			t.Fatalf("CleanPath(%q) = %q", raw, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("CleanPath(%q) = %q with a control character", raw, out)
			}
		}
		for _, seg := range strings.Split(out, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("CleanPath(%q) = %q with a dot segment", raw, out)
			}
		}
		if c := path.Clean(out); c != strings.TrimSuffix(out, "/") && out != "/" {
			t.Fatalf("CleanPath(%q) = %q, path.Clean makes it %q", raw, out, c)
		}
		again, err := CleanPath((&url.URL{Path: out}).EscapedPath())
		if err != nil || again != out {
			t.Fatalf("cleaning %q again = %q, %v", out, again, err)
		}
	})
}
