package latencybench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/livegrid/livegrid/internal/flv"
)

// generate writes an FLV of media seconds to dir with ffmpeg: testsrc at
// width×height and fps, a 1 kHz tone, libx264 with a keyframe exactly every
// gop (no scene cuts), AAC. It returns the FLV's tags.
func generate(ctx context.Context, dir string, width, height, fps int, gop, media time.Duration) ([]flv.Tag, error) {
	out := filepath.Join(dir, fmt.Sprintf("source-%dx%d-%d-%s.flv", width, height, fps, media))
	g := strconv.Itoa(max(int(gop.Seconds()*float64(fps)+0.5), 1))
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=%dx%d:rate=%d", width, height, fps),
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
		"-t", strconv.FormatFloat(media.Seconds(), 'f', 3, 64),
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-g", g, "-keyint_min", g, "-sc_threshold", "0", "-b:v", "1M",
		"-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2",
		"-f", "flv", out}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("latency: generating the stream with ffmpeg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, fmt.Errorf("latency: %w", err)
	}
	defer f.Close()
	return readTags(f)
}

// readTags reads every tag of an FLV.
func readTags(r io.Reader) ([]flv.Tag, error) {
	fr := flv.NewReader(bufio.NewReader(r))
	var tags []flv.Tag
	for {
		t, err := fr.ReadTag()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("latency: reading the generated FLV: %w", err)
		}
		tags = append(tags, t)
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("latency: the generated FLV has no tags")
	}
	return tags, nil
}
