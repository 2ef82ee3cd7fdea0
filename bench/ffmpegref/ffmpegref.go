// Package ffmpegref runs the reference that livegrid's speed is measured
// against: the ffmpeg command line transcoding the same input into the same
// ladder in one process (decode once, split, scale each rung from the
// source, same encoder, preset, bitrates and GOP), writing HLS fMP4.
package ffmpegref

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/livegrid/livegrid/profiles"
)

// Source is what ffprobe says of the input's first video stream.
type Source struct {
	Width, Height  int
	SARNum, SARDen int
	FPS            float64
	HasAudio       bool
	AudioCodec     string
}

// Probe reads the input's video size, aspect and frame rate with ffprobe.
func Probe(ctx context.Context, in string) (Source, error) {
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries",
		"stream=codec_type,codec_name,width,height,sample_aspect_ratio,avg_frame_rate", "-of", "json", in).Output()
	if err != nil {
		return Source{}, fmt.Errorf("ffprobe %s: %w", in, err)
	}
	var doc struct {
		Streams []struct {
			Type   string `json:"codec_type"`
			Codec  string `json:"codec_name"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
			SAR    string `json:"sample_aspect_ratio"`
			FPS    string `json:"avg_frame_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return Source{}, fmt.Errorf("ffprobe %s: %w", in, err)
	}
	var s Source
	for _, st := range doc.Streams {
		switch {
		case st.Type == "video" && s.Width == 0:
			s.Width, s.Height = st.Width, st.Height
			s.SARNum, s.SARDen = ratio(st.SAR)
			n, d := ratio(st.FPS)
			if d > 0 {
				s.FPS = float64(n) / float64(d)
			}
		case st.Type == "audio" && !s.HasAudio:
			s.HasAudio, s.AudioCodec = true, st.Codec
		}
	}
	if s.Width == 0 {
		return s, fmt.Errorf("ffprobe %s: no video stream", in)
	}
	return s, nil
}

func ratio(s string) (int, int) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		a, b, _ = strings.Cut(s, "/")
	}
	n, _ := strconv.Atoi(a)
	d, _ := strconv.Atoi(b)
	return n, d
}

// encoderName is the ffmpeg encoder for a rung's codec on the software path.
func encoderName(c profiles.Codec) string {
	switch c {
	case profiles.CodecHEVC:
		return "libx265"
	case profiles.CodecAV1:
		return "libsvtav1"
	}
	return "libx264"
}

// Args returns ffmpeg's arguments for the ladder. outs is ladder.Resolve's
// result for the source; every rung's HLS goes to outDir/<rung>/.
func Args(in string, src Source, ladder *profiles.Ladder, outs []profiles.Output, segDur time.Duration, outDir string) []string {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostats", "-y", "-i", in}
	var graph strings.Builder
	fmt.Fprintf(&graph, "[0:v]split=%d", len(outs))
	for i := range outs {
		fmt.Fprintf(&graph, "[s%d]", i)
	}
	for i, o := range outs {
		fmt.Fprintf(&graph, ";[s%d]scale=%d:%d:flags=bicubic,setsar=1", i, o.Width, o.Height)
		if o.FrameRate > 0 {
			fmt.Fprintf(&graph, ",fps=%g", o.FrameRate)
		}
		fmt.Fprintf(&graph, "[v%d]", i)
	}
	args = append(args, "-filter_complex", graph.String())
	fps := src.FPS
	if fps <= 0 {
		fps = 30
	}
	hls := func(dir string) []string {
		return []string{"-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", strconv.FormatFloat(segDur.Seconds(), 'f', -1, 64),
			"-hls_playlist_type", "vod", "-hls_segment_filename", filepath.Join(dir, "%08d.m4s"), filepath.Join(dir, "index.m3u8")}
	}
	for i, o := range outs {
		r := o.Rung
		rate := fps
		if o.FrameRate > 0 {
			rate = o.FrameRate
		}
		gop := strconv.Itoa(max(int(ladder.GOP.Seconds()*rate+0.5), 1))
		args = append(args, "-map", fmt.Sprintf("[v%d]", i), "-c:v", encoderName(r.Codec))
		if r.Preset != "" {
			args = append(args, "-preset", r.Preset)
		}
		if r.Profile != "" && r.Codec != profiles.CodecAV1 {
			args = append(args, "-profile:v", r.Profile)
		}
		if r.Level != "" && r.Codec == profiles.CodecH264 {
			args = append(args, "-level:v", r.Level)
		}
		args = append(args, "-b:v", strconv.FormatInt(r.Bitrate, 10), "-g", gop)
		if r.Codec != profiles.CodecAV1 {
			args = append(args, "-maxrate", strconv.FormatInt(r.MaxRate, 10), "-bufsize", strconv.FormatInt(r.BufSize, 10))
		}
		switch r.Codec {
		case profiles.CodecH264:
			args = append(args, "-keyint_min", gop, "-sc_threshold", "0")
		case profiles.CodecHEVC:
			args = append(args, "-x265-params", "log-level=error:scenecut=0:open-gop=0:keyint="+gop+":min-keyint="+gop)
		}
		args = append(args, "-an")
		args = append(args, hls(filepath.Join(outDir, r.Name))...)
	}
	if src.HasAudio {
		args = append(args, "-map", "0:a:0", "-vn")
		if src.AudioCodec == "aac" {
			// MPEG-TS carries AAC in ADTS frames; fMP4 wants them raw.
			args = append(args, "-c:a", "copy", "-bsf:a", "aac_adtstoasc")
		} else {
			args = append(args, "-c:a", "aac", "-b:a", strconv.FormatInt(ladder.Audio.Bitrate, 10),
				"-ar", strconv.Itoa(ladder.Audio.SampleRate), "-ac", strconv.Itoa(ladder.Audio.Channels))
		}
		args = append(args, hls(filepath.Join(outDir, "audio"))...)
	}
	return args
}

// Run transcodes in into the ladder with the ffmpeg command line and returns
// the wall time it took.
func Run(ctx context.Context, in string, ladder *profiles.Ladder, segDur time.Duration, outDir string) (time.Duration, error) {
	src, err := Probe(ctx, in)
	if err != nil {
		return 0, err
	}
	outs, err := ladder.Resolve(src.Width, src.Height, src.SARNum, src.SARDen, src.FPS)
	if err != nil {
		return 0, err
	}
	for _, o := range outs {
		if err := os.MkdirAll(filepath.Join(outDir, o.Rung.Name), 0o755); err != nil {
			return 0, err
		}
	}
	if src.HasAudio {
		if err := os.MkdirAll(filepath.Join(outDir, "audio"), 0o755); err != nil {
			return 0, err
		}
	}
	args := Args(in, src, ladder, outs, segDur, outDir)
	start := time.Now()
	out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ffmpeg %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return time.Since(start), nil
}
