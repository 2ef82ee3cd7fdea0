// Package fanoutbench is the fan-out suite: it plays one live stream with
// N concurrent viewers against an edge (or an origin: the URLs are the
// same), ramped up over a set time, and reports how many viewers the
// server held, the bandwidth it delivered, the time to first keyframe,
// stalls, and the server process's CPU and memory when its PID is given.
//
// A viewer is an HTTP-FLV reader (GET /live/{stream}.flv, every tag
// parsed) or an HLS player loop (multivariant playlist, one variant and
// its audio, media playlists polled every half target duration, each new
// segment fetched). All viewers share one http.Client. The suite is
// CGO-free and needs no tool besides the server under test.
package fanoutbench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livegrid/livegrid/bench"
)

// Protocols and rendition picks.
const (
	ProtocolFLV = "flv"
	ProtocolHLS = "hls"

	PickRoundRobin = "round-robin" // viewer i plays variant i mod n
	PickLowest     = "lowest"      // every viewer plays the lowest BANDWIDTH
)

// Config is what to measure.
type Config struct {
	// URL is the edge or origin base, like http://edge:8080; the stream is
	// at {URL}/live/{Stream}.flv and {URL}/live/{Stream}/index.m3u8.
	URL      string
	Stream   string
	Viewers  int
	Protocol string // flv or hls
	// Ramp spreads the viewers' starts evenly over this time; Duration is
	// the measured window that follows, with every viewer started.
	Ramp, Duration time.Duration
	// PID is the server process to sample from /proc; 0 samples none.
	PID int
	// Baseline is how long the server's CPU is measured before the first
	// viewer starts, so viewers are charged only what they add (with PID;
	// 0 measures none).
	Baseline time.Duration
	// Rendition is the HLS variant: round-robin (default), lowest, or a
	// rendition name such as 360p.
	Rendition string
	// Audio makes HLS viewers also follow the variant's audio rendition,
	// as players do.
	Audio bool
	// StallGap is the FLV gap between tags that counts as a stall (default
	// 2 s). IdleTimeout drops an FLV connection with no tag for that long
	// (default 10 s). RequestTimeout bounds one HLS request (default 10 s).
	// Retry is how long a viewer waits before it reconnects (default 1 s).
	StallGap, IdleTimeout, RequestTimeout, Retry time.Duration
	// SampleEvery is the timeline's step (default 1 s).
	SampleEvery time.Duration
	// Client is shared by every viewer; nil makes one sized for Viewers.
	Client *http.Client
	Log    *slog.Logger
	// Progress is told how the run gets on, once per sample; calls never
	// overlap. Nil shows nothing.
	Progress func(bench.ProgressUpdate)
	Now      func() time.Time // nil is time.Now
}

// MaxViewers bounds --viewers: each viewer is a goroutine and a socket.
const MaxViewers = 100000

func (c *Config) check() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("'edge' must be an http:// or https:// URL like http://edge:8080, not %q", c.URL)
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.Stream == "" || strings.ContainsAny(c.Stream, "/?#% ") {
		return fmt.Errorf("'stream' must be a stream name like demo, not %q", c.Stream)
	}
	if c.Viewers < 1 || c.Viewers > MaxViewers {
		return fmt.Errorf("'viewers' must be between 1 and %d, not %d", MaxViewers, c.Viewers)
	}
	switch c.Protocol {
	case "":
		c.Protocol = ProtocolFLV
	case ProtocolFLV, ProtocolHLS:
	default:
		return fmt.Errorf("'protocol' must be flv or hls, not %q", c.Protocol)
	}
	if c.Duration < time.Second {
		return fmt.Errorf("'duration' must be at least 1s, not %s", c.Duration)
	}
	if c.Ramp < 0 {
		return fmt.Errorf("'ramp' must not be negative, not %s", c.Ramp)
	}
	if c.PID < 0 {
		return fmt.Errorf("'pid' must be a process id, not %d", c.PID)
	}
	if c.Baseline < 0 || c.Baseline > time.Minute {
		return fmt.Errorf("'baseline' must be between 0 and 1m, not %s", c.Baseline)
	}
	if c.Rendition == "" {
		c.Rendition = PickRoundRobin
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.StallGap, 2*time.Second)
	def(&c.IdleTimeout, 10*time.Second)
	def(&c.RequestTimeout, 10*time.Second)
	def(&c.Retry, time.Second)
	def(&c.SampleEvery, time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// NewClient returns the http.Client a run of n viewers shares: enough
// connections per host for every viewer to hold one (HLS viewers reuse
// theirs), no proxy, no compression, and no overall timeout, since an
// HTTP-FLV response never ends.
func NewClient(n int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2*n + 16,
		MaxIdleConnsPerHost:   2*n + 16,
		MaxConnsPerHost:       2*n + 16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
		DisableCompression:    true,
	}}
}

