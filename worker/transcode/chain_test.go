package transcode

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/livegrid/livegrid/profiles"
)

// fakeProbe makes the named encoders usable and everything else fail.
func fakeProbe(usable ...string) func(Candidate) error {
	return func(c Candidate) error {
		for _, u := range usable {
			if c.Encoder == u {
				return nil
			}
		}
		return errors.New("no device")
	}
}

func TestChainSelect(t *testing.T) {
	h264 := profiles.CodecH264
	tests := []struct {
		name   string
		usable []string
		prefs  []profiles.EncoderKind
		codec  profiles.Codec
		want   string
		err    string
	}{
		{name: "nvenc first", usable: []string{"h264_nvenc", "h264_qsv", "libx264"}, codec: h264, want: "h264_nvenc"},
		{name: "qsv when no nvenc", usable: []string{"h264_qsv", "libx264"}, codec: h264, want: "h264_qsv"},
		{name: "vaapi when no nvenc or qsv", usable: []string{"h264_vaapi", "libx264"}, codec: h264, want: "h264_vaapi"},
		{name: "software last", usable: []string{"libx264"}, codec: h264, want: "libx264"},
		{name: "preference order wins", usable: []string{"h264_nvenc", "libx264"}, codec: h264,
			prefs: []profiles.EncoderKind{profiles.EncoderSoftware, profiles.EncoderNVENC}, want: "libx264"},
		{name: "hevc chain", usable: []string{"libx265"}, codec: profiles.CodecHEVC, want: "libx265"},
		{name: "av1 software only", usable: []string{"libsvtav1"}, codec: profiles.CodecAV1, want: "libsvtav1"},
		{name: "nothing usable", codec: h264, err: "no usable encoder"},
		{name: "hardware only, none present", usable: []string{"libx264"}, codec: h264,
			prefs: []profiles.EncoderKind{profiles.EncoderNVENC}, err: "h264_nvenc: no device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Chain{Probe: fakeProbe(tt.usable...)}
			got, err := c.Select(tt.codec, tt.prefs)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrNoEncoder) {
					t.Fatalf("Select = %v, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got.Encoder != tt.want {
				t.Fatalf("Select = %v, %v; want %s", got.Encoder, err, tt.want)
			}
		})
	}
}

func TestChainFallbackAndCooldown(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	probes := 0
	var fallbacks []string
	c := &Chain{
		Probe: func(cand Candidate) error {
			probes++
			return fakeProbe("h264_nvenc", "h264_qsv", "libx264")(cand)
		},
		Now:      func() time.Time { return now },
		Cooldown: time.Minute,
		OnFallback: func(from Candidate, to *Candidate, reason string) {
			fallbacks = append(fallbacks, from.Encoder+"->"+to.Encoder)
		},
	}
	first, err := c.Select(profiles.CodecH264, nil)
	if err != nil || first.Encoder != "h264_nvenc" {
		t.Fatalf("first Select = %v, %v", first, err)
	}
	cached := probes
	if _, err := c.Select(profiles.CodecH264, nil); err != nil || probes != cached {
		t.Fatalf("second Select probed again (%d -> %d): %v", cached, probes, err)
	}

	c.Failed(first, nil, errors.New("CUDA_ERROR_LAUNCH_FAILED mid-stream"))
	if probes == cached {
		t.Fatal("a failure must make the chain probe again")
	}
	if len(fallbacks) != 1 || fallbacks[0] != "h264_nvenc->h264_qsv" {
		t.Fatalf("fallbacks = %v", fallbacks)
	}
	got, _ := c.Select(profiles.CodecH264, nil)
	if got.Encoder != "h264_qsv" {
		t.Fatalf("after failure Select = %s, want h264_qsv", got.Encoder)
	}
	c.Failed(got, nil, errors.New("qsv session lost"))
	if got, _ := c.Select(profiles.CodecH264, nil); got.Encoder != "libx264" {
		t.Fatalf("after two failures Select = %s, want libx264", got.Encoder)
	}

	now = now.Add(2 * time.Minute) // cooldown over: NVENC gets another chance
	if got, _ := c.Select(profiles.CodecH264, nil); got.Encoder != "h264_nvenc" {
		t.Fatalf("after cooldown Select = %s, want h264_nvenc", got.Encoder)
	}
}

func TestProbeAllReportsReasons(t *testing.T) {
	c := &Chain{Probe: fakeProbe("libx264")}
	rs := c.ProbeAll()
	if len(rs) != 9 {
		t.Fatalf("ProbeAll gave %d results, want 9 (4 h264, 4 hevc, 1 av1)", len(rs))
	}
	for _, r := range rs {
		if r.Usable != (r.Encoder == "libx264") {
			t.Errorf("%s usable = %v", r.Encoder, r.Usable)
		}
		if !r.Usable && r.Reason == "" {
			t.Errorf("%s: unusable without a reason", r.Encoder)
		}
	}
}

var errNoDevice = errors.New("no device")
