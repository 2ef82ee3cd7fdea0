// Package transcodebench is the transcode density suite: it streams N
// copies of one input through the transcode engine at once, each paced like
// a live stream (segment k is released k segment durations after the
// session starts), measures every segment's transcode time against its
// duration, and finds the knee: the most sessions a machine carries with
// p99 of transcode time ÷ segment duration within the SLO.
//
// It needs cgo (the engine) and the ffmpeg and ffprobe command lines (to
// prepare the source segments and for the reference comparison).
package transcodebench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/livegrid/livegrid/bench"
	"github.com/livegrid/livegrid/bench/ffmpegref"
	"github.com/livegrid/livegrid/internal/vod"
	"github.com/livegrid/livegrid/profiles"
	"github.com/livegrid/livegrid/worker/transcode"
)

// Config is what to measure.
type Config struct {
	// Input is a file or URL; empty generates a testsrc2 clip of Duration.
	Input string
	// GenerateWidth, GenerateHeight and GenerateFPS size the generated clip
	// (default 1920x1080 at 30 fps).
	GenerateWidth, GenerateHeight, GenerateFPS int

	// Profile is the ladder as the user named it, for the report.
	Profile string
	Ladder  *profiles.Ladder
	// Encoder forces one encoder kind; "" or "auto" keeps each rung's preference.
	Encoder profiles.EncoderKind
	// Threads per rung encoder; 0 lets the engine size them.
	Threads int
	// SegmentDuration is the source segment length (default 2s).
	SegmentDuration time.Duration
	// Duration is the media each session streams; the input is cut to it.
	// 0 takes the whole input (only with Input).
	Duration time.Duration
	// Sessions lists the session counts to measure; nil sweeps
	// automatically (1, 2, 3, 4, 6, 8, ...) until the SLO breaks.
	Sessions    []int
	MaxSessions int     // the auto sweep's ceiling, default 64
	SLO         float64 // p99 bound of transcode time ÷ segment duration, default 0.8
	// CompareFFmpeg also transcodes the whole source with the ffmpeg command
	// line and with the engine, unpaced, and reports ratio_vs_ffmpeg.
	CompareFFmpeg bool
	// WorkDir holds the source and its segments; "" uses a temporary
	// folder that is removed afterwards.
	WorkDir string
	Log     *slog.Logger
	// Progress is told how the suite gets on; calls never overlap. Nil
	// shows nothing.
	Progress func(bench.ProgressStep)
	Clock    Clock // nil is the wall clock
}

// Clock is the suite's time source: it decides when segments are released
// and measures how long they take.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t, or with ctx's error if ctx ends first.
	SleepUntil(ctx context.Context, t time.Time) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func (c *Config) setDefaults() error {
	c.Log = cmp.Or(c.Log, slog.New(slog.DiscardHandler))
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	if c.Progress == nil {
		c.Progress = func(bench.ProgressStep) {}
	}
	c.Encoder = cmp.Or(c.Encoder, "auto")
	c.SegmentDuration = cmp.Or(c.SegmentDuration, 2*time.Second)
	c.GenerateWidth, c.GenerateHeight = cmp.Or(c.GenerateWidth, 1920), cmp.Or(c.GenerateHeight, 1080)
	c.GenerateFPS = cmp.Or(c.GenerateFPS, 30)
	c.MaxSessions = cmp.Or(c.MaxSessions, 64)
	c.SLO = cmp.Or(c.SLO, bench.DefaultSLO)
	switch {
	case c.Ladder == nil:
		return errors.New("transcodebench: no ladder")
	case c.SegmentDuration < time.Second || c.SegmentDuration > 10*time.Second:
		return fmt.Errorf("'segment-duration' must be between 1s and 10s, not %s", c.SegmentDuration)
	case c.Duration < 0, c.Input == "" && c.Duration < c.SegmentDuration:
		return fmt.Errorf("'duration' must be at least one segment (%s) to generate a clip, not %s", c.SegmentDuration, c.Duration)
	case c.GenerateWidth < 16 || c.GenerateHeight < 16 || c.GenerateWidth%2 != 0 || c.GenerateHeight%2 != 0:
		return fmt.Errorf("'size' must be even and at least 16x16, not %dx%d", c.GenerateWidth, c.GenerateHeight)
	case c.GenerateFPS < 1 || c.GenerateFPS > 240:
		return fmt.Errorf("'fps' must be between 1 and 240, not %d", c.GenerateFPS)
	case c.SLO <= 0 || c.SLO > 10:
		return fmt.Errorf("'slo' must be above 0 and at most 10, not %g", c.SLO)
	case c.MaxSessions < 1:
		return fmt.Errorf("'max-sessions' must be at least 1, not %d", c.MaxSessions)
	}
	return nil
}

