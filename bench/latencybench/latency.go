// Package latencybench is the end-to-end latency suite: it publishes a
// generated stream over RTMP itself, noting the wall-clock instant each
// frame is sent (the mark), and measures how long each frame takes to
// become playable over HTTP-FLV, HLS and DASH, at the origin and at an
// edge.
//
// The stream comes from ffmpeg (testsrc and a tone, libx264 with a
// keyframe every GOP), written to an FLV file first; the suite then sends
// its tags through an RTMP client (go-rtmp) paced by their timestamps, so
// it knows when the frame with each timestamp left. Observers match what
// they receive back to those marks: FLV tags by timestamp (passthrough
// keeps them), CMAF segments by their tfdt (the engine keeps source
// timestamps; a constant offset is calibrated on the first segment).
//
// It is CGO-free and needs the ffmpeg command line.
package latencybench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livegrid/livegrid/bench"
	"github.com/livegrid/livegrid/internal/flv"
)

// Protocols and locations of a result.
const (
	ProtocolFLV  = "flv"
	ProtocolHLS  = "hls"
	ProtocolDASH = "dash"

	LocationOrigin = "origin"
	LocationEdge   = "edge"
)

// Config is what to measure.
type Config struct {
	// RTMP is the publish URL: rtmp://HOST:PORT/APP, or with the stream
	// name after the app.
	RTMP string
	// HTTP is the origin's base URL; Edge an edge's, or "" for none.
	HTTP, Edge string
	// Stream names the published stream; "" takes it from RTMP, else
	// latency-<unix time>, so no earlier stream's state is continued.
	Stream string
	// Duration is the media measured; the suite publishes two GOPs more,
	// so the segments inside the window are closed by a keyframe rather
	// than by the publisher leaving.
	Duration time.Duration
	// Width, Height and FPS size the generated stream (640x360 at 30);
	// GOP is its keyframe interval (2 s).
	Width, Height, FPS int
	GOP                time.Duration
	// Poll is how often HLS and DASH playlists are fetched (100 ms): the
	// measurement's granularity for them.
	Poll time.Duration
	// Settle is how long the suite waits after publishing for the last
	// segments (default 30 s).
	Settle time.Duration
	// Rendition is the HLS/DASH rendition measured; "" takes the first
	// video rendition (the top rung, the slowest to encode).
	Rendition string
	// WorkDir keeps the generated FLV; "" uses a temporary folder.
	WorkDir string
	// Client serves every observer; nil makes one.
	Client *http.Client
	Log    *slog.Logger
	// Progress is told how the run gets on; calls never overlap.
	Progress func(bench.ProgressUpdate)
	Now      func() time.Time // nil is time.Now
}

