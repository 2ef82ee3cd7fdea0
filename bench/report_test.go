package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleReport is a report as a three-count sweep with an ffmpeg comparison
// would write it.
func sampleReport() *TranscodeReport {
	rungs := []RungEncoders{
		{Name: "720p", Kind: "video", Width: 1280, Height: 720, Encoders: []string{"libx264"}},
		{Name: "audio", Kind: "audio", Encoders: []string{"copy"}},
	}
	rs := []TranscodeRun{
		{Sessions: 1, Segments: 10, MediaS: 20, WallS: 21, BusyS: 8, RealtimeRatio: 2.5, RealtimeRatioMin: 2.5, AggregateRealtimeRatio: 0.95,
			TranscodeRatio: Distribution{Count: 10, Mean: 0.4, P50: 0.4, P95: 0.45, P99: 0.46, Max: 0.46},
			CPUCoresTotal:  0.8, CPUCoresPerSession: 0.8, RSSBaselineBytes: 50 << 20, RSSPeakBytes: 150 << 20, RSSBytesPerSession: 100 << 20,
			Encoders: rungs, SLOMet: true},
		{Sessions: 2, Segments: 20, MediaS: 40, WallS: 21.5, BusyS: 26, RealtimeRatio: 1.54, RealtimeRatioMin: 1.5, AggregateRealtimeRatio: 1.86,
			TranscodeRatio: Distribution{Count: 20, Mean: 0.6, P50: 0.6, P95: 0.7, P99: 0.75, Max: 0.75},
			CPUCoresTotal:  1.7, CPUCoresPerSession: 0.85, RSSBaselineBytes: 60 << 20, RSSPeakBytes: 260 << 20, RSSBytesPerSession: 100 << 20,
			Encoders: rungs, SLOMet: true},
		{Sessions: 3, Segments: 28, SkippedSegments: 2, MediaS: 56, WallS: 30, BusyS: 60, RealtimeRatio: 0.93, RealtimeRatioMin: 0.9, AggregateRealtimeRatio: 1.9,
			TranscodeRatio: Distribution{Count: 28, Mean: 1.05, P50: 1.0, P95: 1.3, P99: 1.4, Max: 1.4}, LateSegments: 12, LateShare: 14.0 / 30,
			CPUCoresTotal: 1.98, CPUCoresPerSession: 0.66, RSSBaselineBytes: 60 << 20, RSSPeakBytes: 360 << 20, RSSBytesPerSession: 100 << 20,
			Encoders: rungs},
	}
	ratio := 1.18
	return &TranscodeReport{
		Schema: TranscodeSchema, Suite: "transcode",
		StartedAt:  time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC),
		FinishedAt: time.Date(2025, 5, 1, 10, 2, 0, 0, time.UTC),
		Machine: Machine{Hostname: "node-1", OS: "linux", Arch: "amd64", Cores: 2, GOMAXPROCS: 2, CPUModel: "Test CPU <fast> & cheap",
			MemoryBytes: 8 << 30, GoVersion: "go1.26.8", FFmpegVersion: "ffmpeg version 5.1", Encoder: "libx264"},
		Config: TranscodeConfig{Generated: true, Profile: "default", Ladder: "default", Encoder: "auto",
			SegmentDurationS: 2, DurationS: 20, Sessions: "auto", MaxSessions: 64, SLO: DefaultSLO},
		Source: SourceInfo{Width: 1920, Height: 1080, FPS: 30, HasAudio: true, AudioCodec: "aac", Segments: 10, MediaS: 20},
		Rungs:  rungs,
		Runs:   rs,
		Knee:   FindKnee(rs, DefaultSLO),
		FFmpeg: &FFmpegComparison{Method: "transcode_file", MediaS: 20, LivegridWallS: 10, FFmpegWallS: 11.8,
			LivegridRealtimeRatio: 2, FFmpegRealtimeRatio: 20 / 11.8, RatioVsFFmpeg: ratio, FFmpegEncoder: "software"},
		RatioVsFFmpeg: &ratio,
	}
}