// suite is one Run: the prepared source, the engine and the report so far.
type suite struct {
	cfg   Config
	eng   *transcode.Engine
	src   *source
	rep   *bench.TranscodeReport
	rungs encoderLog // over every run
}

// Run prepares the source, warms the encoders with one unmeasured segment,
// runs the ffmpeg comparison if asked, then measures each session count.
// On an error or cancellation it returns the report of the runs that
// completed (Interrupted set) with the error.
func Run(ctx context.Context, cfg Config) (*bench.TranscodeReport, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &suite{cfg: cfg, rep: &bench.TranscodeReport{
		Schema: bench.TranscodeSchema, Suite: "transcode", StartedAt: cfg.Clock.Now().UTC(), Machine: bench.ReadMachine(),
		Config: bench.TranscodeConfig{Input: cfg.Input, Generated: cfg.Input == "", Profile: cfg.Profile, Ladder: cfg.Ladder.Name,
			Encoder: string(cfg.Encoder), Threads: cfg.Threads, SegmentDurationS: cfg.SegmentDuration.Seconds(),
			DurationS: cfg.Duration.Seconds(), Sessions: sessionsString(cfg.Sessions), SLO: cfg.SLO},
		Knee: bench.Knee{Status: bench.KneeNoRuns, SLO: cfg.SLO},
	}}
	if cfg.Sessions == nil {
		s.rep.Config.MaxSessions = cfg.MaxSessions
	}
	err := s.run(ctx)
	r := s.rep
	r.Rungs = s.rungs.list()
	r.Machine.Encoder = videoEncoders(r.Rungs)
	// An auto sweep bisects, so runs finish out of order; reports read by sessions.
	slices.SortStableFunc(r.Runs, func(a, b bench.TranscodeRun) int { return a.Sessions - b.Sessions })
	r.Knee = bench.FindKnee(r.Runs, cfg.SLO)
	r.FinishedAt = cfg.Clock.Now().UTC()
	if err != nil {
		r.Interrupted = true
		return r, err
	}
	return r, nil
}

