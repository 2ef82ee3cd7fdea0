// Package stats counts viewers on the server side: per stream, the
// current viewers by protocol, distinct visitors, plays, bytes sent and
// the current bandwidth. FLV and RTMP viewers are connections (Open a
// Session); HLS and DASH viewers are clients seen within a time window
// (ObserveHTTP, or the Middleware that calls it for /live/). A Reporter
// publishes a node's numbers to Redis and an Aggregator merges every
// node's, so the management API shows the whole cluster.
package stats

import (
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Protocol is how a viewer watches.
type Protocol string

// Protocols. ObserveHTTP also takes "" for a segment, which the client's
// last manifest attributes (HLS and DASH share CMAF segments).
const (
	FLV  Protocol = "flv"
	RTMP Protocol = "rtmp"
	HLS  Protocol = "hls"
	DASH Protocol = "dash"
)

// Defaults for a zero Config.
const (
	// DefaultHTTPWindow is about 3 segment durations plus a margin: a
	// player polls its playlist once per segment.
	DefaultHTTPWindow      = 10 * time.Second
	DefaultBandwidthWindow = 5 * time.Second
	DefaultMaxClients      = 10000
	DefaultMaxStreams      = 10000
	DefaultMaxClientIPs    = 1000
	DefaultStreamIdle      = 5 * time.Minute
)

// Config tunes a Tracker; the zero value uses the defaults.
type Config struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// HTTPWindow is how long after its last request an HLS or DASH
	// client still counts as a viewer; one that comes back later is a
	// new play. Default DefaultHTTPWindow.
	HTTPWindow time.Duration
	// BandwidthWindow is the span the current bandwidth is averaged
	// over. Default DefaultBandwidthWindow.
	BandwidthWindow time.Duration
	// MaxClients caps the HTTP clients tracked per stream; requests of
	// further clients count their bytes but no viewer. Default
	// DefaultMaxClients.
	MaxClients int
	// MaxStreams caps the streams tracked; viewers of further streams
	// are not counted. Default DefaultMaxStreams.
	MaxStreams int
	// MaxClientIPs caps the addresses a snapshot lists per stream.
	// Default DefaultMaxClientIPs.
	MaxClientIPs int
	// StreamIdle is how long a stream that is not live and has no viewer
	// keeps its totals before it is forgotten. Default DefaultStreamIdle.
	StreamIdle time.Duration
	// Live, when set, reports whether a stream is live and since when
	// (the stream registry); a live stream is never forgotten and its
	// start time is the publish time rather than its first viewer's. It
	// is called with the Tracker's lock held and must not call the Tracker.
	Live func(stream string) (started time.Time, ok bool)
}

func (c Config) withDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPWindow <= 0 {
		c.HTTPWindow = DefaultHTTPWindow
	}
	if c.BandwidthWindow <= 0 {
		c.BandwidthWindow = DefaultBandwidthWindow
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.MaxClientIPs <= 0 {
		c.MaxClientIPs = DefaultMaxClientIPs
	}
	if c.StreamIdle <= 0 {
		c.StreamIdle = DefaultStreamIdle
	}
	return c
}

// ByProtocol counts viewers per protocol.
type ByProtocol struct {
	FLV  int `json:"flv"`
	RTMP int `json:"rtmp"`
	HLS  int `json:"hls"`
	DASH int `json:"dash"`
}

func (b *ByProtocol) add(p Protocol, n int) {
	switch p {
	case FLV:
		b.FLV += n
	case RTMP:
		b.RTMP += n
	case HLS:
		b.HLS += n
	case DASH:
		b.DASH += n
	}
}

// Get returns the count of one protocol.
func (b ByProtocol) Get(p Protocol) int {
	switch p {
	case FLV:
		return b.FLV
	case RTMP:
		return b.RTMP
	case HLS:
		return b.HLS
	case DASH:
		return b.DASH
	}
	return 0
}

