package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Callback decision reasons (a 4xx answer with a reason reports that).
const (
	ReasonCallbackDenied  = "callback_denied"
	ReasonCallbackTimeout = "callback_timeout"
	ReasonCallbackError   = "callback_error"
)

// Callback defaults.
const (
	DefaultCallbackTimeout    = 2 * time.Second
	DefaultCallbackMaxEntries = 10000
)

// maxCallbackBody bounds what is read from a callback's answer.
const maxCallbackBody = 4 << 10

// CallbackRequest is the JSON body POSTed to the callback.
type CallbackRequest struct {
	Action   Action `json:"action"`
	Stream   string `json:"stream"`
	ClientIP string `json:"client_ip"`
	Referer  string `json:"referer"`
	// Query is the request's query string, encoded with keys sorted.
	Query string `json:"query"`
}

// callbackAnswer is the optional JSON body of the callback's answer.
type callbackAnswer struct {
	Reason string `json:"reason"`
}

// Callback asks an operator's HTTP service whether a play or publish may
// go ahead: a 2xx answer allows, a 4xx answer denies, optionally with a
// JSON body {"reason": "..."}. A timeout, a transport error or any other
// status is a failure, decided by AllowOnTimeout. Answers (not failures)
// are cached for CacheTTL, keyed by every field of the request.
type Callback struct {
	// URL receives the POST.
	URL string
	// Client sends it; nil uses http.DefaultClient.
	Client *http.Client
	// Timeout bounds one call; 0 means DefaultCallbackTimeout.
	Timeout time.Duration
	// AllowOnTimeout allows (fail open) instead of denying when the
	// callback times out, is unreachable or answers neither 2xx nor 4xx.
	AllowOnTimeout bool
	// CacheTTL is how long an answer is reused; 0 disables the cache.
	CacheTTL time.Duration
	// MaxEntries bounds the cache; 0 means DefaultCallbackMaxEntries.
	MaxEntries int
	// Now is the clock for cache expiry; nil uses time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[CallbackRequest]cachedAnswer
}

type cachedAnswer struct {
	allowed bool
	reason  string
	until   time.Time
}

// Validate checks the URL.
func (c *Callback) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("auth: callback: 'url' %q must be an http or https URL", c.URL)
	}
	if c.Timeout < 0 || c.CacheTTL < 0 {
		return errors.New("auth: callback: 'timeout' and 'cache_ttl' must not be negative")
	}
	return nil
}

func (c *Callback) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Check asks the callback (or its cache) about req. It returns whether
// req is allowed, the reason when not, and err when the callback failed
// (the verdict then follows AllowOnTimeout).
func (c *Callback) Check(ctx context.Context, req CallbackRequest) (allowed bool, reason string, err error) {
	if a, ok := c.cached(req); ok {
		return a.allowed, a.reason, nil
	}
	allowed, reason, err = c.call(ctx, req)
	if err != nil {
		reason = ReasonCallbackError
		if errors.Is(err, context.DeadlineExceeded) {
			reason = ReasonCallbackTimeout
		}
		if c.AllowOnTimeout {
			return true, "", fmt.Errorf("auth: callback %s: %w", req.Action, err)
		}
		return false, reason, fmt.Errorf("auth: callback %s: %w", req.Action, err)
	}
	c.store(req, allowed, reason)
	return allowed, reason, nil
}

func (c *Callback) call(ctx context.Context, req CallbackRequest) (bool, string, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultCallbackTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return false, "", err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return false, "", err
	}
	hreq.Header.Set("Content-Type", "application/json")
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return false, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCallbackBody))
	if err != nil {
		return false, "", err
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return true, "", nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		var a callbackAnswer
		_ = json.Unmarshal(data, &a) // the reason is optional
		reason := sanitizeReason(a.Reason)
		if reason == "" {
			reason = ReasonCallbackDenied
		}
		return false, reason, nil
	default:
		return false, "", fmt.Errorf("status %d", resp.StatusCode)
	}
}

func (c *Callback) cached(req CallbackRequest) (cachedAnswer, bool) {
	if c.CacheTTL <= 0 {
		return cachedAnswer{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.cache[req]
	if !ok {
		return cachedAnswer{}, false
	}
	if !c.now().Before(a.until) {
		delete(c.cache, req)
		return cachedAnswer{}, false
	}
	return a, true
}

func (c *Callback) store(req CallbackRequest, allowed bool, reason string) {
	if c.CacheTTL <= 0 {
		return
	}
	max := c.MaxEntries
	if max <= 0 {
		max = DefaultCallbackMaxEntries
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		c.cache = make(map[CallbackRequest]cachedAnswer)
	}
	if len(c.cache) >= max {
		for k, a := range c.cache {
			if !now.Before(a.until) {
				delete(c.cache, k)
			}
		}
		for k := range c.cache {
			if len(c.cache) < max {
				break
			}
			delete(c.cache, k)
		}
	}
	c.cache[req] = cachedAnswer{allowed: allowed, reason: reason, until: now.Add(c.CacheTTL)}
}

// sanitizeReason keeps a reason fit for a header and a metric label:
// letters, digits, '_', '-', '.', ':', spaces as '_', at most 64 bytes.
func sanitizeReason(s string) string {
	b := make([]byte, 0, min(len(s), 64))
	for i := 0; i < len(s) && len(b) < 64; i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.', c == ':':
			b = append(b, c)
		case c == ' ':
			b = append(b, '_')
		}
	}
	return string(b)
}