// runner is one run's shared state.
type runner struct {
	cfg      Config
	client   *http.Client
	now      func() time.Time
	requests atomic.Int64
	errs     errCounter
	stopping atomic.Bool // the run is over: a cancelled read is not a failure

	mu      sync.Mutex
	viewers []*viewer // started so far, in start order
}

func (r *runner) started() []*viewer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.viewers)
}

// errCounter counts errors by kind.
type errCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (e *errCounter) add(kind string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n = map[string]int{}
	}
	e.n[kind]++
}

func (e *errCounter) counts() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.n))
	for k, v := range e.n {
		out[k] = v
	}
	return out
}

// Run drives the viewers and returns the report. When ctx ends early it
// returns what was measured so far with Interrupted set, and ctx's error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, client: cfg.Client, now: cfg.Now}
	if r.client == nil {
		r.client = NewClient(cfg.Viewers)
		defer r.client.CloseIdleConnections()
	}
	rep := &Report{Schema: Schema, Suite: "fanout", Machine: bench.ReadMachine(), LoadAverage: bench.LoadAverage(),
		Config: ReportConfig{URL: cfg.URL, Stream: cfg.Stream, Protocol: cfg.Protocol, Viewers: cfg.Viewers,
			DurationS: cfg.Duration.Seconds(), RampS: cfg.Ramp.Seconds(), PID: cfg.PID, StallGapS: cfg.StallGap.Seconds()}}
	if cfg.Protocol == ProtocolHLS {
		rep.Config.Rendition, rep.Config.Audio = cfg.Rendition, cfg.Audio
	}
	var edge0 bench.ProcSample
	if cfg.PID > 0 {
		s, err := bench.ReadProcPID(cfg.PID)
		if err != nil {
			return nil, fmt.Errorf("fanout: the process to sample (--pid %d): %w", cfg.PID, err)
		}
		edge0 = s
	}
	var base baseline
	if cfg.PID > 0 && cfg.Baseline > 0 {
		if cfg.Progress != nil {
			cfg.Progress(bench.ProgressUpdate{Suite: "fanout", Text: fmt.Sprintf("measuring the server's CPU for %s before the viewers", cfg.Baseline)})
		}
		t0 := r.now()
		if err := sleepUntil(ctx, r.now, t0.Add(cfg.Baseline)); err != nil {
			return nil, err
		}
		if s, err := bench.ReadProcPID(cfg.PID); err == nil {
			base = baseline{cores: (s.CPU - edge0.CPU).Seconds() / r.now().Sub(t0).Seconds(), length: r.now().Sub(t0)}
			edge0 = s
		}
	}
	if lim := openFileLimit(); lim > 0 && uint64(cfg.Viewers)+64 > lim {
		cfg.Log.Warn("fanout: the open file limit is below one socket per viewer; raise it with ulimit -n", "limit", lim, "viewers", cfg.Viewers)
	}
	target := cfg.URL + "/live/" + cfg.Stream
	switch cfg.Protocol {
	case ProtocolFLV:
		target += ".flv"
	case ProtocolHLS:
		target += "/index.m3u8"
	}

	selfStart, _ := bench.ReadProc()
	start := r.now()
	rep.StartedAt = start.UTC()
	rampEnd, end := start.Add(cfg.Ramp), start.Add(cfg.Ramp+cfg.Duration)
	smp := &sampler{r: r, pid: cfg.PID, start: start, total: cfg.Ramp + cfg.Duration}
	smpCtx, stopSampler := context.WithCancel(context.Background())
	smpDone := make(chan struct{})
	go func() { defer close(smpDone); smp.run(smpCtx) }()

	vctx, stopViewers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { // also on a panic, so no viewer outlives Run
		r.stopping.Store(true)
		stopViewers()
		wg.Wait()
		stopSampler()
		<-smpDone
	}()
	var runErr error
	for i := 0; i < cfg.Viewers; i++ {
		at := start.Add(time.Duration(int64(cfg.Ramp) * int64(i) / int64(cfg.Viewers)))
		if err := sleepUntil(ctx, r.now, at); err != nil {
			runErr = err
			break
		}
		v := &viewer{id: i}
		r.mu.Lock()
		r.viewers = append(r.viewers, v)
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.play(vctx, v, target)
		}()
	}
	// The window opens once every viewer has started.
	winStart := start
	startBytes := map[int]int64{}
	self0 := selfStart
	if runErr == nil {
		runErr = sleepUntil(ctx, r.now, rampEnd)
	}
	if runErr == nil {
		winStart = r.now()
		for _, v := range r.started() {
			startBytes[v.id] = v.bytes.Load()
		}
		self0, _ = bench.ReadProc()
		if cfg.PID > 0 {
			if s, err := bench.ReadProcPID(cfg.PID); err == nil {
				edge0.CPU = s.CPU // RSS before stays the pre-run baseline
			}
		}
		runErr = sleepUntil(ctx, r.now, end)
	}
	winEnd := r.now()
	snaps := make([]viewerSnapshot, 0, cfg.Viewers)
	for _, v := range r.started() {
		snaps = append(snaps, v.snapshot(winEnd))
	}
	self1, _ := bench.ReadProc()
	var edge1 bench.ProcSample
	var edgeErr error
	if cfg.PID > 0 {
		edge1, edgeErr = bench.ReadProcPID(cfg.PID)
	}
	r.stopping.Store(true)
	stopViewers()
	wg.Wait()
	stopSampler()
	<-smpDone

	win := winEnd.Sub(winStart)
	rep.FinishedAt = r.now().UTC()
	rep.Interrupted = runErr != nil
	rep.Timeline = smp.points
	m := measure{asked: cfg.Viewers, protocol: cfg.Protocol, stallGap: cfg.StallGap, start: start, window: win, end: winEnd,
		startBytes: startBytes, viewers: snaps, errors: r.errs.counts(), requests: r.requests.Load()}
	rep.Result, rep.Viewers = m.summarize()
	rep.Result.WindowStartS = winStart.Sub(start).Seconds()
	rep.Client = ClientProcess{RSSBytes: self1.RSSBytes, MaxSampleGapS: smp.maxGap.Seconds()}
	if win > 0 {
		rep.Client.CPUCores = (self1.CPU - self0.CPU).Seconds() / win.Seconds()
	}
	if cfg.PID > 0 {
		rep.Edge = edgeProcess(cfg.PID, edge0, edge1, edgeErr, smp.points, rep.Result.WindowStartS, win, cfg.Viewers, rep.Result.BandwidthBytesPerS, base)
	}
	if cfg.Progress != nil {
		cfg.Progress(bench.ProgressUpdate{Suite: "fanout", Frac: 1, Final: true, Text: rep.Headline(),
			Attrs: []any{"held", rep.Result.ViewersHeld, "viewers", rep.Result.Viewers, "bandwidth", bench.Mbps(rep.Result.BandwidthBytesPerS)}})
	}
	return rep, runErr
}