// Protocols lists every protocol, in the order ByProtocol has them.
var Protocols = []Protocol{FLV, RTMP, HLS, DASH}

// StreamStats is a snapshot of one stream's viewers.
type StreamStats struct {
	Stream string `json:"stream"`
	// StartTime is when the stream went live, or when it was first
	// watched if the registry does not know it.
	StartTime time.Time `json:"start_time"`
	DurationS float64   `json:"duration_s"`
	// Viewers is the current viewers: open FLV/RTMP connections and
	// HLS/DASH clients seen within the window.
	Viewers       int   `json:"viewers"`
	VisitorsTotal int64 `json:"visitors_total"` // distinct clients since the stream was first seen
	PlaysTotal    int64 `json:"plays_total"`    // connections, and HLS/DASH clients coming (back)
	BytesOut      int64 `json:"bytes_out"`
	// BandwidthBps is bits per second sent over the bandwidth window.
	BandwidthBps int64      `json:"bandwidth_bps"`
	ByProtocol   ByProtocol `json:"by_protocol"`
	// ClientIPs are the current viewers' addresses, sorted, at most
	// Config.MaxClientIPs of them.
	ClientIPs []string `json:"client_ips"`
}

// Tracker counts viewers per stream. It is safe for concurrent use and
// runs no goroutine: idle clients and streams are swept as it is used
// and on every Snapshot.
type Tracker struct {
	cfg Config

	mu        sync.Mutex
	streams   map[string]*stream
	lastSweep time.Time
}

// NewTracker returns an empty Tracker.
func NewTracker(cfg Config) *Tracker {
	return &Tracker{cfg: cfg.withDefaults(), streams: make(map[string]*stream)}
}

// stream is one stream's counters; the Tracker's lock guards all but bytes.
type stream struct {
	name       string
	firstSeen  time.Time
	lastActive time.Time
	bytes      atomic.Int64 // Session.Add adds without the lock
	plays      int64
	visitors   visitors
	sessions   map[*Session]struct{}
	clients    map[uint64]*httpClient
	lastSweep  time.Time
	samples    []sample // bytes over time, for the bandwidth
}

// httpClient is an HLS or DASH client.
type httpClient struct {
	ip       string
	proto    Protocol
	lastSeen time.Time
}

type sample struct {
	at    time.Time
	bytes int64
}

// maxSamples bounds a stream's bandwidth samples, taken at most every
// fifth of the window: they span at least two windows.
const maxSamples = 12

// Client names a viewer: its address and, where known, its User-Agent and
// player session.
type Client struct {
	IP, UserAgent, Session string
}

// Session is one FLV or RTMP viewer connection. Add and Close may be
// called from any goroutine; a nil or detached Session ignores them.
type Session struct {
	t      *Tracker
	st     *stream // nil: not counted (MaxStreams reached)
	proto  Protocol
	ip     string
	bytes  atomic.Int64
	closed atomic.Bool
}

// Open counts a new viewer connection of stream over proto (FLV or
// RTMP) from clientIP; Close the Session when the viewer leaves.
func (t *Tracker) Open(stream string, proto Protocol, clientIP string) *Session {
	return t.OpenClient(stream, proto, Client{IP: clientIP})
}

// OpenClient is Open for a client whose User-Agent and session are known,
// so it counts as the same visitor as its HTTP requests.
func (t *Tracker) OpenClient(stream string, proto Protocol, c Client) *Session {
	now := t.cfg.Now()
	s := &Session{t: t, proto: proto, ip: c.IP}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.stream(stream, now)
	if st == nil {
		return s
	}
	s.st = st
	st.sessions[s] = struct{}{}
	st.plays++
	st.visitors.add(clientHash(c.IP, c.UserAgent, c.Session))
	st.lastActive = now
	st.sample(now, t.cfg.BandwidthWindow)
	return s
}

