package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/livegrid/livegrid/bench"
	"github.com/livegrid/livegrid/bench/fanoutbench"
	"github.com/livegrid/livegrid/bench/latencybench"
	"github.com/livegrid/livegrid/bench/transcodebench"
	"github.com/livegrid/livegrid/profiles"
)

const benchSynopsis = `bench <suite> [flags]

Capacity-planning suites. Suites:
  transcode  live-paced concurrent transcode sessions: density, knee, ffmpeg comparison
  fanout     N concurrent HTTP-FLV or HLS viewers against an edge or origin: viewers held, bandwidth, TTFK, stalls, server CPU and memory
  latency    publishes a marked stream over RTMP: publish-to-playable latency of HTTP-FLV, HLS and DASH at the origin and an edge

Run 'livegrid bench <suite> --help' for a suite's flags.`

const benchTranscodeSynopsis = `bench transcode [--in FILE|URL] [--profile FILE|NAME] [--sessions 1,2,4|auto] [--encoder auto|nvenc|qsv|vaapi|software] [--segment-duration 2s] [--duration 20s] [--compare-ffmpeg] [--json FILE] [--html FILE]

Streams N copies of the input through the transcode engine at once, each
paced like a live stream, and reports per session count the real-time
ratio, p50/p95/p99 of segment transcode time ÷ segment duration, late
segments, CPU and memory per session, and the knee: the most sessions with
p99 within --slo. With no --in it generates a testsrc2 clip of --duration.
bench/README.md explains the numbers and the JSON schema.`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stdout, "Usage: livegrid %s\n", benchSynopsis)
		return nil
	}
	switch args[0] {
	case "transcode":
		return runBenchTranscode(ctx, args[1:], stdout, stderr)
	case "fanout":
		return runBenchFanout(ctx, args[1:], stdout, stderr)
	case "latency":
		return runBenchLatency(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "livegrid bench: unknown suite %q\n\nUsage: livegrid %s\n", args[0], benchSynopsis)
	return errUsage
}

func runBenchTranscode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench transcode", benchTranscodeSynopsis, stderr)
	in := fs.String("in", "", "input file or URL; empty generates a testsrc2 clip with a tone")
	profile := fs.String("profile", "default", "ladder profile: a YAML file or a built-in name")
	sessions := fs.String("sessions", "auto", "session counts to measure, like 1,2,4, or auto: 1,2,3,4,6,8,... until the SLO breaks")
	enc := fs.String("encoder", "auto", "encoder kind for every rung: auto, nvenc, qsv, vaapi or software")
	segDur := fs.Duration("segment-duration", 2*time.Second, "source segment duration (1s..10s)")
	dur := fs.Duration("duration", 20*time.Second, "media each session streams; the input is cut to it (0: the whole --in)")
	compare := fs.Bool("compare-ffmpeg", false, "also transcode the whole source with the ffmpeg command line and report ratio_vs_ffmpeg")
	jsonPath := fs.String("json", "", "write the JSON report to this file")
	htmlPath := fs.String("html", "", "write the HTML report to this file")
	threads := fs.Int("threads", 0, "threads per rung encoder; 0 sizes them by each rung's share of the pixels")
	maxSessions := fs.Int("max-sessions", 64, "the most sessions --sessions auto tries")
	slo := fs.Float64("slo", bench.DefaultSLO, "SLO: the highest p99 of segment transcode time ÷ segment duration")
	size := fs.String("size", "1920x1080", "size of the generated clip (no --in)")
	fps := fs.Int("fps", 30, "frame rate of the generated clip (no --in)")
	workDir := fs.String("work-dir", "", "keep the source segments here (default: a temporary folder, removed afterwards)")
	progress := fs.String("progress", "auto", "progress display on stderr: auto (a bar on a terminal, log lines otherwise), bar, log or none")
	log, err := parseWithLog(fs, logFlags(fs), args, stderr)
	if err != nil {
		return err
	}
	kind := profiles.EncoderKind(*enc)
	switch kind {
	case "auto", profiles.EncoderNVENC, profiles.EncoderQSV, profiles.EncoderVAAPI, profiles.EncoderSoftware:
	default:
		return fmt.Errorf("'encoder' must be auto, nvenc, qsv, vaapi or software, not %q", *enc)
	}
	list, auto, err := bench.ParseSessions(*sessions)
	if err != nil {
		return err
	}
	if auto {
		list = nil
	}
	w, h, err := parseSize(*size)
	if err != nil {
		return err
	}
	if *threads < 0 || *threads > 64 {
		return fmt.Errorf("'threads' must be between 0 and 64, not %d", *threads)
	}
	if *in != "" && *dur > 0 && *dur < *segDur {
		return fmt.Errorf("'duration' must be 0 (the whole input) or at least one segment (%s), not %s", *segDur, *dur)
	}
	ladder, err := profiles.Open(*profile)
	if err != nil {
		return err
	}
	bar, err := bench.NewProgress(*progress, stderr, log)
	if err != nil {
		return err
	}
	rep, runErr := transcodebench.Run(ctx, transcodebench.Config{
		Input: *in, GenerateWidth: w, GenerateHeight: h, GenerateFPS: *fps,
		Profile: *profile, Ladder: ladder, Encoder: kind, Threads: *threads,
		SegmentDuration: *segDur, Duration: *dur, Sessions: list, MaxSessions: *maxSessions, SLO: *slo,
		CompareFFmpeg: *compare, WorkDir: *workDir, Log: log, Progress: bar.Step,
	})
	bar.Done()
	if rep == nil || (runErr != nil && len(rep.Runs) == 0) {
		return runErr
	}
	// An interrupted sweep still reports the runs that completed.
	err = errors.Join(runErr,
		rep.WriteTable(stdout),
		writeReport(*jsonPath, rep.WriteJSON),
		writeReport(*htmlPath, rep.WriteHTML))
	return err
}

