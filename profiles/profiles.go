// Package profiles loads, validates and resolves ABR ladders: the renditions
// (rungs) a live stream is transcoded into, kept as strict YAML files.
package profiles

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// Codec is the video codec a rung is encoded with.
type Codec string

// Video codecs a rung may use.
const (
	CodecH264 Codec = "h264"
	CodecHEVC Codec = "hevc"
	CodecAV1  Codec = "av1"
)

// EncoderKind is a family of encoders a worker may run a rung on.
type EncoderKind string

// Encoder families, hardware first.
const (
	EncoderNVENC    EncoderKind = "nvenc"
	EncoderQSV      EncoderKind = "qsv"
	EncoderVAAPI    EncoderKind = "vaapi"
	EncoderSoftware EncoderKind = "software"
)

// DefaultEncoderOrder is the preference order a rung gets when it names none.
var DefaultEncoderOrder = []EncoderKind{EncoderNVENC, EncoderQSV, EncoderVAAPI, EncoderSoftware}

// Values of Ladder.Cascade.
const (
	CascadeAuto   = "auto"   // scale from the next larger rendition where that loses nothing
	CascadeSource = "source" // always scale from the decoded source
)

// ErrUnknownLadder is returned by Builtin for a name no embedded ladder has.
var ErrUnknownLadder = errors.New("unknown builtin ladder")

// Audio is the AAC rendition shared by every rung.
type Audio struct {
	Codec      string
	Bitrate    int64 // bits/s
	SampleRate int   // Hz
	Channels   int
}

// Rung is one rendition of a ladder.
type Rung struct {
	Name          string
	Height, Width int   // Height is the short side; Width, if set, caps the long side
	Bitrate       int64 // bits/s
	MaxRate       int64 // bits/s
	BufSize       int64 // bits
	Codec         Codec
	Preset        string
	Profile       string
	Level         string
	MaxFrameRate  float64 // 0 = source rate
	Encoders      []EncoderKind
}

// Ladder is a named set of rungs, largest first.
type Ladder struct {
	Name, Description string
	GOP               time.Duration
	Cascade           string
	Audio             Audio
	Rungs             []Rung
	Source            string // file path or "builtin:NAME"
}

// FieldError is a problem with one key of a ladder.
type FieldError struct {
	Source string // file path or "builtin:NAME"; may be empty
	Key    string // like "rungs[2].height"; empty when no key could be named
	Line   int    // 1-based; 0 when unknown
	Msg    string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("profiles: ")
	if e.Source != "" {
		b.WriteString(e.Source + ": ")
	}
	switch {
	case e.Key != "" && e.Line > 0:
		fmt.Fprintf(&b, "'%s': %s (line %d)", e.Key, e.Msg, e.Line)
	case e.Key != "":
		fmt.Fprintf(&b, "'%s': %s", e.Key, e.Msg)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: %s", e.Line, e.Msg)
	default:
		b.WriteString(e.Msg)
	}
	return b.String()
}

//go:embed *.yaml
var builtinFS embed.FS

const builtinPrefix = "builtin:"

// Load reads and validates the ladder file at path.
func Load(path string) (*Ladder, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	return Parse(data, path)
}

// Builtin returns a fresh copy of an embedded ladder: "default", "mobile" or "hevc".
func Builtin(name string) (*Ladder, error) {
	data, err := builtinFS.ReadFile(name + ".yaml")
	if err != nil || strings.ContainsAny(name, "/.") {
		return nil, fmt.Errorf("profiles: %w %q (have %s)", ErrUnknownLadder, name, strings.Join(BuiltinNames(), ", "))
	}
	return Parse(data, builtinPrefix+name)
}

// BuiltinNames lists the embedded ladders, sorted.
func BuiltinNames() []string {
	files, _ := fs.Glob(builtinFS, "*.yaml") // the pattern is constant, so Glob cannot fail
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(f, ".yaml")
	}
	return names
}

// Open returns the builtin ladder called nameOrPath unless a file of that
// name exists, and otherwise loads nameOrPath as a file. "builtin:NAME", as
// found in Ladder.Source, always means the embedded ladder.
func Open(nameOrPath string) (*Ladder, error) {
	if name, ok := strings.CutPrefix(nameOrPath, builtinPrefix); ok {
		return Builtin(name)
	}
	if slices.Contains(BuiltinNames(), nameOrPath) {
		// A file on disk wins so an operator can shadow a builtin without renaming it.
		if _, err := os.Stat(nameOrPath); errors.Is(err, fs.ErrNotExist) {
			return Builtin(nameOrPath)
		}
	}
	return Load(nameOrPath)
}
