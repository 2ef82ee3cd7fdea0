package profiles

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// rawLadder mirrors the file. Bitrates and encoder lists stay as written
// until Parse converts them, so a bad value is reported by its key path.
type rawLadder struct {
	Name        string        `yaml:"name"`
	Description string        `yaml:"description"`
	GOP         time.Duration `yaml:"gop"`
	Cascade     string        `yaml:"cascade"`
	Audio       rawAudio      `yaml:"audio"`
	Rungs       []rawRung     `yaml:"rungs"`
}

type rawAudio struct {
	Codec      string `yaml:"codec"`
	Bitrate    string `yaml:"bitrate"`
	SampleRate int    `yaml:"sample_rate"`
	Channels   int    `yaml:"channels"`
}

type rawRung struct {
	Name         string    `yaml:"name"`
	Height       int       `yaml:"height"`
	Width        int       `yaml:"width"`
	Bitrate      string    `yaml:"bitrate"`
	MaxRate      string    `yaml:"maxrate"`
	BufSize      string    `yaml:"bufsize"`
	Codec        Codec     `yaml:"codec"`
	Preset       string    `yaml:"preset"`
	Profile      string    `yaml:"profile"`
	Level        string    `yaml:"level"`
	MaxFrameRate float64   `yaml:"max_frame_rate"`
	Encoders     yaml.Node `yaml:"encoders"` // "auto" or a list
}

// Parse decodes one ladder document, refusing unknown keys, fills in
// defaults and validates it. source names the data in errors.
func Parse(data []byte, source string) (*Ladder, error) {
	// Defaults go in before decoding so that only keys the file omits keep them.
	raw := rawLadder{
		GOP:     2 * time.Second,
		Cascade: CascadeAuto,
		Audio:   rawAudio{Codec: "aac", Bitrate: "128k", SampleRate: 48000, Channels: 2},
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{Source: source, Msg: "empty ladder file"}
		}
		return nil, decodeError(err, data, source)
	}
	// A second document is more likely a paste mistake than a second ladder.
	switch err := dec.Decode(new(yaml.Node)); {
	case err == nil:
		return nil, &FieldError{Source: source, Msg: "holds more than one YAML document"}
	case !errors.Is(err, io.EOF):
		return nil, decodeError(err, data, source)
	}

	l, err := raw.ladder(source)
	if err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return l, nil
}

// ladder converts the decoded file and applies the per-rung defaults.
func (r *rawLadder) ladder(source string) (*Ladder, error) {
	fail := func(key string, line int, err error) error {
		return &FieldError{Source: source, Key: key, Line: line, Msg: err.Error()}
	}
	l := &Ladder{
		Name:        r.Name,
		Description: r.Description,
		GOP:         r.GOP,
		Cascade:     r.Cascade,
		Audio:       Audio{Codec: r.Audio.Codec, SampleRate: r.Audio.SampleRate, Channels: r.Audio.Channels},
		Source:      source,
	}
	var err error
	if l.Audio.Bitrate, err = parseBitrate(r.Audio.Bitrate); err != nil {
		return nil, fail("audio.bitrate", 0, err)
	}
	for i, rr := range r.Rungs {
		key := fmt.Sprintf("rungs[%d]", i)
		rung := Rung{
			Name:         rr.Name,
			Height:       rr.Height,
			Width:        rr.Width,
			Codec:        cmp.Or(rr.Codec, CodecH264),
			Preset:       rr.Preset,
			Profile:      rr.Profile,
			Level:        rr.Level,
			MaxFrameRate: rr.MaxFrameRate,
		}
		for _, f := range []struct {
			name string
			text string
			dst  *int64
		}{
			{"bitrate", rr.Bitrate, &rung.Bitrate},
			{"maxrate", rr.MaxRate, &rung.MaxRate},
			{"bufsize", rr.BufSize, &rung.BufSize},
		} {
			if *f.dst, err = parseBitrate(f.text); err != nil {
				return nil, fail(key+"."+f.name, 0, err)
			}
		}
		if rung.MaxRate == 0 {
			rung.MaxRate = int64(math.Round(1.1 * float64(rung.Bitrate)))
		}
		if rung.BufSize == 0 {
			rung.BufSize = 2 * rung.Bitrate
		}
		if rung.Encoders, err = encoderList(&rr.Encoders); err != nil {
			return nil, fail(key+".encoders", rr.Encoders.Line, err)
		}
		l.Rungs = append(l.Rungs, rung)
	}
	return l, nil
}

