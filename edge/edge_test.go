package edge

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/livegrid/livegrid/coordinator/ingest"
	"github.com/livegrid/livegrid/internal/auth"
	"github.com/livegrid/livegrid/internal/config"
)

// The origin's RTMP server fits the RTMP hook as it is.
var _ RTMPServer = (*ingest.Server)(nil)

// scrape GETs /metrics and parses the text exposition.
func scrape(t *testing.T, c *http.Client, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// metricValue is the value of the series of name whose labels include
// the given name/value pairs; ok is false when there is none.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

func segPath(i int) string { return fmt.Sprintf("/live/s/v/%08d.m4s", i) }

// mirror gives each origin the same presentation: a master playlist and
// segments 1..n.
func mirror(n int, origins ...*testOrigin) {
	for _, o := range origins {
		o.set("/live/s/index.m3u8", testFile{body: []byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv/index.m3u8\n"), ctype: "application/vnd.apple.mpegurl", cache: "max-age=1"})
		for i := 1; i <= n; i++ {
			o.set(segPath(i), testFile{body: segment(i, 2000+i), ctype: "video/iso.segment", cache: "public, max-age=31536000, immutable"})
		}
	}
}

// TestFailover runs an edge on two origins: the first serves while it is
// up, every request keeps succeeding while it is down, and it takes over
// again once the prober sees it back.
func TestFailover(t *testing.T) {
	a, b := newTestOrigin(t), newTestOrigin(t)
	mirror(60, a, b)
	e, base, _ := startEdge(t, []string{a.url(), b.url()}, nil, nil)
	c := newClient(t)
	waitFor(t, "both origins up", 10*time.Second, func() bool {
		st := e.pool.stats()
		return st[0].up && st[1].up
	})
	get := func(i int) {
		t.Helper()
		resp, body := fetch(t, c, "GET", base+segPath(i))
		if resp.StatusCode != 200 || !bytes.Equal(body, segment(i, 2000+i)) {
			t.Fatalf("segment %d: %d, %d bytes", i, resp.StatusCode, len(body))
		}
	}
	get(1)
	if a.hitsOf(segPath(1)) != 1 || b.totalHits() != 0 {
		t.Fatalf("with both up: first origin %d, second %d requests", a.hitsOf(segPath(1)), b.totalHits())
	}

	addrA := a.addr
	a.stop()
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := 2; i <= 30; i++ { // new segments, so each one is an origin fetch
		wg.Go(func() {
			resp, err := c.Get(base + segPath(i))
			if err != nil {
				failed.Add(1)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(body, segment(i, 2000+i)) {
				failed.Add(1)
			}
		})
		if i%5 == 0 {
			resp, _ := fetch(t, c, "GET", base+"/live/s/index.m3u8")
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d requests failed while the first origin was down", n)
	}
	if cur := e.pool.current(); cur == nil || cur.url != b.url() {
		t.Fatalf("current origin %v, want the second", cur)
	}
	if n := b.hitsOf(segPath(20)); n != 1 {
		t.Errorf("second origin served segment 20 %d times", n)
	}

	a.start(addrA)
	waitFor(t, "the first origin to be preferred again", 10*time.Second, func() bool {
		cur := e.pool.current()
		return cur != nil && cur.url == a.url()
	})
	before := b.totalHits()
	get(40)
	if a.hitsOf(segPath(40)) != 1 || b.totalHits() != before {
		t.Errorf("after the first origin came back: it served %d, the second %d more", a.hitsOf(segPath(40)), b.totalHits()-before)
	}

	mfs := scrape(t, c, base)
	if v, _ := metricValue(mfs, "livegrid_edge_origin_errors_total", "origin", a.url(), "kind", "connect"); v < 1 {
		t.Errorf("connect errors of the first origin: %v", v)
	}
	if v, _ := metricValue(mfs, "livegrid_edge_origin_current", "origin", a.url()); v != 1 {
		t.Errorf("origin_current of the first origin: %v", v)
	}
	if v, _ := metricValue(mfs, "livegrid_edge_origin_requests_total", "origin", b.url()); v < 29 {
		t.Errorf("requests to the second origin: %v", v)
	}
}

// TestFailoverOnSlowAndFailingOrigins moves on within the viewer's request
// when the first origin times out or answers 5xx.
func TestFailoverOnSlowAndFailingOrigins(t *testing.T) {
	tests := []struct {
		name     string
		slow     time.Duration
		status   int
		wantKind string
	}{
		{"timeout", 5 * time.Second, 0, "timeout"},
		{"5xx", 0, http.StatusInternalServerError, "status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newTestOrigin(t), newTestOrigin(t)
			mirror(5, a, b)
			a.mu.Lock()
			a.delay, a.status = tt.slow, tt.status
			a.mu.Unlock()
			e, base, _ := startEdge(t, []string{a.url(), b.url()},
				func(c *config.Config) { c.Edge.OriginTimeout = 300 * time.Millisecond },
				// Its /healthz is fine: only the hold-down keeps probes from
				// bringing it back at once.
				func(e *Edge) { e.tune.holdDown = time.Minute })
			c := newClient(t)
			for i := 1; i <= 4; i++ {
				resp, body := fetch(t, c, "GET", base+segPath(i))
				if resp.StatusCode != 200 || !bytes.Equal(body, segment(i, 2000+i)) {
					t.Fatalf("segment %d: %d", i, resp.StatusCode)
				}
			}
			// A slow origin is down at the first timeout; one answering 5xx
			// after three in a row. Either way the second is current now.
			if cur := e.pool.current(); cur == nil || cur.url != b.url() {
				t.Errorf("current origin %v, want the second", cur)
			}
			mfs := scrape(t, c, base)
			if v, _ := metricValue(mfs, "livegrid_edge_origin_errors_total", "origin", a.url(), "kind", tt.wantKind); v < 1 {
				t.Errorf("%s errors of the first origin: %v", tt.wantKind, v)
			}
		})
	}
}

// TestAllOriginsDown serves a recent playlist past its freshness when no
// origin answers (stale-if-error), and 502 for what it never had; a 5xx
// from the only origin reaches the viewer as it was.
func TestAllOriginsDown(t *testing.T) {
	o := newTestOrigin(t)
	mirror(2, o)
	clk := newFakeClock()
	_, base, _ := startEdge(t, []string{o.url()}, nil, func(e *Edge) { e.now = clk.Now })
	c := newClient(t)
	resp, want := fetch(t, c, "GET", base+"/live/s/index.m3u8")
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	o.mu.Lock()
	o.status = http.StatusServiceUnavailable
	o.mu.Unlock()
	clk.Advance(2 * time.Second) // stale, within stale-if-error
	if resp, body := fetch(t, c, "GET", base+"/live/s/index.m3u8"); resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Errorf("stale playlist: %d %q", resp.StatusCode, body)
	}
	if resp, _ := fetch(t, c, "GET", base+segPath(2)); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Cache-Control") == "" {
		t.Errorf("origin's 503: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	o.stop()
	clk.Advance(20 * time.Second) // past stale-if-error
	for _, p := range []string{"/live/s/index.m3u8", segPath(1)} {
		if resp, _ := fetch(t, c, "GET", base+p); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s with no origin: %d, want 502", p, resp.StatusCode)
		}
	}
}

// TestAccessControl puts the play policy in front of /live/: a token is
// required, a stream-scoped signed URL passes for every path of its
// stream, refusals say why and are counted; the edge signs its own origin
// requests with the shared secret.
func TestAccessControl(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	o := newTestOrigin(t)
	mirror(2, o)
	var originErr atomic.Value
	o.check = func(r *http.Request) {
		if err := auth.Verify([][]byte{[]byte(secret)}, r.URL.Path, r.URL.Query(), netip.Addr{}, time.Now()); err != nil {
			originErr.Store(fmt.Errorf("origin request %s: %w", r.URL, err))
		}
	}
	var flvCalls atomic.Int64
	_, base, _ := startEdge(t, []string{o.url()},
		func(c *config.Config) { c.Play.TokenSecret = secret },
		func(e *Edge) {
			e.FLV = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { flvCalls.Add(1) })
		})
	c := newClient(t)
	signed := auth.SignStream([]byte(secret), "s", time.Now().Add(time.Hour), "").Encode()
	other := auth.SignStream([]byte(secret), "other", time.Now().Add(time.Hour), "").Encode()
	expired := auth.SignStream([]byte(secret), "s", time.Now().Add(-time.Minute), "").Encode()
	tests := []struct {
		name   string
		path   string
		code   int
		reason string
	}{
		{"no token", "/live/s/index.m3u8", 403, auth.ReasonTokenMissing},
		{"flv without token", "/live/s.flv", 403, auth.ReasonTokenMissing},
		{"other stream's token", "/live/s/index.m3u8?" + other, 403, auth.ReasonTokenBadSignature},
		{"expired", "/live/s/index.m3u8?" + expired, 403, auth.ReasonTokenExpired},
		{"traversal", "/live/s/%2e%2e/x/index.m3u8?" + signed, 400, auth.ReasonBadPath},
		{"signed master", "/live/s/index.m3u8?" + signed, 200, ""},
		{"signed segment", segPath(1) + "?" + signed, 200, ""},
		{"signed flv", "/live/s.flv?" + signed, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := fetch(t, c, "GET", base+tt.path)
			if resp.StatusCode != tt.code || resp.Header.Get(auth.HeaderDenied) != tt.reason {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, resp.Header.Get(auth.HeaderDenied), tt.code, tt.reason)
			}
			if tt.code == 403 && resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("a refusal without CORS: the player cannot read why")
			}
		})
	}
	if n := flvCalls.Load(); n != 1 {
		t.Errorf("FLV hook called %d times, want 1 (the signed request)", n)
	}
	if err, _ := originErr.Load().(error); err != nil {
		t.Error(err)
	}
	mfs := scrape(t, c, base)
	for reason, want := range map[string]float64{auth.ReasonTokenMissing: 2, auth.ReasonTokenBadSignature: 1, auth.ReasonTokenExpired: 1, auth.ReasonBadPath: 1} {
		if v, _ := metricValue(mfs, "livegrid_edge_play_denials_total", "reason", reason); v != want {
			t.Errorf("denials %s: %v, want %v", reason, v, want)
		}
	}
}