func (c *Config) check() (rtmpTarget, error) {
	t, err := parseRTMP(c.RTMP)
	if err != nil {
		return t, err
	}
	for _, f := range []struct {
		name string
		v    *string
		need bool
	}{{"http", &c.HTTP, true}, {"edge", &c.Edge, false}} {
		if *f.v == "" && !f.need {
			continue
		}
		u, err := url.Parse(*f.v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return t, fmt.Errorf("'%s' must be an http:// or https:// base URL like http://host:8080, not %q", f.name, *f.v)
		}
		*f.v = strings.TrimRight(*f.v, "/")
	}
	switch {
	case c.Stream != "":
	case t.stream != "":
		c.Stream = t.stream
	default:
		c.Stream = "latency-" + strconv.FormatInt(time.Now().Unix(), 10)
	}
	if strings.ContainsAny(c.Stream, "/?#% ") {
		return t, fmt.Errorf("'stream' must be a stream name like demo, not %q", c.Stream)
	}
	if c.GOP == 0 {
		c.GOP = 2 * time.Second
	}
	if c.GOP < 100*time.Millisecond || c.GOP > 10*time.Second {
		return t, fmt.Errorf("'gop' must be between 100ms and 10s, not %s", c.GOP)
	}
	if c.Duration < 2*c.GOP || c.Duration > time.Hour {
		return t, fmt.Errorf("'duration' must be between two GOPs (%s) and 1h, not %s", 2*c.GOP, c.Duration)
	}
	if c.Width == 0 {
		c.Width, c.Height = 640, 360
	}
	if c.FPS == 0 {
		c.FPS = 30
	}
	if c.FPS < 1 || c.FPS > 120 {
		return t, fmt.Errorf("'fps' must be between 1 and 120, not %d", c.FPS)
	}
	if c.Poll == 0 {
		c.Poll = 100 * time.Millisecond
	}
	if c.Poll < 10*time.Millisecond || c.Poll > 10*time.Second {
		return t, fmt.Errorf("'poll' must be between 10ms and 10s, not %s", c.Poll)
	}
	if c.Settle <= 0 {
		c.Settle = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return t, nil
}

// Run publishes, measures and returns the report. When ctx ends early it
// returns what was measured with Interrupted set, and ctx's error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	target, err := cfg.check()
	if err != nil {
		return nil, err
	}
	dir := cfg.WorkDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "livegrid-latency-"); err != nil {
			return nil, fmt.Errorf("latency: %w", err)
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("latency: %w", err)
	}
	rep := &Report{Schema: Schema, Suite: "latency", StartedAt: cfg.Now().UTC(), Machine: bench.ReadMachine(), LoadAverage: bench.LoadAverage(),
		Config: ReportConfig{RTMP: target.tcURL, HTTP: cfg.HTTP, Edge: cfg.Edge, Stream: cfg.Stream, DurationS: cfg.Duration.Seconds(),
			Width: cfg.Width, Height: cfg.Height, FPS: cfg.FPS, GOPS: cfg.GOP.Seconds(), PollS: cfg.Poll.Seconds(), Rendition: cfg.Rendition}}
	progress := func(u bench.ProgressUpdate) {
		if cfg.Progress != nil {
			u.Suite = "latency"
			cfg.Progress(u)
		}
	}
	progress(bench.ProgressUpdate{Text: "generating the stream with ffmpeg"})
	media := cfg.Duration + 2*cfg.GOP
	tags, err := generate(ctx, dir, cfg.Width, cfg.Height, cfg.FPS, cfg.GOP, media)
	if err != nil {
		return nil, err
	}

	client := cfg.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   16,
			ResponseHeaderTimeout: 10 * time.Second,
			DisableCompression:    true,
		}}
		defer client.CloseIdleConnections()
	}
	w := &watcher{client: client, marks: newMarks(), now: cfg.Now, poll: cfg.Poll, tolMS: 500 / float64(cfg.FPS),
		cutoffMS: cfg.Duration.Milliseconds(), rendition: cfg.Rendition, timeout: 10 * time.Second}
	var obs []*observer
	for _, loc := range []struct{ name, base string }{{LocationOrigin, cfg.HTTP}, {LocationEdge, cfg.Edge}} {
		if loc.base == "" {
			continue
		}
		live := loc.base + "/live/" + cfg.Stream
		obs = append(obs,
			&observer{protocol: ProtocolFLV, location: loc.name, url: live + ".flv"},
			&observer{protocol: ProtocolHLS, location: loc.name, url: live + "/index.m3u8"},
			&observer{protocol: ProtocolDASH, location: loc.name, url: live + "/index.mpd"})
	}
	octx, stopObservers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop := sync.OnceFunc(func() { stopObservers(); wg.Wait() })
	defer stop()
	for _, o := range obs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch o.protocol {
			case ProtocolFLV:
				w.watchFLV(octx, o)
			case ProtocolHLS:
				w.watchHLS(octx, o)
			case ProtocolDASH:
				w.watchDASH(octx, o)
			}
		}()
	}

	pub, err := dialPublisher(ctx, target, cfg.Stream)
	if err != nil {
		return nil, err
	}
	cfg.Log.Debug("latency: publishing", "url", target.tcURL+"/"+cfg.Stream, "media", media)
	info, runErr := w.publish(ctx, pub, tags, func(done, total time.Duration) {
		progress(bench.ProgressUpdate{Frac: done.Seconds() / total.Seconds() * 0.9,
			Text:  fmt.Sprintf("publishing %.1f/%.0fs  %s", done.Seconds(), total.Seconds(), countsText(obs)),
			Attrs: []any{"published", fmt.Sprintf("%.1fs", done.Seconds()), "samples", countsText(obs)}})
	})
	pub.close()
	rep.Publish = info

	// The segments of the window's last seconds are still on their way.
	deadline := cfg.Now().Add(cfg.Settle)
	for runErr == nil && !allComplete(obs) {
		if cfg.Now().After(deadline) {
			cfg.Log.Warn("latency: gave up waiting for the last segments", "settle", cfg.Settle)
			break
		}
		progress(bench.ProgressUpdate{Frac: 0.95, Text: "waiting for the last segments  " + countsText(obs)})
		runErr = sleep(ctx, 100*time.Millisecond)
	}
	stop()
	rep.FinishedAt = cfg.Now().UTC()
	rep.Interrupted = runErr != nil
	for _, o := range obs {
		rep.Results = append(rep.Results, o.result())
		rep.Samples = append(rep.Samples, o.samples...)
	}
	progress(bench.ProgressUpdate{Frac: 1, Final: true, Text: rep.Headline()})
	return rep, runErr
}