// Add counts n bytes sent to the viewer.
func (s *Session) Add(n int64) {
	if s == nil || s.st == nil || n <= 0 || s.closed.Load() {
		return
	}
	s.bytes.Add(n)
	s.st.bytes.Add(n)
}

// Bytes returns the bytes sent to the viewer so far.
func (s *Session) Bytes() int64 {
	if s == nil {
		return 0
	}
	return s.bytes.Load()
}

// Close ends the viewer connection; it is idempotent.
func (s *Session) Close() {
	if s == nil || s.st == nil || s.closed.Swap(true) {
		return
	}
	t := s.t
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(s.st.sessions, s)
	s.st.lastActive = now
}

// ObserveHTTP counts one HLS or DASH request of stream that sent bytes
// to a client. proto is HLS or DASH for a manifest or playlist, and ""
// for a segment, which counts for the protocol of the manifest the client
// fetched last (HLS before any).
func (t *Tracker) ObserveHTTP(stream string, proto Protocol, clientIP, userAgent string, bytes int64) {
	t.Observe(stream, proto, Client{IP: clientIP, UserAgent: userAgent}, bytes)
}

// Observe is ObserveHTTP for a client with a player session.
func (t *Tracker) Observe(stream string, proto Protocol, c Client, bytes int64) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.stream(stream, now)
	if st == nil {
		return
	}
	if bytes > 0 {
		st.bytes.Add(bytes)
	}
	st.lastActive = now
	st.sample(now, t.cfg.BandwidthWindow)
	if now.Sub(st.lastSweep) >= time.Second {
		st.sweep(now, t.cfg.HTTPWindow)
	}
	h := clientHash(c.IP, c.UserAgent, c.Session)
	cl := st.clients[h]
	switch {
	case cl == nil:
		if len(st.clients) >= t.cfg.MaxClients {
			st.sweep(now, t.cfg.HTTPWindow)
			if len(st.clients) >= t.cfg.MaxClients {
				return // bytes counted, viewer not
			}
		}
		cl = &httpClient{ip: c.IP, proto: HLS}
		st.clients[h] = cl
		st.plays++
		st.visitors.add(h)
	case now.Sub(cl.lastSeen) > t.cfg.HTTPWindow:
		st.plays++ // back after the window: a new play
	}
	if proto != "" {
		cl.proto = proto
	}
	cl.lastSeen = now
}

// stream returns the stream's counters, created if new; nil when
// MaxStreams are tracked already. t.mu is held.
func (t *Tracker) stream(name string, now time.Time) *stream {
	if st, ok := t.streams[name]; ok {
		return st
	}
	if len(t.streams) >= t.cfg.MaxStreams {
		if now.Sub(t.lastSweep) >= time.Second { // at most once a second while full
			t.sweep(now)
		}
		if len(t.streams) >= t.cfg.MaxStreams {
			return nil
		}
	}
	st := &stream{
		name: name, firstSeen: now, lastActive: now, lastSweep: now,
		sessions: make(map[*Session]struct{}),
		clients:  make(map[uint64]*httpClient),
	}
	st.samples = append(st.samples, sample{at: now})
	t.streams[name] = st
	return st
}

// sweep forgets expired clients and idle streams; t.mu is held.
func (t *Tracker) sweep(now time.Time) {
	t.lastSweep = now
	for name, st := range t.streams {
		st.sweep(now, t.cfg.HTTPWindow)
		if len(st.sessions) > 0 || len(st.clients) > 0 || now.Sub(st.lastActive) < t.cfg.StreamIdle {
			continue
		}
		if t.cfg.Live != nil {
			if _, live := t.cfg.Live(name); live {
				continue
			}
		}
		delete(t.streams, name)
	}
}

// sweep forgets clients not seen within the window.
func (st *stream) sweep(now time.Time, window time.Duration) {
	st.lastSweep = now
	for h, c := range st.clients {
		if now.Sub(c.lastSeen) > window {
			delete(st.clients, h)
		}
	}
}

