package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/livegrid/livegrid/internal/queue"
	"github.com/livegrid/livegrid/internal/store"
	"github.com/livegrid/livegrid/profiles"
)

// Bounds Validate enforces.
const (
	MinSegmentDuration = time.Second
	MaxSegmentDuration = 10 * time.Second
	maxCutDuration     = time.Minute // segments.max_duration
	MinWindow          = 3           // RFC 8216 §6.3.3: a client starts 3 segments from the end
	MaxWindow          = 1000
	minTokenSecret     = 32
	maxConcurrency     = 256
)

// Validate checks every key and the keys that depend on each other. It
// returns the first problem as an *Error naming the key.
func (c *Config) Validate() error {
	for _, check := range []func() error{
		c.validateLog, c.validateHTTP, c.validateRTMP, c.validateStore,
		c.validateRedis, c.validateSegments, c.validatePackager, c.validatePublish, c.validatePlay,
		c.validateTranscode, c.validatePull, c.validateWorker, c.validateEdge,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateLog() error {
	if err := oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error"); err != nil {
		return err
	}
	return oneOf("log.format", c.Log.Format, "text", "json")
}

func (c *Config) validateHTTP() error {
	h := c.HTTP
	if err := listenAddr("http.addr", h.Addr); err != nil {
		return err
	}
	switch {
	case h.TLSCert != "" && h.TLSKey == "":
		return bad("http.tls_key", "must be set with 'http.tls_cert'")
	case h.TLSKey != "" && h.TLSCert == "":
		return bad("http.tls_cert", "must be set with 'http.tls_key'")
	}
	for i, o := range h.CORSOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return bad(fmt.Sprintf("http.cors_origins[%d]", i), "must be * or an origin like https://player.example.com, got %q", o)
		}
	}
	return nil
}

func (c *Config) validateRTMP() error {
	r := c.RTMP
	if err := listenAddr("rtmp.addr", r.Addr); err != nil {
		return err
	}
	if samePort(r.Addr, c.HTTP.Addr) {
		return bad("rtmp.addr", "must not use the port of 'http.addr' (%s), got %q", c.HTTP.Addr, r.Addr)
	}
	if !queue.ValidName(r.App) || len(r.App) > 64 {
		return bad("rtmp.app", "must be 1 to 64 characters of [A-Za-z0-9._-], not starting with '.', got %q", r.App)
	}
	return between("rtmp.idle_timeout", r.IdleTimeout, time.Second, 10*time.Minute)
}

func (c *Config) validateStore() error {
	if strings.TrimSpace(c.DataDir) == "" || strings.ContainsRune(c.DataDir, 0) {
		return bad("data_dir", "must be a directory, got %q", c.DataDir)
	}
	s := c.Store
	if s.URL != "" {
		if _, err := store.ParseURL(s.URL); err != nil {
			// ParseURL's messages never repeat user information.
			return bad("store.url", "is not a store URL (file:///dir or s3://bucket?endpoint=...): %s",
				strings.TrimPrefix(err.Error(), store.ErrBadURL.Error()+": "))
		}
	}
	if s.Retention != 0 && s.Retention < time.Minute {
		return bad("store.retention", "must be 0 (keep everything) or at least 1m, got %v", s.Retention)
	}
	if s.BufferBytes < MiB {
		return bad("store.buffer_bytes", "must be at least 1MiB, got %v", s.BufferBytes)
	}
	return nil
}

func (c *Config) validateRedis() error {
	if c.Redis.URL == "" {
		return nil
	}
	if _, err := c.Redis.UniversalOptions(); err != nil {
		return bad("redis.url", "%v", err)
	}
	return nil
}

func (c *Config) validateSegments() error {
	s := c.Segments
	if err := between("segments.duration", s.Duration, MinSegmentDuration, MaxSegmentDuration); err != nil {
		return err
	}
	if s.MaxDuration < s.Duration || s.MaxDuration > maxCutDuration {
		return bad("segments.max_duration", "must be between 'segments.duration' (%v) and %v, got %v", s.Duration, shortDur(maxCutDuration), s.MaxDuration)
	}
	return nil
}