// TestCORS checks the headers players on other sites need and preflights.
func TestCORS(t *testing.T) {
	o := newTestOrigin(t)
	mirror(1, o)
	tests := []struct {
		name    string
		origins []string
		method  string
		origin  string
		code    int
		acao    string
	}{
		{"any GET", nil, "GET", "https://player.example.com", 200, "*"},
		{"any preflight", nil, "OPTIONS", "https://player.example.com", 204, "*"},
		{"listed GET", []string{"https://player.example.com"}, "GET", "https://player.example.com", 200, "https://player.example.com"},
		{"listed preflight", []string{"https://player.example.com/"}, "OPTIONS", "https://player.example.com", 204, "https://player.example.com"},
		{"unlisted", []string{"https://player.example.com"}, "GET", "https://evil.example.com", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base, _ := startEdge(t, []string{o.url()}, func(c *config.Config) { c.HTTP.CORSOrigins = tt.origins }, nil)
			c := newClient(t)
			before := o.totalHits()
			resp, _ := fetch(t, c, tt.method, base+segPath(1), "Origin", tt.origin,
				"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "range, x-playback-session-id")
			h := resp.Header
			if resp.StatusCode != tt.code || h.Get("Access-Control-Allow-Origin") != tt.acao {
				t.Fatalf("%d ACAO %q, want %d %q", resp.StatusCode, h.Get("Access-Control-Allow-Origin"), tt.code, tt.acao)
			}
			if !strings.Contains(h.Get("Access-Control-Expose-Headers"), "Content-Range") || !strings.Contains(h.Get("Access-Control-Expose-Headers"), auth.HeaderDenied) {
				t.Errorf("Expose-Headers %q", h.Get("Access-Control-Expose-Headers"))
			}
			if tt.acao != "*" && !strings.Contains(h.Get("Vary"), "Origin") {
				t.Errorf("Vary %q with a per-origin answer", h.Get("Vary"))
			}
			if tt.method == "OPTIONS" {
				if h.Get("Access-Control-Allow-Methods") != "GET, HEAD, OPTIONS" || h.Get("Access-Control-Allow-Headers") != "range, x-playback-session-id" || h.Get("Access-Control-Max-Age") == "" {
					t.Errorf("preflight headers %v", h)
				}
				if o.totalHits() != before {
					t.Error("a preflight reached the origin")
				}
			}
		})
	}
}

