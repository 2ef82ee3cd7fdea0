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
	"github.com/livegrid/livegrid/bench/transcodebench"
	"github.com/livegrid/livegrid/profiles"
)

const benchSynopsis = `bench <suite> [flags]

Capacity-planning suites. Suites:
  transcode  live-paced concurrent transcode sessions: density, knee, ffmpeg comparison

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
	case "fanout", "latency":
		return fmt.Errorf("the %s suite is not built yet", args[0])
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