func (s *suite) run(ctx context.Context) error {
	dir := s.cfg.WorkDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "livegrid-bench-")
		if err != nil {
			return fmt.Errorf("transcodebench: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("transcodebench: %w", err)
	}
	s.cfg.Progress(bench.ProgressStep{Phase: "prepare"})
	src, err := prepare(ctx, &s.cfg, dir)
	if err != nil {
		return err
	}
	s.src, s.rep.Source = src, src.info
	s.cfg.Log.Info("source ready", "segments", len(src.segments), "media", time.Duration(src.info.MediaS*float64(time.Second)).Round(time.Millisecond).String(),
		"size", fmt.Sprintf("%dx%d", src.info.Width, src.info.Height), "reencoded", src.info.Reencoded)

	s.eng = transcode.New(transcode.Options{Log: s.cfg.Log, Encoder: s.cfg.Encoder, Threads: s.cfg.Threads})
	// One unmeasured segment opens (and, for hardware, probes) the encoders
	// as a worker's first segment would, so run 1 does not pay for it.
	s.cfg.Progress(bench.ProgressStep{Phase: "warm-up"})
	res, err := s.transcode(ctx, src.segments[0])
	if err != nil {
		return fmt.Errorf("warm-up segment: %w", err)
	}
	s.rungs.add(res)
	s.cfg.Log.Info("encoders", "used", videoEncoders(s.rungs.list()))

	if s.cfg.CompareFFmpeg {
		s.cfg.Progress(bench.ProgressStep{Phase: "compare-ffmpeg"})
		c, err := s.compare(ctx, filepath.Join(dir, "compare"))
		if err != nil {
			return fmt.Errorf("compare with ffmpeg: %w", err)
		}
		s.rep.FFmpeg, s.rep.RatioVsFFmpeg = c, &c.RatioVsFFmpeg
	}

	next := func() int { return bench.NextAutoSessions(s.rep.Runs, s.cfg.SLO, s.cfg.MaxSessions) }
	if s.cfg.Sessions != nil {
		todo := slices.Clone(s.cfg.Sessions)
		next = func() int {
			if len(todo) == 0 {
				return 0
			}
			n := todo[0]
			todo = todo[1:]
			return n
		}
	}
	for n := next(); n > 0; n = next() {
		run, err := s.measure(ctx, n)
		if err != nil {
			return fmt.Errorf("%d sessions: %w", n, err)
		}
		s.rep.Runs = append(s.rep.Runs, run)
		s.cfg.Progress(bench.ProgressStep{Phase: "run", Sessions: n, Done: run.Segments, Total: run.Segments + run.SkippedSegments,
			Late: run.LateSegments, Skipped: run.SkippedSegments, P99: run.TranscodeRatio.P99})
	}
	return nil
}

// transcode runs one source segment through the ladder, as a worker does.
func (s *suite) transcode(ctx context.Context, seg sourceSegment) (*transcode.SegmentResult, error) {
	return s.eng.TranscodeSegment(ctx, transcode.Source{Data: seg.data, Format: "mpegts"}, s.cfg.Ladder,
		transcode.SegmentOptions{SegmentDuration: s.cfg.SegmentDuration, End: seg.end})
}

