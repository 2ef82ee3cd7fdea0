package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// TranscodeSchema names the JSON layout of a TranscodeReport. It changes
// only when a field is removed or changes meaning; new fields keep it.
const TranscodeSchema = "livegrid.bench.transcode/v1"

// ErrSchema means a report file is not a transcode report this version reads.
var ErrSchema = errors.New("bench: unknown report schema")

// TranscodeReport is the result of one `livegrid bench transcode` run.
// bench/README.md documents every field.
type TranscodeReport struct {
	Schema     string          `json:"schema"`
	Suite      string          `json:"suite"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at"`
	Machine    Machine         `json:"machine"`
	Config     TranscodeConfig `json:"config"`
	Source     SourceInfo      `json:"source"`
	// Rungs lists every rendition in ladder order with the encoders that
	// produced it in any run (more than one after an encoder fallback).
	Rungs []RungEncoders `json:"rungs"`
	Runs  []TranscodeRun `json:"runs"`
	Knee  Knee           `json:"knee"`
	// RatioVsFFmpeg is livegrid's throughput ÷ ffmpeg's on the same file and
	// ladder; present only with --compare-ffmpeg.
	RatioVsFFmpeg *float64          `json:"ratio_vs_ffmpeg,omitempty"`
	FFmpeg        *FFmpegComparison `json:"ffmpeg_comparison,omitempty"`
	// Interrupted is set when the run was stopped before it finished; Runs
	// holds what completed.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Machine describes where a report was measured.
type Machine struct {
	Hostname      string `json:"hostname"`
	OS            string `json:"os"`
	Arch          string `json:"arch"`
	Cores         int    `json:"cores"`      // logical CPUs this process may use
	GOMAXPROCS    int    `json:"gomaxprocs"` // Go's scheduler threads during the run
	CPUModel      string `json:"cpu_model"`
	MemoryBytes   int64  `json:"memory_bytes"`
	GoVersion     string `json:"go_version"`
	FFmpegVersion string `json:"ffmpeg_version,omitempty"`
	// Encoder lists the video encoders the engine used, comma-separated
	// ("libx264", "h264_nvenc"): what this machine's capacity was measured on.
	Encoder string `json:"encoder"`
}

// TranscodeConfig is what the run was asked to do.
type TranscodeConfig struct {
	Input            string  `json:"input"` // file or URL; "" when generated
	Generated        bool    `json:"generated"`
	Profile          string  `json:"profile"` // as given: a file or builtin name
	Ladder           string  `json:"ladder"`  // the ladder's name
	Encoder          string  `json:"encoder"` // requested: auto, nvenc, qsv, vaapi, software
	Threads          int     `json:"threads"` // per rung encoder; 0 = sized by the engine
	SegmentDurationS float64 `json:"segment_duration_s"`
	DurationS        float64 `json:"duration_s"` // media per session; 0 = the whole input
	Sessions         string  `json:"sessions"`   // "auto" or the list, like "1,2,4"
	MaxSessions      int     `json:"max_sessions,omitempty"`
	SLO              float64 `json:"slo_p99_ratio"`
}

// SourceInfo describes the source segments every session streams.
type SourceInfo struct {
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	FPS        float64 `json:"fps"`
	HasAudio   bool    `json:"has_audio"`
	AudioCodec string  `json:"audio_codec,omitempty"`
	Segments   int     `json:"segments"` // per session
	MediaS     float64 `json:"media_s"`  // per session
	// Reencoded is set when the input's GOP did not allow cuts near the
	// segment duration (or its codecs do not fit MPEG-TS) and it was
	// re-encoded with libx264 ultrafast first.
	Reencoded bool `json:"reencoded"`
}

// RungEncoders names the encoders one rendition was produced with.
type RungEncoders struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"` // video or audio
	Width    int      `json:"width,omitempty"`
	Height   int      `json:"height,omitempty"`
	Encoders []string `json:"encoders"`
}