// TestHeadRangeConditional checks what a player's requests get from a
// cached object: headers passed through, HEAD, byte ranges, If-None-Match.
func TestHeadRangeConditional(t *testing.T) {
	o := newTestOrigin(t)
	seg := segment(9, 10_000)
	o.set(segPath(9), testFile{body: seg, ctype: "video/iso.segment", cache: "public, max-age=31536000, immutable"})
	_, base, _ := startEdge(t, []string{o.url()}, nil, nil)
	c := newClient(t)

	resp, body := fetch(t, c, "GET", base+segPath(9))
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || !bytes.Equal(body, seg) || resp.ContentLength != int64(len(seg)) ||
		resp.Header.Get("Content-Type") != "video/iso.segment" || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		etag == "" || resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("Age") == "" {
		t.Fatalf("GET: %d len %d headers %v", resp.StatusCode, resp.ContentLength, resp.Header)
	}
	tests := []struct {
		name   string
		method string
		hdr    []string
		code   int
		body   []byte
		check  func(h http.Header) error
	}{
		{"HEAD", "HEAD", nil, 200, nil, func(h http.Header) error {
			if h.Get("Content-Length") != fmt.Sprint(len(seg)) {
				return fmt.Errorf("Content-Length %q", h.Get("Content-Length"))
			}
			return nil
		}},
		{"range", "GET", []string{"Range", "bytes=100-199"}, 206, seg[100:200], func(h http.Header) error {
			if h.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(seg)) {
				return fmt.Errorf("Content-Range %q", h.Get("Content-Range"))
			}
			return nil
		}},
		{"suffix range", "GET", []string{"Range", "bytes=-10"}, 206, seg[len(seg)-10:], nil},
		{"unsatisfiable", "GET", []string{"Range", "bytes=20000-"}, 416, nil, nil},
		{"if-none-match", "GET", []string{"If-None-Match", etag}, 304, nil, nil},
		{"if-range stale", "GET", []string{"Range", "bytes=0-9", "If-Range", `"other"`}, 200, seg, nil},
		{"if-range", "GET", []string{"Range", "bytes=0-9", "If-Range", etag}, 206, seg[:10], nil},
		{"HEAD 404", "HEAD", nil, 404, nil, nil},
		{"POST", "POST", nil, 405, nil, func(h http.Header) error {
			if h.Get("Allow") != "GET, HEAD, OPTIONS" {
				return fmt.Errorf("Allow %q", h.Get("Allow"))
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := segPath(9)
			if tt.name == "HEAD 404" {
				p = segPath(10)
			}
			resp, body := fetch(t, c, tt.method, base+p, tt.hdr...)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.code)
			}
			if tt.body != nil && !bytes.Equal(body, tt.body) {
				t.Errorf("body %d bytes, want %d", len(body), len(tt.body))
			}
			if tt.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD body of %d bytes", len(body))
			}
			if tt.check != nil {
				if err := tt.check(resp.Header); err != nil {
					t.Error(err)
				}
			}
		})
	}
	if n := o.hitsOf(segPath(9)); n != 1 {
		t.Errorf("origin saw %d requests for the segment, want 1", n)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "livegrid edge test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestHTTPSAndHTTP2 serves over TLS with http.tls_cert/tls_key; a client
// that offers h2 gets HTTP/2.
func TestHTTPSAndHTTP2(t *testing.T) {
	o := newTestOrigin(t)
	mirror(1, o)
	certFile, keyFile, roots := selfSigned(t)
	_, base, _ := startEdge(t, []string{o.url()}, func(c *config.Config) {
		c.HTTP.TLSCert, c.HTTP.TLSKey = certFile, keyFile
	}, nil)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for _, p := range []string{segPath(1), "/live/s/index.m3u8", "/healthz"} {
		resp, body := fetch(t, c, "GET", base+p)
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || len(body) == 0 {
			t.Errorf("GET %s: %d %s, %d bytes", p, resp.StatusCode, resp.Proto, len(body))
		}
	}
	resp, body := fetch(t, c, "GET", base+segPath(1))
	if !bytes.Equal(body, segment(1, 2001)) || resp.Header.Get("Content-Length") != "2001" {
		t.Errorf("segment over h2: %d bytes, Content-Length %q", len(body), resp.Header.Get("Content-Length"))
	}
	// A plain-HTTP client is not served.
	plain := newClient(t)
	if resp, err := plain.Get(strings.Replace(base, "https://", "http://", 1) + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS port")
		}
	}
}