func (c *Config) validatePackager() error {
	p := c.Packager
	if p.Window < MinWindow || p.Window > MaxWindow {
		return bad("packager.window", "must be between %d and %d segments, got %d", MinWindow, MaxWindow, p.Window)
	}
	if err := between("packager.grace", p.Grace, 0, 10*time.Minute); err != nil {
		return err
	}
	return between("packager.max_hold", p.MaxHold, time.Second, 10*time.Minute)
}

func (c *Config) validatePublish() error {
	p := c.Publish
	if err := oneOf("publish.auth", p.Auth, AuthNone, AuthKey, AuthToken); err != nil {
		return err
	}
	// A key or secret the mode ignores would leave streams open that the
	// operator believes closed.
	switch {
	case p.Auth != AuthKey && (p.Key != "" || len(p.Keys) > 0):
		k := "publish.key"
		if p.Key == "" {
			k = "publish.keys"
		}
		return bad(k, "is set but 'publish.auth' is %q; set auth to %q or remove it", p.Auth, AuthKey)
	case p.Auth != AuthToken && p.TokenSecret != "":
		return bad("publish.token_secret", "is set but 'publish.auth' is %q; set auth to %q or remove it", p.Auth, AuthToken)
	case p.Auth == AuthKey && p.Key == "" && len(p.Keys) == 0:
		return bad("publish.key", "or 'publish.keys' must be set when 'publish.auth' is %q", AuthKey)
	case p.Auth == AuthToken && len(p.TokenSecret) < minTokenSecret:
		// The secret's length only: never its text.
		return bad("publish.token_secret", "must be at least %d characters when 'publish.auth' is %q, got %d", minTokenSecret, AuthToken, len(p.TokenSecret))
	}
	for _, stream := range sortedKeys(p.Keys) {
		k := "publish.keys." + stream
		if !queue.ValidName(stream) {
			return bad(k, "must name a stream: 1 to 128 characters of [A-Za-z0-9._-], not starting with '.'")
		}
		if p.Keys[stream] == "" {
			return bad(k, "must not be empty")
		}
	}
	return nil
}

func (c *Config) validatePlay() error {
	p := c.Play
	if p.TokenSecret != "" && len(p.TokenSecret) < minTokenSecret {
		return bad("play.token_secret", "must be empty or at least %d characters, got %d", minTokenSecret, len(p.TokenSecret))
	}
	for key, list := range map[string][]string{"play.allow_cidrs": p.AllowCIDRs, "play.deny_cidrs": p.DenyCIDRs, "play.trusted_proxies": p.TrustedProxies} {
		for i, s := range list {
			if _, err := parsePrefix(s); err != nil {
				return bad(fmt.Sprintf("%s[%d]", key, i), "must be an address or a network like 10.0.0.0/8, got %q", s)
			}
		}
	}
	geo := len(p.AllowCountries) + len(p.DenyCountries) + len(p.AllowRegions) + len(p.DenyRegions)
	if geo > 0 && p.GeoIPDB == "" {
		return bad("play.geoip_db", "must name a MaxMind-format .mmdb file when a country or region list is set")
	}
	if p.CallbackURL != "" {
		u, err := url.Parse(p.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("play.callback_url", "must be an http:// or https:// URL")
		}
	}
	if err := between("play.callback_timeout", p.CallbackTimeout, 100*time.Millisecond, time.Minute); err != nil {
		return err
	}
	return between("play.callback_cache", p.CallbackCache, 0, time.Hour)
}

// parsePrefix reads a network, or a single address as its own /32 or /128.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (c *Config) validateTranscode() error {
	t := c.Transcode
	if err := ladderName("transcode.profile", t.Profile); err != nil {
		return err
	}
	for i, r := range t.Rules {
		k := fmt.Sprintf("transcode.rules[%d]", i)
		if r.Match == "" || r.Match == "~" {
			return bad(k+".match", "must be a glob like cam-* or ~ and a regular expression")
		}
		if _, err := r.Matches(""); err != nil {
			return bad(k+".match", "is not a valid pattern: %v", err)
		}
		if err := ladderName(k+".profile", r.Profile); err != nil {
			return err
		}
	}
	encoders := []string{EncoderAuto}
	for _, e := range profiles.DefaultEncoderOrder {
		encoders = append(encoders, string(e))
	}
	return oneOf("transcode.encoder", t.Encoder, encoders...)
}

