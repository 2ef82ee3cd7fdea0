package transcodebench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/livegrid/livegrid/bench"
	"github.com/livegrid/livegrid/bench/ffmpegref"
)

// pts90k is the MPEG-TS clock, the unit of source segment times.
const pts90k = 90000

// source is the prepared input: one local MPEG-TS file cut to the run's
// duration, and the same media cut into GOP-aligned source segments, read
// into memory once and shared (read-only) by every session.
type source struct {
	path     string
	info     bench.SourceInfo
	segments []sourceSegment
}

// sourceSegment is one GOP-aligned MPEG-TS segment, as the coordinator's
// segmenter would hand it to a worker.
type sourceSegment struct {
	data   []byte
	start  int64         // pts (90 kHz) of its first keyframe
	end    int64         // the next segment's start; -1 for the last
	media  time.Duration // how much media it holds
	offset time.Duration // its release after a session's start: start − the first segment's start
}

// prepare makes the source in dir: the input copied (or, with no input, a
// generated clip) to MPEG-TS, re-encoded first when its GOP does not allow
// cuts near the segment duration, then cut into segments.
func prepare(ctx context.Context, cfg *Config, dir string) (*source, error) {
	src := &source{path: filepath.Join(dir, "source.ts")}
	segDur := cfg.SegmentDuration
	if cfg.Input == "" {
		if err := ffmpeg(ctx, generateArgs(cfg, src.path)...); err != nil {
			return nil, fmt.Errorf("generate source clip: %w", err)
		}
	} else {
		// Stream copy keeps the input's encoding; if its codecs do not fit
		// MPEG-TS, or its GOP does not fit the segment duration, re-encode.
		copied := ffmpeg(ctx, inputArgs(cfg, src.path, false)...)
		fits := false
		if copied == nil {
			kf, end, err := keyframes(ctx, src.path)
			if err != nil {
				return nil, err
			}
			fits = gopFits(kf, end, segDur.Seconds())
		}
		if !fits {
			cfg.Log.Info("re-encoding the input to a GOP of one segment", "input", cfg.Input, "segment_duration", segDur.String(), "copy_error", copied)
			if err := ffmpeg(ctx, inputArgs(cfg, src.path, true)...); err != nil {
				return nil, fmt.Errorf("re-encode %s: %w", cfg.Input, err)
			}
			src.info.Reencoded = true
		}
	}
	probe, err := ffmpegref.Probe(ctx, src.path)
	if err != nil {
		return nil, err
	}
	src.info.Width, src.info.Height, src.info.FPS = probe.Width, probe.Height, probe.FPS
	src.info.HasAudio, src.info.AudioCodec = probe.HasAudio, probe.AudioCodec

	segDir := filepath.Join(dir, "segments")
	if err := os.MkdirAll(segDir, 0o755); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if err := ffmpeg(ctx, "-i", src.path, "-map", "0", "-c", "copy", "-f", "segment",
		"-segment_time", strconv.FormatFloat(segDur.Seconds(), 'f', -1, 64), "-segment_format", "mpegts",
		"-reset_timestamps", "0", filepath.Join(segDir, "seg%05d.ts")); err != nil {
		return nil, fmt.Errorf("cut source segments: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(segDir, "seg*.ts"))
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	slices.Sort(names)
	frameDur := int64(math.Round(pts90k / cmp.Or(probe.FPS, 30)))
	lastEnd := int64(-1)
	for _, name := range names {
		start, end, err := segmentTimes(ctx, name, frameDur)
		if err != nil {
			return nil, err
		}
		if start < 0 {
			continue // no keyframe: undecodable on its own (a live input joined mid-GOP)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		src.segments = append(src.segments, sourceSegment{data: data, start: start, end: -1})
		lastEnd = end
	}
	if len(src.segments) == 0 {
		return nil, fmt.Errorf("prepare: no source segment with a video keyframe in %s", cmp.Or(cfg.Input, "the generated clip"))
	}
	first := src.segments[0].start
	for i := range src.segments {
		s := &src.segments[i]
		end := lastEnd
		if i+1 < len(src.segments) {
			s.end = src.segments[i+1].start
			end = s.end
		}
		s.media = ticks(end - s.start)
		s.offset = ticks(s.start - first)
	}
	// A stub left after the last full segment (a stream-copy cut ends a few
	// frames past a keyframe) would weigh its fixed costs against almost no
	// media and skew the percentiles; live segments are all full length.
	if n := len(src.segments); n > 1 && src.segments[n-1].media < segDur/2 {
		src.segments = src.segments[:n-1]
	}
	for _, s := range src.segments {
		src.info.MediaS += s.media.Seconds()
	}
	src.info.Segments = len(src.segments)
	return src, nil
}

func ticks(t int64) time.Duration { return time.Duration(t) * time.Second / pts90k }

// generateArgs makes a testsrc2 clip with a 440 Hz tone, libx264 ultrafast
// with a keyframe every segment duration.
func generateArgs(cfg *Config, out string) []string {
	gop := strconv.Itoa(max(int(math.Round(float64(cfg.GenerateFPS)*cfg.SegmentDuration.Seconds())), 1))
	return []string{
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", cfg.GenerateWidth, cfg.GenerateHeight, cfg.GenerateFPS),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000,aformat=channel_layouts=stereo",
		"-t", strconv.FormatFloat(cfg.Duration.Seconds(), 'f', -1, 64),
		"-map", "0:v", "-map", "1:a",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "128k", "-f", "mpegts", out,
	}
}

// inputArgs copies the input's first video and audio stream to MPEG-TS, or
// re-encodes them with keyframes forced at every segment duration.
func inputArgs(cfg *Config, out string, reencode bool) []string {
	args := []string{"-i", cfg.Input}
	if cfg.Duration > 0 {
		args = append(args, "-t", strconv.FormatFloat(cfg.Duration.Seconds(), 'f', -1, 64))
	}
	args = append(args, "-map", "0:v:0", "-map", "0:a:0?")
	if !reencode {
		return append(args, "-c", "copy", "-f", "mpegts", out)
	}
	return append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
		"-force_key_frames", "expr:gte(t,n_forced*"+strconv.FormatFloat(cfg.SegmentDuration.Seconds(), 'f', -1, 64)+")",
		"-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", out)
}

// ffmpeg runs the ffmpeg command line quietly.
func ffmpeg(ctx context.Context, args ...string) error {
	args = append([]string{"-hide_banner", "-loglevel", "error", "-nostats", "-nostdin", "-y"}, args...)
	out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// packets lists a file's video packets with ffprobe.
func packets(ctx context.Context, path, entries string) ([]probePacket, error) {
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet="+entries, "-of", "json", path).Output()
	if err != nil {
		return nil, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	var doc struct {
		Packets []probePacket `json:"packets"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	return doc.Packets, nil
}

type probePacket struct {
	PTS      *int64 `json:"pts"`
	Duration int64  `json:"duration"`
	PTSTime  string `json:"pts_time"`
	Flags    string `json:"flags"`
}

func (p probePacket) key() bool { return strings.Contains(p.Flags, "K") }

// keyframes returns the times (seconds) of a file's video keyframes and of
// its last video packet.
func keyframes(ctx context.Context, path string) (kf []float64, end float64, err error) {
	pkts, err := packets(ctx, path, "pts_time,flags")
	if err != nil {
		return nil, 0, err
	}
	for _, p := range pkts {
		t, err := strconv.ParseFloat(p.PTSTime, 64)
		if err != nil {
			continue // no pts
		}
		end = max(end, t)
		if p.key() {
			kf = append(kf, t)
		}
	}
	slices.Sort(kf)
	return kf, end, nil
}

// segmentTimes returns the pts of a segment's first keyframe (-1 when it
// has none) and where its last frame ends.
func segmentTimes(ctx context.Context, path string, frameDur int64) (start, end int64, err error) {
	pkts, err := packets(ctx, path, "pts,duration,flags")
	if err != nil {
		return 0, 0, err
	}
	start = -1
	for _, p := range pkts {
		if p.PTS == nil {
			continue
		}
		if start < 0 && p.key() {
			start = *p.PTS
		}
		d := p.Duration
		if d <= 0 {
			d = frameDur
		}
		end = max(end, *p.PTS+d)
	}
	return start, end, nil
}

// gopFits reports whether ffmpeg's segment muxer, which cuts at the first
// keyframe at or after each multiple of segDur, would make segments within
// a quarter of segDur from keyframes at kf (seconds, sorted) in media that
// ends at end. The last segment may be shorter.
func gopFits(kf []float64, end, segDur float64) bool {
	if len(kf) == 0 || segDur <= 0 {
		return false
	}
	const tolerance = 0.25
	lo, hi := (1-tolerance)*segDur, (1+tolerance)*segDur
	t0, last, n := kf[0], kf[0], 1
	for _, k := range kf[1:] {
		if k-t0 < float64(n)*segDur-1e-6 {
			continue
		}
		if d := k - last; d < lo || d > hi {
			return false
		}
		last = k
		n++
	}
	return end-last <= hi
}