// measure runs n live-paced sessions at once and measures them. Session i
// starts i/n of a segment duration after the first, so releases spread
// over the segment instead of arriving together.
func (s *suite) measure(ctx context.Context, n int) (bench.TranscodeRun, error) {
	clock := s.cfg.Clock
	runtime.GC()
	debug.FreeOSMemory() // the baseline should not hold the last run's garbage
	before, err := bench.ReadProc()
	if err != nil {
		return bench.TranscodeRun{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	peak := newPeakSampler(before.RSSBytes)
	obs := &observer{progress: s.cfg.Progress, sessions: n, total: n * len(s.src.segments)}
	sessions := make([]bench.SessionMeasure, n)
	ends := make([]time.Time, n)
	t0 := clock.Now()
	var wg sync.WaitGroup
	for i := range n {
		start := t0.Add(time.Duration(i) * s.cfg.SegmentDuration / time.Duration(n))
		wg.Go(func() {
			end, err := s.session(ctx, start, &sessions[i], obs)
			ends[i] = end
			if err != nil {
				cancel(fmt.Errorf("session %d: %w", i+1, err))
			}
		})
	}
	wg.Wait()
	rssPeak := peak.stop()
	after, err := bench.ReadProc()
	if cause := context.Cause(ctx); cause != nil {
		return bench.TranscodeRun{}, cause
	}
	if err != nil {
		return bench.TranscodeRun{}, err
	}
	last := t0
	for _, e := range ends {
		if e.After(last) {
			last = e
		}
	}
	m := bench.RunMeasure{Sessions: sessions, Wall: last.Sub(t0), CPU: after.CPU - before.CPU,
		RSSBaseline: before.RSSBytes, RSSPeak: max(rssPeak, after.RSSBytes), Encoders: obs.rungs.list(), Fallbacks: obs.fallbacks}
	s.rungs.merge(m.Encoders)
	return m.Result(s.cfg.SLO), nil
}

// session streams the source segments once, live-paced from start, and
// returns when it ended: its last segment done or its media over in real
// time, whichever is later. A session that falls more than
// twice the media's length behind stops starting segments and counts the
// rest as skipped, so an overloaded run still ends.
func (s *suite) session(ctx context.Context, start time.Time, m *bench.SessionMeasure, obs *observer) (time.Time, error) {
	clock := s.cfg.Clock
	media := time.Duration(s.src.info.MediaS * float64(time.Second))
	giveUp := start.Add(2*media + 2*s.cfg.SegmentDuration)
	end := start
	for k, seg := range s.src.segments {
		if err := clock.SleepUntil(ctx, start.Add(seg.offset)); err != nil {
			return end, err
		}
		t := clock.Now()
		if t.After(giveUp) {
			m.Skipped = len(s.src.segments) - k
			obs.skip(m.Skipped)
			break
		}
		res, err := s.transcode(ctx, seg)
		end = clock.Now()
		if err != nil {
			return end, fmt.Errorf("segment %d: %w", k, err)
		}
		took := end.Sub(t)
		ratio := took.Seconds() / cmp.Or(seg.media, s.cfg.SegmentDuration).Seconds()
		m.Ratios = append(m.Ratios, ratio)
		m.Media += seg.media
		m.Busy += took
		obs.segment(ratio, res)
	}
	// A live session lasts at least as long as its media, however fast it
	// transcodes: its wall ends with the later of the two.
	last := s.src.segments[len(s.src.segments)-1]
	if mediaEnd := start.Add(last.offset + last.media); mediaEnd.After(end) {
		end = mediaEnd
	}
	m.Wall = end.Sub(start)
	return end, nil
}

// compare transcodes the whole source unpaced with the ffmpeg command line
// (bench/ffmpegref) and then with (*Engine).TranscodeFile into a vod.Writer
// — one warm pipeline, as `livegrid transcode` runs — and compares their
// throughput on the same media. Both read an MP4 remux of the source: the
// ffmpeg CLI cannot copy MPEG-TS's ADTS AAC into fMP4 HLS without a
// bitstream filter that ffmpegref does not add.
func (s *suite) compare(ctx context.Context, dir string) (*bench.FFmpegComparison, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	in := filepath.Join(dir, "source.mp4")
	if err := ffmpeg(ctx, "-i", s.src.path, "-map", "0", "-c", "copy", "-f", "mp4", in); err != nil {
		return nil, err
	}
	ffWall, err := ffmpegref.Run(ctx, in, s.cfg.Ladder, s.cfg.SegmentDuration, filepath.Join(dir, "ffmpeg"))
	if err != nil {
		return nil, err
	}
	w, err := vod.NewWriter(filepath.Join(dir, "livegrid"), s.cfg.SegmentDuration)
	if err != nil {
		return nil, err
	}
	start := s.cfg.Clock.Now()
	if _, err := s.eng.TranscodeFile(ctx, transcode.Source{URL: in}, s.cfg.Ladder,
		transcode.FileOptions{SegmentDuration: s.cfg.SegmentDuration}, w); err != nil {
		return nil, err
	}
	if err := w.Finish(); err != nil {
		return nil, err
	}
	lgWall := s.cfg.Clock.Now().Sub(start)
	media := s.src.info.MediaS
	c := &bench.FFmpegComparison{Method: "transcode_file", MediaS: media, LivegridWallS: lgWall.Seconds(), FFmpegWallS: ffWall.Seconds(),
		FFmpegEncoder: "software"}
	if lgWall > 0 && ffWall > 0 {
		c.LivegridRealtimeRatio, c.FFmpegRealtimeRatio = media/lgWall.Seconds(), media/ffWall.Seconds()
		c.RatioVsFFmpeg = ffWall.Seconds() / lgWall.Seconds() // (media/lg) ÷ (media/ff)
	}
	s.cfg.Log.Info("ffmpeg comparison", "livegrid", lgWall.Round(time.Millisecond).String(), "ffmpeg", ffWall.Round(time.Millisecond).String(),
		"ratio_vs_ffmpeg", fmt.Sprintf("%.2f", c.RatioVsFFmpeg))
	return c, nil
}

// observer gathers what the sessions of one run report as they go: segment
// counts for the progress display, encoders and fallbacks.
type observer struct {
	mu        sync.Mutex
	progress  func(bench.ProgressStep)
	sessions  int
	total     int
	done      int
	late      int
	skipped   int
	fallbacks int
	rungs     encoderLog
}

func (o *observer) segment(ratio float64, res *transcode.SegmentResult) {
	o.rungs.add(res)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done++
	if ratio > 1 {
		o.late++
	}
	o.fallbacks += res.Fallbacks
	o.report()
}

func (o *observer) skip(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.skipped += n
	o.report()
}

// report calls progress; o.mu is held, so calls never overlap.
func (o *observer) report() {
	step := bench.ProgressStep{Phase: "run", Sessions: o.sessions, Done: o.done, Total: o.total, Late: o.late, Skipped: o.skipped}
	if step.Done+step.Skipped < step.Total { // the run reports its final step itself, with p99
		o.progress(step)
	}
}

// encoderLog records which encoders produced each rendition, in ladder order.
type encoderLog struct {
	mu    sync.Mutex
	rungs []bench.RungEncoders
}

func (l *encoderLog) add(res *transcode.SegmentResult) {
	if res == nil {
		return
	}
	rs := make([]bench.RungEncoders, 0, len(res.Renditions))
	for _, r := range res.Renditions {
		g := bench.RungEncoders{Name: r.Name, Kind: r.Kind, Width: r.Width, Height: r.Height}
		if r.Encoder != "" {
			g.Encoders = []string{r.Encoder}
		}
		rs = append(rs, g)
	}
	l.merge(rs)
}

func (l *encoderLog) merge(rs []bench.RungEncoders) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rs {
		i := slices.IndexFunc(l.rungs, func(g bench.RungEncoders) bool { return g.Name == r.Name })
		if i < 0 {
			l.rungs = append(l.rungs, bench.RungEncoders{Name: r.Name, Kind: r.Kind, Width: r.Width, Height: r.Height})
			i = len(l.rungs) - 1
		}
		for _, e := range r.Encoders {
			if !slices.Contains(l.rungs[i].Encoders, e) {
				l.rungs[i].Encoders = append(l.rungs[i].Encoders, e)
			}
		}
	}
}

func (l *encoderLog) list() []bench.RungEncoders {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]bench.RungEncoders, len(l.rungs))
	for i, g := range l.rungs {
		g.Encoders = slices.Clone(g.Encoders)
		out[i] = g
	}
	return out
}

// videoEncoders lists the distinct video encoders of rungs, comma-separated.
func videoEncoders(rungs []bench.RungEncoders) string {
	var encs []string
	for _, g := range rungs {
		if g.Kind != "video" {
			continue
		}
		for _, e := range g.Encoders {
			if !slices.Contains(encs, e) {
				encs = append(encs, e)
			}
		}
	}
	return strings.Join(encs, ",")
}

func sessionsString(list []int) string {
	if list == nil {
		return "auto"
	}
	parts := make([]string, len(list))
	for i, n := range list {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ",")
}

// peakSampler samples the process's RSS every 50 ms until stopped.
type peakSampler struct {
	quit chan struct{}
	done chan int64
}

func newPeakSampler(initial int64) *peakSampler {
	p := &peakSampler{quit: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		peak := initial
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				p.done <- peak
				return
			case <-t.C:
				if s, err := bench.ReadProc(); err == nil {
					peak = max(peak, s.RSSBytes)
				}
			}
		}
	}()
	return p
}

// stop ends the sampling and returns the highest RSS seen.
func (p *peakSampler) stop() int64 {
	close(p.quit)
	return <-p.done
}
