package auth

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// echoPath answers 200 with the path the wrapped handler saw.
var echoPath = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, r.URL.Path)
})

func testPolicy(t *testing.T) *Policy {
	t.Helper()
	referers, err := NewRefererRules([]string{"*.example.com"}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	return &Policy{
		IP:             &IPRules{DenyCIDRs: prefixes("198.51.100.0/24")},
		Referer:        referers,
		PlaySecrets:    Keyring{testSecret},
		TrustedProxies: prefixes("10.0.0.0/8"),
		Now:            func() time.Time { return testNow },
	}
}

func TestMiddleware(t *testing.T) {
	tok := "?" + SignStream(testSecret, "cam1", testNow.Add(time.Hour), "").Encode()
	bound := "?" + SignStream(testSecret, "cam1", testNow.Add(time.Hour), "203.0.113.7").Encode()
	tests := []struct {
		name       string
		target     string
		remote     string
		header     map[string]string
		wantStatus int
		wantReason string
		wantPath   string
	}{
		{name: "allowed", target: "/live/cam1/index.m3u8" + tok, wantStatus: 200, wantPath: "/live/cam1/index.m3u8"},
		{name: "allowed flv", target: "/live/cam1.flv" + tok, wantStatus: 200, wantPath: "/live/cam1.flv"},
		{name: "double slashes folded", target: "/live//cam1/720p/seg-1.m4s" + tok, wantStatus: 200, wantPath: "/live/cam1/720p/seg-1.m4s"},
		{name: "good referer", target: "/live/cam1/index.m3u8" + tok, header: map[string]string{"Referer": "https://www.example.com/"}, wantStatus: 200, wantPath: "/live/cam1/index.m3u8"},
		{name: "no token", target: "/live/cam1/index.m3u8", wantStatus: 403, wantReason: ReasonTokenMissing},
		{name: "token for another stream", target: "/live/cam2/index.m3u8" + tok, wantStatus: 403, wantReason: ReasonTokenBadSignature},
		{name: "bad referer", target: "/live/cam1/index.m3u8" + tok, header: map[string]string{"Referer": "https://evil.net/"}, wantStatus: 403, wantReason: ReasonRefererNotAllowed},
		{name: "denied ip", target: "/live/cam1/index.m3u8" + tok, remote: "198.51.100.9:1234", wantStatus: 403, wantReason: ReasonIPDenied},
		{name: "denied ip behind trusted proxy", target: "/live/cam1/index.m3u8" + tok, remote: "10.1.1.1:1234",
			header: map[string]string{"X-Forwarded-For": "198.51.100.9, 10.2.2.2"}, wantStatus: 403, wantReason: ReasonIPDenied},
		{name: "spoofed forwarded-for from untrusted peer", target: "/live/cam1/index.m3u8" + tok,
			header: map[string]string{"X-Forwarded-For": "198.51.100.9"}, wantStatus: 200, wantPath: "/live/cam1/index.m3u8"},
		{name: "spoof left of trusted proxy", target: "/live/cam1/index.m3u8" + bound, remote: "10.1.1.1:1234",
			header: map[string]string{"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}, wantStatus: 200, wantPath: "/live/cam1/index.m3u8"},
		{name: "ip-bound token, other viewer", target: "/live/cam1/index.m3u8" + bound, remote: "192.0.2.1:1234", wantStatus: 403, wantReason: ReasonTokenIPMismatch},
		{name: "traversal", target: "/live/cam1/../../etc/passwd" + tok, wantStatus: 400, wantReason: ReasonBadPath},
		{name: "encoded traversal", target: "/live/cam1/%2e%2e/%2E%2E/etc/passwd", wantStatus: 400, wantReason: ReasonBadPath},
		{name: "encoded slash", target: "/live/cam1%2f..%2fcam2/index.m3u8", wantStatus: 400, wantReason: ReasonBadPath},
		{name: "backslash", target: "/live/cam1/..\\..\\x", wantStatus: 400, wantReason: ReasonBadPath},
		{name: "encoded backslash", target: "/live/cam1/%5c..%5cx", wantStatus: 400, wantReason: ReasonBadPath},
		{name: "double encoding", target: "/live/cam1/%252e%252e/x", wantStatus: 400, wantReason: ReasonBadPath},
		{name: "bad query", target: "/live/cam1/index.m3u8?a=%zz", wantStatus: 400, wantReason: ReasonBadQuery},
		{name: "long url", target: "/live/cam1/index.m3u8?pad=" + strings.Repeat("a", 4096), wantStatus: 414, wantReason: ReasonURITooLong},
		{name: "url at the limit", target: "/live/cam1/index.m3u8" + tok + "&pad=" + strings.Repeat("a", 4096-len("/live/cam1/index.m3u8"+tok+"&pad=")), wantStatus: 200, wantPath: "/live/cam1/index.m3u8"},
		{name: "big headers", target: "/live/cam1/index.m3u8" + tok, header: map[string]string{"Cookie": strings.Repeat("c", 17<<10)}, wantStatus: 431, wantReason: ReasonHeadersTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy(t)
			req := httptest.NewRequest(http.MethodGet, "http://edge.test"+tt.target, nil)
			req.RequestURI = tt.target
			req.RemoteAddr = "203.0.113.7:5555"
			if tt.remote != "" {
				req.RemoteAddr = tt.remote
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			Middleware(p, echoPath).ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d (denied: %q)", rec.Code, tt.wantStatus, rec.Header().Get(HeaderDenied))
			}
			if got := rec.Header().Get(HeaderDenied); got != tt.wantReason {
				t.Errorf("%s: %q, want %q", HeaderDenied, got, tt.wantReason)
			}
			if tt.wantStatus == 200 {
				if rec.Body.String() != tt.wantPath {
					t.Errorf("next saw path %q, want %q", rec.Body.String(), tt.wantPath)
				}
				if len(p.Denials()) != 0 {
					t.Errorf("Denials = %v after an allowed request", p.Denials())
				}
				return
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q on a refusal", cc)
			}
			if d := p.Denials(); d[tt.wantReason] != 1 || len(d) != 1 {
				t.Errorf("Denials = %v, want one %s", d, tt.wantReason)
			}
		})
	}
}

// TestMiddlewareOverTheWire sends raw request lines, so the paths reach
// the middleware exactly as a hostile client wrote them.
func TestMiddlewareOverTheWire(t *testing.T) {
	p := testPolicy(t)
	p.PlaySecrets = nil
	srv := httptest.NewServer(Middleware(p, echoPath))
	t.Cleanup(srv.Close)
	tests := []struct {
		target     string
		header     string
		wantStatus int
	}{
		{target: "/live/cam1/index.m3u8", wantStatus: 200},
		{target: "/live/cam1/../../../etc/passwd", wantStatus: 400},
		{target: "/live/%2e%2e/%2e%2e/etc/passwd", wantStatus: 400},
		{target: "/live/..%5c..%5cwin.ini", wantStatus: 400},
		{target: "/live/cam1/index.m3u8?x=" + strings.Repeat("y", 5000), wantStatus: 414},
		{target: "/live/cam1/index.m3u8", header: "X-Pad: " + strings.Repeat("p", 20<<10) + "\r\n", wantStatus: 431},
		{target: "/live/cam1/index.m3u8", header: "Referer: https://evil.net/\r\n", wantStatus: 403},
	}
	for _, tt := range tests {
		name := tt.target
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: edge.test\r\n%sConnection: close\r\n\r\n", tt.target, tt.header)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	p := &Policy{TrustedProxies: prefixes("10.0.0.0/8", "2001:db8::/32")}
	tests := []struct {
		remote string
		xff    []string
		want   string
	}{
		{remote: "203.0.113.7:1", xff: []string{"1.2.3.4"}, want: "203.0.113.7"},
		{remote: "10.0.0.1:1", want: "10.0.0.1"},
		{remote: "10.0.0.1:1", xff: []string{"192.0.2.1"}, want: "192.0.2.1"},
		{remote: "10.0.0.1:1", xff: []string{"192.0.2.1, 10.0.0.2"}, want: "192.0.2.1"},
		{remote: "10.0.0.1:1", xff: []string{"192.0.2.9", "192.0.2.1, 10.0.0.2"}, want: "192.0.2.1"},
		{remote: "10.0.0.1:1", xff: []string{"garbage, 10.0.0.2"}, want: "10.0.0.2"},
		{remote: "[2001:db8::1]:1", xff: []string{"::ffff:192.0.2.1"}, want: "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.remote+strings.Join(tt.xff, "|"), func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := p.clientIP(r); got != netip.MustParseAddr(tt.want) {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}