// writeReport writes one report file through a temporary name; no path
// writes nothing.
func writeReport(path string, write func(io.Writer) error) error {
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := errors.Join(write(f), f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// parseSize reads "WIDTHxHEIGHT".
func parseSize(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "x")
	w, err1 := strconv.Atoi(a)
	h, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || w < 16 || h < 16 || w > 7680 || h > 7680 || w%2 != 0 || h%2 != 0 {
		return 0, 0, fmt.Errorf("'size' must be an even WIDTHxHEIGHT from 16x16 to 7680x7680 like 1920x1080, not %q", s)
	}
	return w, h, nil
}

const benchFanoutSynopsis = `bench fanout --edge URL --stream S --viewers N [--protocol flv|hls] [--duration 30s] [--ramp 10s] [--pid PID [--baseline 3s]] [--rendition round-robin|lowest|NAME] [--json FILE] [--html FILE]

Plays one live stream with N concurrent viewers against an edge or an
origin (the URLs are the same: {URL}/live/{S}.flv, {URL}/live/{S}/index.m3u8),
starting them evenly over --ramp, then measures for --duration: viewers
held, aggregate and per-viewer bandwidth, time to first keyframe, stalls,
and with --pid the server's CPU and RSS from /proc. bench/README.md
explains the numbers and the JSON schema.`

func runBenchFanout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench fanout", benchFanoutSynopsis, stderr)
	edge := fs.String("edge", "", "edge or origin base URL, like http://edge:8080")
	stream := fs.String("stream", "", "stream name")
	viewers := fs.Int("viewers", 100, "concurrent viewers")
	protocol := fs.String("protocol", "flv", "flv (HTTP-FLV) or hls")
	dur := fs.Duration("duration", 30*time.Second, "measured window after the ramp")
	ramp := fs.Duration("ramp", 10*time.Second, "time over which viewers start, evenly spread")
	pid := fs.Int("pid", 0, "process id of the server to sample CPU and RSS from /proc (same machine)")
	baselineDur := fs.Duration("baseline", 3*time.Second, "with --pid: how long to measure the server's CPU before the first viewer")
	rendition := fs.String("rendition", fanoutbench.PickRoundRobin, "HLS variant: round-robin, lowest, or a rendition name")
	audio := fs.Bool("audio", true, "HLS viewers also fetch the variant's audio rendition, as players do")
	stallGap := fs.Duration("stall-gap", 2*time.Second, "FLV: a gap between tags longer than this is a stall")
	jsonPath := fs.String("json", "", "write the JSON report to this file")
	htmlPath := fs.String("html", "", "write the HTML report to this file")
	progress := fs.String("progress", "auto", "progress display on stderr: auto, bar, log or none")
	log, err := parseWithLog(fs, logFlags(fs), args, stderr)
	if err != nil {
		return err
	}
	if *edge == "" {
		return errors.New("'edge' is required: the edge or origin base URL, like http://edge:8080")
	}
	if *stallGap <= 0 {
		return fmt.Errorf("'stall-gap' must be positive, not %s", *stallGap)
	}
	bar, err := bench.NewProgress(*progress, stderr, log)
	if err != nil {
		return err
	}
	rep, runErr := fanoutbench.Run(ctx, fanoutbench.Config{
		URL: *edge, Stream: *stream, Viewers: *viewers, Protocol: *protocol, Duration: *dur, Ramp: *ramp,
		PID: *pid, Baseline: *baselineDur, Rendition: *rendition, Audio: *audio, StallGap: *stallGap, Log: log, Progress: bar.Update,
	})
	bar.Done()
	if rep == nil {
		return runErr
	}
	return errors.Join(runErr,
		rep.WriteTable(stdout),
		writeReport(*jsonPath, rep.WriteJSON),
		writeReport(*htmlPath, rep.WriteHTML))
}