// TestHealthReadyMetrics checks /healthz, /readyz (needs an origin up)
// and the metric names.
func TestHealthReadyMetrics(t *testing.T) {
	o := newTestOrigin(t)
	mirror(1, o)
	addr := o.addr
	o.stop()
	_, base, _ := startEdge(t, []string{o.url()}, nil, nil)
	c := newClient(t)
	if resp, _ := fetch(t, c, "GET", base+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("/healthz %d", resp.StatusCode)
	}
	waitFor(t, "origin down", 10*time.Second, func() bool {
		resp, _ := fetch(t, c, "GET", base+"/readyz")
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	o.start(addr)
	waitFor(t, "ready", 10*time.Second, func() bool {
		resp, _ := fetch(t, c, "GET", base+"/readyz")
		return resp.StatusCode == http.StatusOK
	})
	for i := 0; i < 3; i++ {
		fetch(t, c, "GET", base+"/live/s/index.m3u8")
		fetch(t, c, "GET", base+segPath(1))
	}
	mfs := scrape(t, c, base)
	for _, tt := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"livegrid_edge_cache_requests_total", []string{"result", "hit"}, 2},
		{"livegrid_edge_cache_requests_total", []string{"result", "miss"}, 2},
		{"livegrid_edge_cache_requests_total", []string{"result", "coalesced"}, 0},
		{"livegrid_edge_cache_objects", nil, 2},
		{"livegrid_edge_cache_bytes", nil, 2001},
		{"livegrid_edge_cache_capacity_bytes", nil, 64 << 20},
		{"livegrid_edge_cache_evictions_total", nil, 0},
		{"livegrid_edge_served_bytes_total", []string{"protocol", ProtocolSegment}, 3 * 2001},
		{"livegrid_edge_served_bytes_total", []string{"protocol", ProtocolHLS}, 1},
		{"livegrid_edge_responses_total", []string{"protocol", ProtocolHLS, "code", "200"}, 3},
		{"livegrid_edge_origin_requests_total", []string{"origin", o.url()}, 2},
		{"livegrid_edge_origin_up", []string{"origin", o.url()}, 1},
		{"livegrid_edge_origin_current", []string{"origin", o.url()}, 1},
		{"go_goroutines", nil, 1},
	} {
		v, ok := metricValue(mfs, tt.name, tt.labels...)
		if !ok || v < tt.min {
			t.Errorf("%s%v = %v (present %v), want at least %v", tt.name, tt.labels, v, ok, tt.min)
		}
	}
}

