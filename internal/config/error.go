package config

import (
	"fmt"
	"strings"
)

// Error is a refused setting. Load, Parse, Validate, ValidateRole and
// ApplyFlags return their findings as *Error (a file Load cannot read
// aside).
type Error struct {
	Source string // config file, LIVEGRID_* variable or --flag; empty when unknown
	Line   int    // 1-based line in a config file; 0 when none
	Key    string // key path like "segments.duration" or "pull[1].url"; empty when none
	Msg    string // what is wrong, in words that follow the key
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	switch {
	case e.Source != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.Source, e.Line)
	case e.Source != "":
		b.WriteString(e.Source + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "'%s' ", e.Key)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// bad returns the Error for a bad value of key.
func bad(key, format string, args ...any) *Error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}