// publish sends tags in real time by their timestamps and records each
// video frame's send instant.
func (w *watcher) publish(ctx context.Context, p *publisher, tags []flv.Tag, progress func(done, total time.Duration)) (PublishInfo, error) {
	base := tags[0].Timestamp
	total := time.Duration(tags[len(tags)-1].Timestamp-base) * time.Millisecond
	start := w.now()
	info := PublishInfo{Tags: len(tags), MediaS: total.Seconds()}
	var lastShown time.Time
	for _, t := range tags {
		due := start.Add(time.Duration(t.Timestamp-base) * time.Millisecond)
		if d := due.Sub(w.now()); d > 0 {
			if err := sleep(ctx, d); err != nil {
				info.WallS = w.now().Sub(start).Seconds()
				return info, err
			}
		}
		// The mark is the instant the tag is handed to the connection, noted
		// before the write: on loopback the server can relay the tag to an
		// observer before Write returns.
		sent := w.now()
		info.MaxSendLagS = max(info.MaxSendLagS, sent.Sub(due).Seconds())
		if t.Type == flv.TagVideo {
			if vi, err := flv.ParseVideo(t.Data); err == nil && !vi.SequenceHeader && !vi.EndOfSequence {
				w.marks.add(frameMark{DTS: t.Timestamp, PTS: int64(t.Timestamp) + int64(vi.CompositionTime), Key: vi.Keyframe, Sent: sent})
				info.VideoFrames++
				if vi.Keyframe {
					info.Keyframes++
				}
			}
		}
		if err := p.send(t); err != nil {
			info.WallS = w.now().Sub(start).Seconds()
			return info, err
		}
		if sent.Sub(lastShown) >= 250*time.Millisecond {
			progress(sent.Sub(start), total)
			lastShown = sent
		}
	}
	info.WallS = w.now().Sub(start).Seconds()
	return info, nil
}

func allComplete(obs []*observer) bool {
	for _, o := range obs {
		if _, complete := o.count(); !complete {
			return false
		}
	}
	return true
}

// countsText says how many samples each observer has, like "flv 5  hls 2".
func countsText(obs []*observer) string {
	parts := make([]string, len(obs))
	for i, o := range obs {
		n, _ := o.count()
		name := o.protocol
		if o.location != LocationOrigin {
			name = o.location + " " + name
		}
		parts[i] = fmt.Sprintf("%s %d", name, n)
	}
	return strings.Join(parts, "  ")
}