func TestJSONRoundTrip(t *testing.T) {
	want := sampleReport()
	var buf bytes.Buffer
	if err := want.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTranscodeReport(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip changed the report:\n got %+v\nwant %+v", got, want)
	}
}

// TestJSONSchemaKeys pins the documented key names (bench/README.md): a
// rename here is a schema change.
func TestJSONSchemaKeys(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(m any) []string {
		var ks []string
		for k := range m.(map[string]any) {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	for _, tc := range []struct {
		name string
		obj  any
		want []string
	}{
		{"top level", doc, []string{"config", "ffmpeg_comparison", "finished_at", "knee", "machine", "ratio_vs_ffmpeg", "rungs", "runs", "schema", "source", "started_at", "suite"}},
		{"machine", doc["machine"], []string{"arch", "cores", "cpu_model", "encoder", "ffmpeg_version", "go_version", "gomaxprocs", "hostname", "memory_bytes", "os"}},
		{"config", doc["config"], []string{"duration_s", "encoder", "generated", "input", "ladder", "max_sessions", "profile", "segment_duration_s", "sessions", "slo_p99_ratio", "threads"}},
		{"source", doc["source"], []string{"audio_codec", "fps", "has_audio", "height", "media_s", "reencoded", "segments", "width"}},
		{"run", doc["runs"].([]any)[0], []string{"aggregate_realtime_ratio", "busy_s", "cpu_cores_per_session", "cpu_cores_total", "encoders", "fallbacks",
			"late_segments", "late_share", "media_s", "realtime_ratio", "realtime_ratio_min", "rss_baseline_bytes", "rss_bytes_per_session", "rss_peak_bytes",
			"segments", "sessions", "skipped_segments", "slo_met", "transcode_ratio", "wall_s"}},
		{"transcode_ratio", doc["runs"].([]any)[0].(map[string]any)["transcode_ratio"], []string{"count", "max", "mean", "p50", "p95", "p99"}},
		{"knee", doc["knee"], []string{"broken_at", "sessions", "slo_p99_ratio", "status"}},
		{"rung", doc["rungs"].([]any)[0], []string{"encoders", "height", "kind", "name", "width"}},
		{"ffmpeg_comparison", doc["ffmpeg_comparison"], []string{"ffmpeg_encoder", "ffmpeg_realtime_ratio", "ffmpeg_wall_s", "livegrid_realtime_ratio",
			"livegrid_wall_s", "media_s", "method", "ratio_vs_ffmpeg"}},
	} {
		if got := keys(tc.obj); !slices.Equal(got, tc.want) {
			t.Errorf("%s keys\n got %v\nwant %v", tc.name, got, tc.want)
		}
	}
	if doc["schema"] != TranscodeSchema || doc["ratio_vs_ffmpeg"] != 1.18 {
		t.Errorf("schema %v ratio_vs_ffmpeg %v", doc["schema"], doc["ratio_vs_ffmpeg"])
	}
}

func TestJSONWithoutComparison(t *testing.T) {
	r := sampleReport()
	r.FFmpeg, r.RatioVsFFmpeg = nil, nil
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); strings.Contains(s, "ratio_vs_ffmpeg") || strings.Contains(s, "ffmpeg_comparison") {
		t.Errorf("report without --compare-ffmpeg mentions the comparison:\n%s", s)
	}
}

func TestReadRefusesOtherSchema(t *testing.T) {
	_, err := ReadTranscodeReport(strings.NewReader(`{"schema":"livegrid.bench.fanout/v1"}`))
	if !errors.Is(err, ErrSchema) {
		t.Errorf("err = %v, want ErrSchema", err)
	}
}

func TestHTML(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		"<!DOCTYPE html>",
		`<svg id="throughput"`,
		`<svg id="p99"`,
		`<g class="knee">`,
		"knee: 2</text>",
		`<g class="slo">`,
		"SLO p99 ≤ 0.80",
		"knee: 2 sessions per node",
		"ratio_vs_ffmpeg: <b>1.18</b>",
		"Test CPU &lt;fast&gt; &amp; cheap", // escaped
		`class="knee-row"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if n := strings.Count(page, `<g class="knee">`); n != 2 {
		t.Errorf("knee marked on %d charts, want 2", n)
	}
	for _, banned := range []string{"<script", "http://cdn", "https://", "<link"} {
		if strings.Contains(page, banned) {
			t.Errorf("HTML is not self-contained: has %q", banned)
		}
	}
}

func TestHTMLNoKnee(t *testing.T) {
	r := sampleReport()
	r.Runs = runs(1, 0.95)
	r.Knee = FindKnee(r.Runs, DefaultSLO)
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `<g class="knee">`) {
		t.Error("knee drawn though the SLO broke at one session")
	}
	if !strings.Contains(buf.String(), "broken already at 1 session") {
		t.Error("page does not say the SLO broke at one session")
	}
}

func TestTable(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"SESSIONS", "P99", "0.46", "broken", "knee: 2 sessions per node", "720p libx264", "ratio_vs_ffmpeg: 1.18", "100.0 MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ span, want float64 }{{10, 2}, {1.05, 0.2}, {64, 20}, {48, 10}, {0, 1}, {3, 0.5}} {
		if got := niceStep(tc.span, 6); got != tc.want {
			t.Errorf("niceStep(%g) = %g, want %g", tc.span, got, tc.want)
		}
	}
}

func TestCPUModelAndMemory(t *testing.T) {
	x86 := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n"
	if got := cpuModel([]byte(x86)); got != "Intel(R) Xeon(R) CPU @ 2.20GHz" {
		t.Errorf("x86 model %q", got)
	}
	arm := "processor\t: 0\nBogoMIPS\t: 108.00\nCPU part\t: 0xd08\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
	if got := cpuModel([]byte(arm)); got != "Raspberry Pi 4 Model B Rev 1.4" {
		t.Errorf("arm model %q", got)
	}
	if got := memTotal([]byte("MemTotal:        8000000 kB\nMemFree: 1 kB\n")); got != 8000000*1024 {
		t.Errorf("memTotal %d", got)
	}
}

func TestProcParsers(t *testing.T) {
	stat := "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 1000000 2000 18446744073709551615"
	cpu, err := parseStatCPU([]byte(stat))
	if err != nil || cpu != 3250*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 3.25s", cpu, err)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1")); err == nil {
		t.Error("short stat line accepted")
	}
	rss, err := parseStatmRSS([]byte("50000 1200 300 10 0 900 0\n"), 4096)
	if err != nil || rss != 1200*4096 {
		t.Errorf("parseStatmRSS = %d, %v", rss, err)
	}
	if s, err := ReadProc(); err != nil || s.RSSBytes <= 0 {
		t.Errorf("ReadProc = %+v, %v", s, err)
	}
}

func TestProgress(t *testing.T) {
	var out bytes.Buffer
	p, err := NewProgress("bar", &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Step(ProgressStep{Phase: "run", Sessions: 2, Done: 5, Total: 10, Late: 1})
	p.Done()
	if got := out.String(); !strings.Contains(got, "[###############...............]  50%  2 sessions  5/10 segments  late 1") || !strings.HasSuffix(got, "\n") {
		t.Errorf("bar output %q", got)
	}
	var logged bytes.Buffer
	p, _ = NewProgress("auto", &bytes.Buffer{}, slog.New(slog.NewTextHandler(&logged, nil)))
	p.Step(ProgressStep{Phase: "run", Sessions: 1, Done: 1, Total: 2})
	p.Step(ProgressStep{Phase: "run", Sessions: 1, Done: 2, Total: 2}) // a finished run always logs
	if n := strings.Count(logged.String(), "bench run"); n != 2 {
		t.Errorf("log mode wrote %d lines:\n%s", n, logged.String())
	}
	if _, err := NewProgress("fancy", &out, nil); err == nil {
		t.Error("bad mode accepted")
	}
}
