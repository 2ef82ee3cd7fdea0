package transcode

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/livegrid/livegrid/profiles"
)

// Candidate is one encoder of a chain: a libav encoder and the hardware it needs.
type Candidate struct {
	Kind    profiles.EncoderKind
	Codec   profiles.Codec
	Encoder string // libav encoder name, e.g. "h264_nvenc"
}

// key identifies a candidate in the chain's records.
func (c Candidate) key() string { return string(c.Kind) + "/" + c.Encoder }

// encoderNames maps each codec and kind to its libav encoder. AV1 has only a
// software encoder in FFmpeg 5.1.
var encoderNames = map[profiles.Codec]map[profiles.EncoderKind]string{
	profiles.CodecH264: {
		profiles.EncoderNVENC: "h264_nvenc", profiles.EncoderQSV: "h264_qsv",
		profiles.EncoderVAAPI: "h264_vaapi", profiles.EncoderSoftware: "libx264",
	},
	profiles.CodecHEVC: {
		profiles.EncoderNVENC: "hevc_nvenc", profiles.EncoderQSV: "hevc_qsv",
		profiles.EncoderVAAPI: "hevc_vaapi", profiles.EncoderSoftware: "libx265",
	},
	profiles.CodecAV1: {profiles.EncoderSoftware: "libsvtav1"},
}

// DefaultCandidates lists the chain for a codec in the default order
// NVENC, QSV, VAAPI, software.
func DefaultCandidates(codec profiles.Codec) []Candidate {
	var out []Candidate
	for _, k := range profiles.DefaultEncoderOrder {
		if name, ok := encoderNames[codec][k]; ok {
			out = append(out, Candidate{Kind: k, Codec: codec, Encoder: name})
		}
	}
	return out
}

// ProbeResult says whether one candidate can be used and, if not, why.
type ProbeResult struct {
	Candidate
	Usable bool
	Reason string
	At     time.Time
}

// Chain picks an encoder per codec: the first usable candidate in the rung's
// preference order. Candidates are probed on first use and probed again when
// an encoder fails to open or fails mid-stream; a failed encoder is skipped
// for Cooldown even if its probe passes, so a flaky device does not flap.
type Chain struct {
	// Probe tests a candidate; nil means the real libav probe.
	Probe func(Candidate) error
	// Candidates lists a codec's chain; nil means DefaultCandidates.
	Candidates func(profiles.Codec) []Candidate
	// OnFallback is told each time an encoder is abandoned for the next one.
	OnFallback func(from Candidate, to *Candidate, reason string)
	Cooldown   time.Duration
	Now        func() time.Time
	Log        *slog.Logger

	mu      sync.Mutex
	results map[string]ProbeResult // by Candidate.key
	failed  map[string]time.Time   // Candidate.key -> when it failed in use
}

func (c *Chain) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Chain) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

func (c *Chain) candidates(codec profiles.Codec) []Candidate {
	if c.Candidates != nil {
		return c.Candidates(codec)
	}
	return DefaultCandidates(codec)
}

func (c *Chain) probe(cand Candidate) ProbeResult {
	c.mu.Lock()
	r, ok := c.results[cand.key()]
	c.mu.Unlock()
	if ok {
		return r
	}
	probe := c.Probe
	if probe == nil {
		routeLogs(c.log())
		probe = probeEncoder
	}
	err := probe(cand)
	r = ProbeResult{Candidate: cand, Usable: err == nil, At: c.now()}
	if err != nil {
		r.Reason = err.Error()
	}
	c.mu.Lock()
	if c.results == nil {
		c.results = map[string]ProbeResult{}
	}
	c.results[cand.key()] = r
	c.mu.Unlock()
	return r
}

// ProbeAll probes every candidate of every codec (cached) and reports them in
// chain order.
func (c *Chain) ProbeAll() []ProbeResult {
	var out []ProbeResult
	for _, codec := range []profiles.Codec{profiles.CodecH264, profiles.CodecHEVC, profiles.CodecAV1} {
		for _, cand := range c.candidates(codec) {
			out = append(out, c.probe(cand))
		}
	}
	return out
}

// Select returns the first usable candidate for codec in the given preference
// order (nil or empty means the default order).
func (c *Chain) Select(codec profiles.Codec, prefs []profiles.EncoderKind) (Candidate, error) {
	if len(prefs) == 0 {
		prefs = profiles.DefaultEncoderOrder
	}
	var reasons []error
	for _, k := range prefs {
		for _, cand := range c.candidates(codec) {
			if cand.Kind != k {
				continue
			}
			if at, bad := c.failedAt(cand.key()); bad {
				reasons = append(reasons, fmt.Errorf("%s: failed in use at %s", cand.Encoder, at.Format(time.RFC3339)))
				continue
			}
			r := c.probe(cand)
			if r.Usable {
				return cand, nil
			}
			reasons = append(reasons, fmt.Errorf("%s: %s", cand.Encoder, r.Reason))
		}
	}
	return Candidate{}, fmt.Errorf("select %s encoder: %w: %w", codec, ErrNoEncoder, errors.Join(reasons...))
}

func (c *Chain) failedAt(name string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.failed[name]
	if !ok {
		return time.Time{}, false
	}
	cool := c.Cooldown
	if cool == 0 {
		cool = time.Minute
	}
	if c.now().Sub(at) >= cool {
		delete(c.failed, name)
		return time.Time{}, false
	}
	return at, true
}

// Failed records that cand failed in use, forgets every cached probe so the
// next Select probes the hardware again, and reports the fallback.
func (c *Chain) Failed(cand Candidate, prefs []profiles.EncoderKind, cause error) {
	c.mu.Lock()
	if c.failed == nil {
		c.failed = map[string]time.Time{}
	}
	c.failed[cand.key()] = c.now()
	c.results = nil
	c.mu.Unlock()

	var next *Candidate
	if n, err := c.Select(cand.Codec, prefs); err == nil {
		next = &n
	}
	to := "none"
	if next != nil {
		to = next.Encoder
	}
	c.log().Warn("encoder fallback", "from", cand.Encoder, "to", to, "reason", cause.Error())
	if c.OnFallback != nil {
		c.OnFallback(cand, next, cause.Error())
	}
}