const benchLatencySynopsis = `bench latency --rtmp URL --http URL [--edge URL] [--duration 30s] [--json FILE] [--html FILE]

Generates a test stream with ffmpeg (testsrc and a tone, libx264 with a
keyframe every --gop), publishes it to --rtmp itself, paced in real time,
noting the wall-clock instant each frame is sent, and measures publish to
playable latency: HTTP-FLV (receive time of each keyframe), HLS and DASH
(download-complete time of each new segment minus the send time of its
first frame) at the origin (--http) and, with --edge, at the edge.
bench/README.md explains the definitions and the JSON schema.`

func runBenchLatency(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench latency", benchLatencySynopsis, stderr)
	rtmpURL := fs.String("rtmp", "", "RTMP publish URL: rtmp://HOST:1935/live or rtmp://HOST:1935/live/STREAM")
	httpURL := fs.String("http", "", "origin base URL, like http://origin:8080")
	edge := fs.String("edge", "", "edge base URL; empty measures the origin only")
	stream := fs.String("stream", "", "stream name (default: from --rtmp, else latency-<time>)")
	dur := fs.Duration("duration", 30*time.Second, "media to publish and measure")
	size := fs.String("size", "640x360", "size of the generated stream")
	fps := fs.Int("fps", 30, "frame rate of the generated stream")
	gop := fs.Duration("gop", 2*time.Second, "keyframe interval of the generated stream")
	poll := fs.Duration("poll", 100*time.Millisecond, "how often HLS and DASH playlists are polled")
	rendition := fs.String("rendition", "", "HLS/DASH rendition to measure (default: the first video rendition)")
	jsonPath := fs.String("json", "", "write the JSON report to this file")
	htmlPath := fs.String("html", "", "write the HTML report to this file")
	workDir := fs.String("work-dir", "", "keep the generated stream here (default: a temporary folder, removed afterwards)")
	progress := fs.String("progress", "auto", "progress display on stderr: auto, bar, log or none")
	log, err := parseWithLog(fs, logFlags(fs), args, stderr)
	if err != nil {
		return err
	}
	w, h, err := parseSize(*size)
	if err != nil {
		return err
	}
	bar, err := bench.NewProgress(*progress, stderr, log)
	if err != nil {
		return err
	}
	rep, runErr := latencybench.Run(ctx, latencybench.Config{
		RTMP: *rtmpURL, HTTP: *httpURL, Edge: *edge, Stream: *stream, Duration: *dur,
		Width: w, Height: h, FPS: *fps, GOP: *gop, Poll: *poll, Rendition: *rendition,
		WorkDir: *workDir, Log: log, Progress: bar.Update,
	})
	bar.Done()
	if rep == nil {
		return runErr
	}
	return errors.Join(runErr,
		rep.WriteTable(stdout),
		writeReport(*jsonPath, rep.WriteJSON),
		writeReport(*htmlPath, rep.WriteHTML))
}
