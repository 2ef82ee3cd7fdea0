package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/livegrid/livegrid/internal/vod"
	"github.com/livegrid/livegrid/profiles"
	"github.com/livegrid/livegrid/worker/transcode"
)

const transcodeSynopsis = `transcode --profile FILE|NAME --in FILE|URL --out DIR [--encoder auto|nvenc|qsv|vaapi|software] [--segment-duration 2s]

Transcodes the input through an ABR ladder into DIR: index.m3u8 (HLS master),
index.mpd (DASH) and one folder per rendition with its media playlist, init
segment and CMAF segments. Built-in profiles: ` + "default, mobile, hevc" + `.`

func runTranscode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("transcode", transcodeSynopsis, stderr)
	profile := fs.String("profile", "default", "ladder profile: a YAML file or a built-in name")
	in := fs.String("in", "", "input file or URL (required)")
	out := fs.String("out", "", "output folder (required)")
	enc := fs.String("encoder", "auto", "encoder kind for every rung: auto, nvenc, qsv, vaapi or software")
	segDur := fs.Duration("segment-duration", 2*time.Second, "target segment duration (1s..10s)")
	threads := fs.Int("threads", 0, "threads per rung encoder; 0 sizes them by each rung's share of the pixels")
	progress := fs.String("progress", "auto", "progress display: auto (on a terminal), bar, log or none")
	log, err := parseWithLog(fs, logFlags(fs), args, stderr)
	if err != nil {
		return err
	}
	switch {
	case *in == "":
		return fmt.Errorf("'in' is required")
	case *out == "":
		return fmt.Errorf("'out' is required")
	case *segDur < time.Second || *segDur > 10*time.Second:
		return fmt.Errorf("'segment-duration' must be between 1s and 10s, not %s", *segDur)
	}
	kind := profiles.EncoderKind(*enc)
	switch kind {
	case "auto", profiles.EncoderNVENC, profiles.EncoderQSV, profiles.EncoderVAAPI, profiles.EncoderSoftware:
	default:
		return fmt.Errorf("'encoder' must be auto, nvenc, qsv, vaapi or software, not %q", *enc)
	}
	ladder, err := profiles.Open(*profile)
	if err != nil {
		return err
	}
	w, err := vod.NewWriter(*out, *segDur)
	if err != nil {
		return err
	}
	if *threads < 0 || *threads > 64 {
		return fmt.Errorf("'threads' must be between 0 and 64, not %d", *threads)
	}
	tuneScheduler()
	eng := transcode.New(transcode.Options{Log: log, Encoder: kind, Threads: *threads})
	bar := newProgress(*progress, stderr, log)
	start := time.Now()
	sum, err := eng.TranscodeFile(ctx, transcode.Source{URL: *in}, ladder, transcode.FileOptions{
		SegmentDuration: *segDur, Progress: bar.update,
	}, w)
	bar.done()
	if err != nil {
		return err
	}
	if err := w.Finish(); err != nil {
		return err
	}
	wall := time.Since(start)
	abs, _ := filepath.Abs(*out)
	fmt.Fprintf(stdout, "transcoded %s of %s in %s (%.2fx real time), %d segments per rendition\n",
		sum.Duration.Round(time.Millisecond), *in, wall.Round(time.Millisecond), sum.Duration.Seconds()/wall.Seconds(), sum.Segments)
	for _, r := range sum.Renditions {
		if r.Kind == "audio" {
			fmt.Fprintf(stdout, "  %-8s audio %d Hz %dch  %-12s %s\n", r.Name, r.SampleRate, r.Channels, r.Codec, r.Encoder)
			continue
		}
		fmt.Fprintf(stdout, "  %-8s %4dx%-4d %5.2f fps %-12s %s\n", r.Name, r.Width, r.Height, r.FrameRate, r.Codec, r.Encoder)
	}
	fmt.Fprintf(stdout, "HLS:  %s\nDASH: %s\n", filepath.Join(abs, "index.m3u8"), filepath.Join(abs, "index.mpd"))
	if sum.Fallbacks > 0 {
		fmt.Fprintf(stdout, "encoder fallbacks: %d (see log)\n", sum.Fallbacks)
	}
	return nil
}

// progress shows transcode progress: a bar on a terminal, log lines otherwise.
type progress struct {
	mode string
	w    io.Writer
	log  interface{ Info(string, ...any) }
	last time.Time
	drew bool
}

func newProgress(mode string, w io.Writer, log interface{ Info(string, ...any) }) *progress {
	if mode == "auto" {
		mode = "log"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				mode = "bar"
			}
		}
	}
	return &progress{mode: mode, w: w, log: log}
}

func (p *progress) update(done, total time.Duration) {
	switch p.mode {
	case "bar":
		frac := 0.0
		if total > 0 {
			frac = min(done.Seconds()/total.Seconds(), 1)
		}
		n := int(frac * 30)
		fmt.Fprintf(p.w, "\r[%s%s] %5.1f%%  %s / %s", strings.Repeat("#", n), strings.Repeat(".", 30-n), frac*100,
			done.Round(time.Second), total.Round(time.Second))
		p.drew = true
	case "log":
		if time.Since(p.last) >= 2*time.Second {
			p.log.Info("transcoding", "done", done.Round(time.Millisecond).String(), "total", total.Round(time.Millisecond).String())
			p.last = time.Now()
		}
	}
}

func (p *progress) done() {
	if p.drew {
		fmt.Fprintln(p.w)
	}
}