// play runs one viewer's sessions until ctx ends, reconnecting after a
// failure as a player would.
func (r *runner) play(ctx context.Context, v *viewer, target string) {
	for {
		v.start(r.now())
		var err error
		switch r.cfg.Protocol {
		case ProtocolFLV:
			err = r.flvSession(ctx, v, target)
		case ProtocolHLS:
			err = r.hlsSession(ctx, v, target)
		}
		if ctx.Err() != nil {
			return // the run is over; the session was not dropped
		}
		v.disconnect()
		if err != nil {
			v.failed()
			r.errs.add(errorKind(err))
			r.cfg.Log.Debug("fanout viewer session ended", "viewer", v.id, "err", err)
		}
		if sleepUntil(ctx, r.now, r.now().Add(r.cfg.Retry)) != nil {
			return
		}
	}
}

// sleepUntil waits until t by now's clock, or returns ctx's error.
func sleepUntil(ctx context.Context, now func() time.Time, t time.Time) error {
	d := t.Sub(now())
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// sampler records the timeline: viewers connected and held, bandwidth,
// and the server process's CPU and RSS, once per SampleEvery. Run owns
// it; points is read after run returns.
type sampler struct {
	r      *runner
	pid    int
	start  time.Time
	total  time.Duration
	points []TimelinePoint
	maxGap time.Duration // longest time between two samples
}

func (s *sampler) run(ctx context.Context) {
	tick := time.NewTicker(s.r.cfg.SampleEvery)
	defer tick.Stop()
	prevT, prevBytes := s.start, int64(0)
	var prevCPU time.Duration
	if s.pid > 0 {
		if p, err := bench.ReadProcPID(s.pid); err == nil {
			prevCPU = p.CPU
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := s.r.now()
		s.maxGap = max(s.maxGap, now.Sub(prevT))
		vs := s.r.started()
		pt := TimelinePoint{TS: now.Sub(s.start).Seconds(), Started: len(vs)}
		var total int64
		var ttfks []float64
		stalls, errs := 0, 0
		for _, v := range vs {
			snap := v.snapshot(now)
			total += snap.Bytes
			if snap.Connected {
				pt.Connected++
			}
			if snap.Held {
				pt.Held++
			}
			if snap.HasTTFK {
				ttfks = append(ttfks, snap.TTFK.Seconds())
			}
			stalls += snap.Stalls
			errs += snap.Errors
		}
		if dt := now.Sub(prevT).Seconds(); dt > 0 {
			pt.BandwidthBytesPerS = float64(total-prevBytes) / dt
			if s.pid > 0 {
				if p, err := bench.ReadProcPID(s.pid); err == nil {
					pt.EdgeCPUCores = (p.CPU - prevCPU).Seconds() / dt
					pt.EdgeRSSBytes = p.RSSBytes
					prevCPU = p.CPU
				}
			}
		}
		prevT, prevBytes = now, total
		s.points = append(s.points, pt)
		if s.r.cfg.Progress != nil {
			ttfk := bench.Percentile(ttfks, 50)
			s.r.cfg.Progress(bench.ProgressUpdate{
				Suite: "fanout",
				Frac:  now.Sub(s.start).Seconds() / s.total.Seconds(),
				Text: fmt.Sprintf("%d/%d viewers  held %d  %s  ttfk p50 %.2fs  stalls %d  errors %d",
					len(vs), s.r.cfg.Viewers, pt.Held, bench.Mbps(pt.BandwidthBytesPerS), ttfk, stalls, errs),
				Attrs: []any{"viewers", len(vs), "held", pt.Held, "bandwidth", bench.Mbps(pt.BandwidthBytesPerS),
					"ttfk_p50", fmt.Sprintf("%.2fs", ttfk), "stalls", stalls, "errors", errs},
			})
		}
	}
}