func (c *Config) validatePull() error {
	seen := map[string]int{}
	for i, p := range c.Pull {
		k := fmt.Sprintf("pull[%d]", i)
		if !queue.ValidName(p.Stream) {
			return bad(k+".stream", "must be 1 to 128 characters of [A-Za-z0-9._-], not starting with '.', got %q", p.Stream)
		}
		if j, ok := seen[p.Stream]; ok {
			return bad(k+".stream", "repeats stream %q of 'pull[%d]'", p.Stream, j)
		}
		seen[p.Stream] = i
		u, err := url.Parse(p.URL)
		if err != nil || u.Host == "" || !slices.Contains([]string{"rtmp", "rtmps", "http", "https"}, u.Scheme) {
			// The URL may hold a key, so it is not repeated.
			return bad(k+".url", "must be an rtmp://, rtmps://, or http(s):// (HTTP-FLV or HLS) URL with a host")
		}
	}
	return nil
}

func (c *Config) validateWorker() error {
	w := c.Worker
	if w.ID != "" && !queue.ValidName(w.ID) {
		return bad("worker.id", "must be empty (the host name) or 1 to 128 characters of [A-Za-z0-9._-], not starting with '.', got %q", w.ID)
	}
	if w.Concurrency < 1 || w.Concurrency > maxConcurrency {
		return bad("worker.concurrency", "must be between 1 and %d, got %d", maxConcurrency, w.Concurrency)
	}
	if !queue.ValidName(w.SharedQueue) {
		return bad("worker.shared_queue", "must be 1 to 128 characters of [A-Za-z0-9._-], not starting with '.', got %q", w.SharedQueue)
	}
	return between("worker.shutdown_timeout", w.ShutdownTimeout, 0, 10*time.Minute)
}

func (c *Config) validateEdge() error {
	e := c.Edge
	seen := map[string]int{}
	for i, o := range e.Origins {
		k := fmt.Sprintf("edge.origins[%d]", i)
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return bad(k, "must be an http:// or https:// base URL like http://origin-1:8080, got %q", o)
		}
		if j, ok := seen[o]; ok {
			return bad(k, "repeats 'edge.origins[%d]'", j)
		}
		seen[o] = i
	}
	if e.CacheBytes < 0 {
		return bad("edge.cache_bytes", "must not be negative, got %d", int64(e.CacheBytes))
	}
	return between("edge.origin_timeout", e.OriginTimeout, 100*time.Millisecond, time.Minute)
}

// oneOf checks that v is one of choices.
func oneOf(key, v string, choices ...string) error {
	if slices.Contains(choices, v) {
		return nil
	}
	return bad(key, "must be one of %s, got %q", strings.Join(choices, ", "), v)
}

// between checks lo <= d <= hi.
func between(key string, d, lo, hi time.Duration) error {
	if d < lo || d > hi {
		return bad(key, "must be between %s and %s, got %v", shortDur(lo), shortDur(hi), d)
	}
	return nil
}

// shortDur writes 1m rather than 1m0s.
func shortDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// listenAddr checks a host:port to listen on.
func listenAddr(key, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return bad(key, "must be a listen address like :8080 or 127.0.0.1:8080, got %q", addr)
	}
	return nil
}

// samePort reports whether two listen addresses would take the same
// port: equal ports, and equal hosts or either on all interfaces. Port 0
// picks a free port each time.
func samePort(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	return ha == hb || ha == "" || hb == "" || ha == "0.0.0.0" || hb == "0.0.0.0" || ha == "::" || hb == "::"
}

// ladderName checks a profile: a builtin ladder or a ladder file. Whether
// the file exists is for the role to find out when it opens it.
func ladderName(key, name string) error {
	if slices.Contains(profiles.BuiltinNames(), name) || strings.HasPrefix(name, "builtin:") && slices.Contains(profiles.BuiltinNames(), name[len("builtin:"):]) {
		return nil
	}
	if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") {
		return nil
	}
	return bad(key, "must be a builtin ladder (%s) or a .yaml ladder file, got %q", strings.Join(profiles.BuiltinNames(), ", "), name)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