// fakeRTMP is an RTMP server hook that accepts and closes connections.
type fakeRTMP struct {
	served, shut atomic.Bool
	ln           net.Listener
	mu           sync.Mutex
}

func (f *fakeRTMP) Serve(ln net.Listener) error {
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	f.served.Store(true)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if f.shut.Load() {
				return errors.New("rtmp: server closed")
			}
			return err
		}
		conn.Close()
	}
}

func (f *fakeRTMP) Shutdown(context.Context) error {
	f.shut.Store(true)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		return f.ln.Close()
	}
	return nil
}

// observation is one call of the Observe hook.
type observation struct {
	path, stream, protocol string
	status                 int
	bytes                  int64
}

// TestHooks wires the FLV, RTMP and Observe hooks: FLV paths reach the
// FLV handler (404 without one), RTMP gets a listener on rtmp.addr and is
// shut down with the edge, every /live/ response is observed, and
// shutdown ends long-lived FLV responses.
func TestHooks(t *testing.T) {
	o := newTestOrigin(t)
	mirror(1, o)
	var (
		mu  sync.Mutex
		obs []observation
	)
	rtmp := &fakeRTMP{}
	flvStarted := make(chan string, 4)
	e, base, stop := startEdge(t, []string{o.url()}, nil, func(e *Edge) {
		e.FLV = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "video/x-flv")
			_, _ = w.Write([]byte("FLV\x01"))
			http.NewResponseController(w).Flush()
			flvStarted <- r.URL.Path
			if strings.Contains(r.URL.Path, "long") {
				<-r.Context().Done() // a live stream: until the viewer or the edge leaves
			}
		})
		e.RTMP = rtmp
		e.Observe = func(r *http.Request, stream, protocol string, status int, bytes int64) {
			mu.Lock()
			defer mu.Unlock()
			obs = append(obs, observation{r.URL.Path, stream, protocol, status, bytes})
		}
	})
	c := newClient(t)
	fetch(t, c, "GET", base+"/live/s/index.m3u8")
	fetch(t, c, "GET", base+segPath(1))
	fetch(t, c, "GET", base+"/live/s/v/00000099.m4s")
	fetch(t, c, "OPTIONS", base+segPath(1))
	for _, p := range []string{"/live/s.flv", "/live/s/360p.flv"} {
		resp, body := fetch(t, c, "GET", base+p)
		if resp.StatusCode != 200 || string(body) != "FLV\x01" {
			t.Errorf("GET %s: %d %q", p, resp.StatusCode, body)
		}
		if got := <-flvStarted; got != p {
			t.Errorf("FLV hook saw %s, want %s", got, p)
		}
	}
	want := []observation{
		{"/live/s/index.m3u8", "s", ProtocolHLS, 200, int64(len("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv/index.m3u8\n"))},
		{segPath(1), "s", ProtocolSegment, 200, 2001},
		{"/live/s/v/00000099.m4s", "s", ProtocolSegment, 404, int64(len("404 page not found\n"))},
		{"/live/s.flv", "s", ProtocolFLV, 200, 4},
		{"/live/s/360p.flv", "s", ProtocolFLV, 200, 4},
	}
	waitFor(t, "observations", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(obs) >= len(want)
	})
	mu.Lock()
	got := append([]observation(nil), obs...)
	mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("observed\n%v\nwant\n%v", got, want)
	}

	// RTMP: listening on its own address.
	conn, err := net.DialTimeout("tcp", e.RTMPAddr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial rtmp: %v", err)
	}
	conn.Close()

	// A long-lived FLV viewer ends when the edge shuts down.
	resp, err := c.Get(base + "/live/long.flv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-flvStarted
	readDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		readDone <- err
	}()
	start := time.Now()
	stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v with an FLV viewer", d)
	}
	select {
	case <-readDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the FLV viewer's response did not end at shutdown")
	}
	if !rtmp.served.Load() || !rtmp.shut.Load() {
		t.Errorf("rtmp served %v, shut down %v", rtmp.served.Load(), rtmp.shut.Load())
	}
}

// TestNoFLVHandler answers 404 for FLV paths when no FLV hook is wired.
func TestNoFLVHandler(t *testing.T) {
	o := newTestOrigin(t)
	_, base, _ := startEdge(t, []string{o.url()}, nil, nil)
	c := newClient(t)
	for _, p := range []string{"/live/s.flv", "/live/s/720p.flv"} {
		if resp, _ := fetch(t, c, "GET", base+p); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if o.totalHits() != 0 {
		t.Error("an FLV path went to the origin")
	}
}

// TestNewRefuses checks New's config errors name the key.
func TestNewRefuses(t *testing.T) {
	cfg := config.Default()
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "edge.origins") {
		t.Errorf("no origins: %v", err)
	}
	cfg.Edge.Origins = []string{"http://127.0.0.1:1"}
	cfg.Play.GeoIPDB = filepath.Join(t.TempDir(), "missing.mmdb")
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "play.geoip_db") {
		t.Errorf("missing geoip db: %v", err)
	}
}