// TranscodeRun is the measurement of one session count.
type TranscodeRun struct {
	Sessions        int     `json:"sessions"`
	Segments        int     `json:"segments"`         // transcoded, all sessions together
	SkippedSegments int     `json:"skipped_segments"` // not started: the session fell too far behind
	MediaS          float64 `json:"media_s"`          // media transcoded, all sessions together
	WallS           float64 `json:"wall_s"`           // first session start to last session end
	BusyS           float64 `json:"busy_s"`           // sum of segment transcode times
	// RealtimeRatio is media_s ÷ busy_s: how much faster than real time one
	// session transcodes while it works (above 1 keeps up).
	RealtimeRatio float64 `json:"realtime_ratio"`
	// RealtimeRatioMin is the slowest session's media ÷ busy.
	RealtimeRatioMin float64 `json:"realtime_ratio_min"`
	// AggregateRealtimeRatio sums each session's media ÷ its own wall time
	// (its start to its last segment done or its media's end in real time,
	// whichever is later): the real-time streams the machine delivered, at
	// most Sessions, which it equals while every session keeps up.
	AggregateRealtimeRatio float64 `json:"aggregate_realtime_ratio"`
	// TranscodeRatio is the distribution of segment transcode time ÷ that
	// segment's media duration, pooled over every session's segments.
	TranscodeRatio     Distribution   `json:"transcode_ratio"`
	LateSegments       int            `json:"late_segments"` // transcode time > segment duration
	LateShare          float64        `json:"late_share"`    // (late + skipped) ÷ (segments + skipped)
	CPUCoresTotal      float64        `json:"cpu_cores_total"`
	CPUCoresPerSession float64        `json:"cpu_cores_per_session"`
	RSSBaselineBytes   int64          `json:"rss_baseline_bytes"` // before the sessions started
	RSSPeakBytes       int64          `json:"rss_peak_bytes"`     // highest sample during the run
	RSSBytesPerSession int64          `json:"rss_bytes_per_session"`
	Encoders           []RungEncoders `json:"encoders"`
	Fallbacks          int            `json:"fallbacks"` // encoder fallbacks during the run
	SLOMet             bool           `json:"slo_met"`
}

// FFmpegComparison is the engine against the ffmpeg command line on the same
// whole file and ladder, neither paced: each as fast as it can.
type FFmpegComparison struct {
	// Method says how livegrid ran: "transcode_file" is (*Engine).TranscodeFile
	// with a vod.Writer, one warm pipeline over the whole file.
	Method                string  `json:"method"`
	MediaS                float64 `json:"media_s"`
	LivegridWallS         float64 `json:"livegrid_wall_s"`
	FFmpegWallS           float64 `json:"ffmpeg_wall_s"`
	LivegridRealtimeRatio float64 `json:"livegrid_realtime_ratio"`
	FFmpegRealtimeRatio   float64 `json:"ffmpeg_realtime_ratio"`
	RatioVsFFmpeg         float64 `json:"ratio_vs_ffmpeg"`
	// FFmpegEncoder is what the reference used: bench/ffmpegref always runs
	// the software encoders (libx264, libx265, libsvtav1).
	FFmpegEncoder string `json:"ffmpeg_encoder"`
}

// WriteJSON writes the report as indented JSON.
func (r *TranscodeReport) WriteJSON(w io.Writer) error { return WriteReportJSON(w, "bench", r) }

// ReadTranscodeReport reads a report written by WriteJSON. Unknown fields
// are kept out of the way (a newer v1 writer may add some); another schema
// is refused with ErrSchema.
func ReadTranscodeReport(rd io.Reader) (*TranscodeReport, error) {
	var r TranscodeReport
	if err := ReadReportJSON(rd, "bench", &r, func() string { return r.Schema }, TranscodeSchema); err != nil {
		return nil, err
	}
	return &r, nil
}

// WriteReportJSON writes any suite's report as indented JSON; op names the
// suite in errors.
func WriteReportJSON(w io.Writer, op string, report any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(report); err != nil {
		return fmt.Errorf("%s: writing JSON report: %w", op, err)
	}
	return nil
}

// ReadReportJSON decodes a suite's report into report and refuses, with
// ErrSchema, one whose schema (read by schema after decoding) is not want.
func ReadReportJSON(rd io.Reader, op string, report any, schema func() string, want string) error {
	if err := json.NewDecoder(rd).Decode(report); err != nil {
		return fmt.Errorf("%s: reading JSON report: %w", op, err)
	}
	if got := schema(); got != want {
		return fmt.Errorf("%w %q (want %q)", ErrSchema, got, want)
	}
	return nil
}

// ReadMachine describes this machine. Fields it cannot read stay empty.
func ReadMachine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = cpuModel(b)
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryBytes = memTotal(b)
	}
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-version").Output(); err == nil {
		m.FFmpegVersion, _, _ = strings.Cut(string(out), "\n")
	}
	return m
}

// cpuModel reads the processor name from /proc/cpuinfo: "model name" on
// x86, "Model" or "Hardware" on ARM boards.
func cpuModel(cpuinfo []byte) string {
	found := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		k = strings.TrimSpace(k)
		if _, dup := found[k]; ok && !dup {
			found[k] = strings.TrimSpace(v)
		}
	}
	for _, k := range []string{"model name", "Model", "Hardware", "cpu model", "cpu"} {
		if v := found[k]; v != "" {
			return v
		}
	}
	return ""
}

// memTotal reads MemTotal from /proc/meminfo, in bytes.
func memTotal(meminfo []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