// sample records the byte count every fifth of the window at most.
func (st *stream) sample(now time.Time, window time.Duration) {
	if n := len(st.samples); n > 0 && now.Sub(st.samples[n-1].at) < window/5 {
		return
	}
	if len(st.samples) == maxSamples {
		st.samples = append(st.samples[:0], st.samples[1:]...)
	}
	st.samples = append(st.samples, sample{at: now, bytes: st.bytes.Load()})
}

// bandwidth is bits per second since the newest sample at least a window
// old; a stream younger than the window averages over the whole window.
func (st *stream) bandwidth(now time.Time, window time.Duration) int64 {
	cur := st.bytes.Load()
	base := st.samples[0]
	for _, s := range st.samples {
		if now.Sub(s.at) >= window {
			base = s
		}
	}
	span := max(now.Sub(base.at), window)
	return int64(math.Round(float64(cur-base.bytes) * 8 / span.Seconds()))
}

// Snapshot returns every tracked stream's stats, sorted by name, and
// forgets idle clients and streams.
func (t *Tracker) Snapshot() []StreamStats {
	reps := t.reports()
	out := make([]StreamStats, len(reps))
	for i, r := range reps {
		out[i] = r.StreamStats
	}
	return out
}

// Stream returns one stream's stats.
func (t *Tracker) Stream(name string) (StreamStats, bool) {
	for _, s := range t.Snapshot() {
		if s.Stream == name {
			return s, true
		}
	}
	return StreamStats{}, false
}

// streamReport is a snapshot with the visitor set, which merges across
// nodes; it is what a Reporter writes.
type streamReport struct {
	StreamStats
	Visitors *visitors `json:"visitors_set"`
}

func (t *Tracker) reports() []streamReport {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	out := make([]streamReport, 0, len(t.streams))
	for _, st := range t.streams {
		st.sample(now, t.cfg.BandwidthWindow)
		out = append(out, t.report(st, now))
	}
	slices.SortFunc(out, func(a, b streamReport) int { return strings.Compare(a.Stream, b.Stream) })
	return out
}

// report snapshots one stream; t.mu is held.
func (t *Tracker) report(st *stream, now time.Time) streamReport {
	r := streamReport{StreamStats: StreamStats{
		Stream:        st.name,
		StartTime:     st.firstSeen,
		VisitorsTotal: st.visitors.count(),
		PlaysTotal:    st.plays,
		BytesOut:      st.bytes.Load(),
		BandwidthBps:  st.bandwidth(now, t.cfg.BandwidthWindow),
	}, Visitors: st.visitors.clone()}
	if t.cfg.Live != nil {
		if started, ok := t.cfg.Live(st.name); ok && !started.IsZero() {
			r.StartTime = started
		}
	}
	r.DurationS = durationSeconds(now.Sub(r.StartTime))
	ips := make(map[string]struct{})
	for s := range st.sessions {
		r.ByProtocol.add(s.proto, 1)
		ips[s.ip] = struct{}{}
	}
	r.Viewers = len(st.sessions)
	for _, c := range st.clients {
		if now.Sub(c.lastSeen) > t.cfg.HTTPWindow {
			continue
		}
		r.Viewers++
		r.ByProtocol.add(c.proto, 1)
		ips[c.ip] = struct{}{}
	}
	r.ClientIPs = sortedIPs(ips, t.cfg.MaxClientIPs)
	return r
}

// sortedIPs lists the non-empty addresses of set, sorted, at most limit.
func sortedIPs(set map[string]struct{}, limit int) []string {
	out := make([]string, 0, min(len(set), limit))
	for ip := range set {
		if ip != "" {
			out = append(out, ip)
		}
	}
	slices.Sort(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func durationSeconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return math.Round(d.Seconds()*1000) / 1000
}
