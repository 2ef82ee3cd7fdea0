package profiles

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of a ladder.
const (
	MinGOP   = 500 * time.Millisecond
	MaxGOP   = 10 * time.Second
	MaxRungs = 10
)

var (
	ladderNameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)
	rungNameRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`) // a folder and URL segment

	aacSampleRates = []int{8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000}

	// x264 and x265 share these names.
	x26xPresets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"}

	profilesByCodec = map[Codec][]string{
		CodecH264: {"baseline", "main", "high"},
		CodecHEVC: {"main", "main10"},
		CodecAV1:  {"main"},
	}

	// Levels in canonical "X.Y" form; see canonicalLevel.
	levelsByCodec = map[Codec][]string{
		CodecH264: {"1.0", "1b", "1.1", "1.2", "1.3", "2.0", "2.1", "2.2", "3.0", "3.1", "3.2", "4.0", "4.1", "4.2", "5.0", "5.1", "5.2", "6.0", "6.1", "6.2"},
		CodecHEVC: {"1.0", "2.0", "2.1", "3.0", "3.1", "4.0", "4.1", "5.0", "5.1", "5.2", "6.0", "6.1", "6.2"},
		CodecAV1: {"2.0", "2.1", "2.2", "2.3", "3.0", "3.1", "3.2", "3.3", "4.0", "4.1", "4.2", "4.3",
			"5.0", "5.1", "5.2", "5.3", "6.0", "6.1", "6.2", "6.3", "7.0", "7.1", "7.2", "7.3"},
	}
)

// Validate checks a complete ladder (as Parse leaves it, defaults filled in)
// and returns the first problem as a *FieldError naming its key.
func (l *Ladder) Validate() error {
	fail := func(key, format string, args ...any) error {
		return &FieldError{Source: l.Source, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case l.Name == "":
		return fail("name", "is required")
	case !ladderNameRE.MatchString(l.Name):
		return fail("name", "must match [a-z0-9_-]+, got %q", l.Name)
	case l.GOP < MinGOP || l.GOP > MaxGOP:
		return fail("gop", "must be between %v and %v, got %v", MinGOP, MaxGOP, l.GOP)
	case l.Cascade != CascadeAuto && l.Cascade != CascadeSource:
		return fail("cascade", "must be %s or %s, got %q", CascadeAuto, CascadeSource, l.Cascade)
	case l.Audio.Codec != "aac":
		return fail("audio.codec", "must be aac, got %q", l.Audio.Codec)
	case l.Audio.Bitrate < 16_000 || l.Audio.Bitrate > 512_000:
		return fail("audio.bitrate", "must be between 16k and 512k, got %d", l.Audio.Bitrate)
	case !slices.Contains(aacSampleRates, l.Audio.SampleRate):
		return fail("audio.sample_rate", "must be an AAC sample rate (%s), got %d", joinInts(aacSampleRates), l.Audio.SampleRate)
	case l.Audio.Channels < 1 || l.Audio.Channels > 8:
		return fail("audio.channels", "must be between 1 and 8, got %d", l.Audio.Channels)
	case len(l.Rungs) == 0:
		return fail("rungs", "must list at least one rung")
	case len(l.Rungs) > MaxRungs:
		return fail("rungs", "must list at most %d rungs, got %d", MaxRungs, len(l.Rungs))
	}

	seen := map[string]int{}
	for i, r := range l.Rungs {
		key := func(field string) string { return fmt.Sprintf("rungs[%d].%s", i, field) }
		switch j, dup := seen[r.Name]; {
		case r.Name == "":
			return fail(key("name"), "is required")
		case !rungNameRE.MatchString(r.Name):
			return fail(key("name"), "must match [a-zA-Z0-9_-]+, got %q", r.Name)
		case dup:
			return fail(key("name"), "%q is already the name of rungs[%d]", r.Name, j)
		}
		seen[r.Name] = i

		switch {
		case r.Height == 0:
			return fail(key("height"), "is required")
		case r.Height < 64 || r.Height > 4320 || r.Height%2 != 0:
			return fail(key("height"), "must be an even number between 64 and 4320, got %d", r.Height)
		case i > 0 && r.Height >= l.Rungs[i-1].Height:
			return fail(key("height"), "must be less than rungs[%d].height (%d): rungs are listed largest first", i-1, l.Rungs[i-1].Height)
		case r.Width != 0 && (r.Width < r.Height || r.Width > 8192 || r.Width%2 != 0):
			// Width caps the long side, so below height it would contradict the rung.
			return fail(key("width"), "must be 0 or an even number between height (%d) and 8192, got %d", r.Height, r.Width)
		case r.Bitrate <= 0:
			return fail(key("bitrate"), "is required")
		case r.MaxRate < r.Bitrate:
			return fail(key("maxrate"), "must be at least bitrate (%d), got %d", r.Bitrate, r.MaxRate)
		case r.BufSize <= 0 || r.BufSize < r.MaxRate/4:
			return fail(key("bufsize"), "must be at least maxrate/4 (%d), got %d", r.MaxRate/4, r.BufSize)
		case profilesByCodec[r.Codec] == nil:
			return fail(key("codec"), "must be h264, hevc or av1, got %q", r.Codec)
		case r.Preset != "" && !validPreset(r.Codec, r.Preset):
			if r.Codec == CodecAV1 {
				return fail(key("preset"), "must be an SVT-AV1 preset 0..13 for av1, got %q", r.Preset)
			}
			return fail(key("preset"), "must be one of %s for %s, got %q", strings.Join(x26xPresets, ", "), r.Codec, r.Preset)
		case r.Profile != "" && !slices.Contains(profilesByCodec[r.Codec], r.Profile):
			return fail(key("profile"), "must be one of %s for %s, got %q", strings.Join(profilesByCodec[r.Codec], ", "), r.Codec, r.Profile)
		case r.Level != "" && !slices.Contains(levelsByCodec[r.Codec], canonicalLevel(r.Level)):
			return fail(key("level"), "must be one of %s for %s, got %q", strings.Join(levelsByCodec[r.Codec], ", "), r.Codec, r.Level)
		case r.MaxFrameRate != 0 && (r.MaxFrameRate < 1 || r.MaxFrameRate > 240):
			return fail(key("max_frame_rate"), "must be 0 (source rate) or between 1 and 240, got %g", r.MaxFrameRate)
		case len(r.Encoders) == 0:
			return fail(key("encoders"), "must list at least one of %s", joinEncoders(DefaultEncoderOrder))
		}
		for j, e := range r.Encoders {
			ekey := fmt.Sprintf("rungs[%d].encoders[%d]", i, j)
			if !slices.Contains(DefaultEncoderOrder, e) {
				return fail(ekey, "must be one of %s, got %q", joinEncoders(DefaultEncoderOrder), e)
			}
			if slices.Contains(r.Encoders[:j], e) {
				return fail(ekey, "%q is listed twice", e)
			}
		}
	}
	return nil
}

func validPreset(c Codec, preset string) bool {
	if c == CodecAV1 {
		n, err := strconv.Atoi(preset)
		return err == nil && n >= 0 && n <= 13
	}
	return slices.Contains(x26xPresets, preset)
}

// canonicalLevel writes "4" as "4.0" so either spelling is accepted.
func canonicalLevel(level string) string {
	if level != "1b" && !strings.Contains(level, ".") {
		return level + ".0"
	}
	return level
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

func joinEncoders(v []EncoderKind) string {
	s := make([]string, len(v))
	for i, e := range v {
		s[i] = string(e)
	}
	return strings.Join(s, ", ")
}