// encoderList reads "auto", an absent key or a list of encoder kinds.
// Entries are checked by Validate.
func encoderList(n *yaml.Node) ([]EncoderKind, error) {
	switch {
	case n.Kind == 0, n.Kind == yaml.ScalarNode && (n.Value == "auto" || n.ShortTag() == "!!null"):
		return slices.Clone(DefaultEncoderOrder), nil
	case n.Kind == yaml.SequenceNode:
		list := make([]EncoderKind, len(n.Content))
		for i, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("entry %d must be an encoder name", i)
			}
			list[i] = EncoderKind(c.Value)
		}
		return list, nil
	}
	return nil, fmt.Errorf(`must be "auto" or a list from %s, got %q`, joinEncoders(DefaultEncoderOrder), n.Value)
}

// parseBitrate reads bits/s written as a number or with a k or M suffix
// ("800k", "1.5M"). An empty string means unset and gives 0.
func parseBitrate(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	num, mult := s, 1.0
	switch s[len(s)-1] {
	case 'k', 'K':
		num, mult = s[:len(s)-1], 1e3
	case 'M':
		num, mult = s[:len(s)-1], 1e6
	}
	f, err := strconv.ParseFloat(num, 64)
	bits := math.Round(f * mult)
	// The upper bound keeps 2×bitrate defaults far from int64 overflow.
	if err != nil || !(f > 0) || bits > 1e12 || math.Abs(bits-f*mult) > 1e-3 {
		return 0, fmt.Errorf(`must be a positive whole number of bits/s like 2500000, "800k" or "1.5M", got %q`, s)
	}
	return int64(bits), nil
}

var (
	// Decoder messages that concern a key rather than a value.
	keyErrorRE = regexp.MustCompile(`^(?:field (\S+) (not found|already set) in type \S+|mapping key "(.*)" already defined at line (\d+))$`)
	// Decoder messages that concern a value: tag and (possibly truncated) text.
	valueErrorRE = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
	goTypeNames  = map[string]string{
		"[]profiles.rawRung": "a list of rungs",
		"profiles.rawLadder": "a ladder mapping",
		"profiles.rawRung":   "a rung mapping",
		"profiles.rawAudio":  "an audio mapping",
		"time.Duration":      "a duration like 2s",
		"float64":            "a number",
		"string":             "a single value",
		"int":                "an integer",
	}
)

// decodeError turns a yaml.v3 error into a FieldError. The decoder reports
// only a line and a Go type, so the key path is recovered from the node tree.
func decodeError(err error, data []byte, source string) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return &FieldError{Source: source, Msg: err.Error()}
	}
	var doc yaml.Node
	_ = yaml.Unmarshal(data, &doc) // it decoded once already, so the syntax is good

	line, msg := 0, te.Errors[0]
	if head, rest, ok := strings.Cut(msg, ": "); ok {
		if _, err := fmt.Sscanf(head, "line %d", &line); err == nil {
			msg = rest
		}
	}
	fe := &FieldError{Source: source, Line: line, Msg: msg}
	if m := keyErrorRE.FindStringSubmatch(msg); m != nil {
		name := m[1] + m[3]
		fe.Key = findKey(&doc, line, name)
		switch {
		case m[2] == "not found":
			fe.Msg = "unknown key"
		case m[4] != "":
			fe.Msg = "repeated key, first set at line " + m[4]
		default:
			fe.Msg = "repeated key"
		}
	} else if m := valueErrorRE.FindStringSubmatch(msg); m != nil {
		fe.Key = findValue(&doc, line, m[1], strings.TrimSuffix(m[2], "..."))
		fe.Msg = fmt.Sprintf("must be %s, got %s", cmp.Or(goTypeNames[m[3]], m[3]), strings.TrimPrefix(m[1], "!!"))
		if m[2] != "" {
			fe.Msg += " " + strconv.Quote(m[2])
		}
	}
	return fe
}

// findKey returns the path of the mapping key called name on line.
func findKey(doc *yaml.Node, line int, name string) string {
	path, _ := walk(doc, "", func(k, _ *yaml.Node) bool {
		return k != nil && k.Line == line && k.Value == name
	})
	return path
}

// findValue returns the path of the deepest value on line with the given
// tag whose text starts with prefix.
func findValue(doc *yaml.Node, line int, tag, prefix string) string {
	path, _ := walk(doc, "", func(_, v *yaml.Node) bool {
		return v.Line == line && v.ShortTag() == tag && strings.HasPrefix(v.Value, prefix)
	})
	return path
}

// walk visits every value (with its mapping key, or nil inside a list),
// deepest first, and returns the path of the first one match accepts.
func walk(n *yaml.Node, path string, match func(k, v *yaml.Node) bool) (string, bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p, ok := walk(c, path, match); ok {
				return p, true
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if p, ok := walk(c, p, match); ok {
				return p, true
			}
			if match(nil, c) {
				return p, true
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if p, ok := walk(v, p, match); ok {
				return p, true
			}
			if match(k, v) {
				return p, true
			}
		}
	}
	return "", false
}
