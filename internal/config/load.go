package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// origin is where a key's value came from, for messages about it.
type origin struct {
	source string // file path or variable name
	line   int
}

// Load returns the configuration: Default, then the YAML file at path
// (none when path is empty), then the LIVEGRID_* entries of env (as
// os.Environ gives them), checked by Validate.
func Load(path string, env []string) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return Parse(data, path, env)
}

// Parse is Load with the file's contents given; source names it in
// errors. Empty data (or only comments) leaves the defaults.
func Parse(data []byte, source string, env []string) (*Config, error) {
	c := Default()
	origins := map[string]origin{}
	if err := c.decodeYAML(data, source, origins); err != nil {
		return nil, err
	}
	if err := c.applyEnv(env, origins); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, locate(err, origins)
	}
	return c, nil
}

// locate adds to a Validate error where the key's value was set.
func locate(err error, origins map[string]origin) error {
	var e *Error
	if !errors.As(err, &e) || e.Source != "" {
		return err
	}
	// "pull[1].url" may have come from its own line or, in a flow
	// mapping, from its parent's.
	for k := e.Key; k != ""; k = parentKey(k) {
		if o, ok := origins[k]; ok {
			e.Source, e.Line = o.source, o.line
			break
		}
	}
	return e
}

// parentKey strips the last part of a key path: "a.b[2].c" -> "a.b[2]" -> "a.b" -> "a".
func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i < 0 {
		return ""
	}
	return k[:i]
}

// decodeYAML merges one YAML document into c. The document is first
// walked against Config's type, so an unknown key, a repeated key or a
// value of the wrong shape is refused with its key path and line; then
// yaml.v3 decodes it with KnownFields(true).
func (c *Config) decodeYAML(data []byte, source string, origins map[string]origin) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil // empty, or only comments
	case err != nil:
		return syntaxError(err, source)
	}
	// A second document is more likely a paste mistake than meant.
	switch err := dec.Decode(new(yaml.Node)); {
	case err == nil:
		return &Error{Source: source, Msg: "holds more than one YAML document"}
	case !errors.Is(err, io.EOF):
		return syntaxError(err, source)
	}
	w := walker{source: source, origins: origins}
	if err := w.value(&doc, reflect.TypeFor[Config](), ""); err != nil {
		return err
	}
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(c); err != nil {
		// The walk refuses what the decoder would; this is a backstop.
		return syntaxError(err, source)
	}
	normalize(reflect.ValueOf(c).Elem())
	return nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 error into an Error with its line.
func syntaxError(err error, source string) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	e := &Error{Source: source, Msg: strings.TrimPrefix(msg, "yaml: ")}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
	}
	return e
}

// walker checks a YAML node tree against Config's type.
type walker struct {
	source  string
	origins map[string]origin
	depth   int
	visits  int
}

// maxVisits bounds the walk: aliases and merges can make a short file
// stand for an exponentially large one, which the parser does not expand
// but the walk would.
const maxVisits = 100_000

func (w *walker) fail(n *yaml.Node, key, format string, args ...any) error {
	return &Error{Source: w.source, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// value checks node n, the value of key (a path) of Go type t.
func (w *walker) value(n *yaml.Node, t reflect.Type, key string) error {
	// Aliases may nest (the parser refuses cycles); the depth bounds the
	// recursion and visits the work.
	if w.depth++; w.depth > 100 {
		return w.fail(n, key, "nests too deeply")
	}
	if w.visits++; w.visits > maxVisits {
		return w.fail(n, key, "expands to too many values (aliases and merges)")
	}
	defer func() { w.depth-- }()
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return w.value(n.Content[0], t, key)
	case yaml.AliasNode:
		return w.value(n.Alias, t, key)
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // keeps the default (a list or map: empties it)
	}
	switch {
	case section(t):
		if n.Kind != yaml.MappingNode {
			if key == "" {
				return w.fail(n, key, "the file must be a mapping of sections (%s), got %s", knownKeys(t), nodeKind(n))
			}
			return w.fail(n, key, "must be a mapping of %s, got %s", knownKeys(t), nodeKind(n))
		}
		return w.mapping(n, t, key, map[string]int{})
	case t.Kind() == reflect.Slice && section(t.Elem()):
		if n.Kind != yaml.SequenceNode {
			return w.fail(n, key, "must be a list of mappings of %s, got %s", knownKeys(t.Elem()), nodeKind(n))
		}
		for i, item := range n.Content {
			k := fmt.Sprintf("%s[%d]", key, i)
			w.origins[k] = origin{w.source, item.Line}
			if err := w.value(item, t.Elem(), k); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			w.origins[fmt.Sprintf("%s[%d]", key, i)] = origin{w.source, item.Line}
		}
	case t.Kind() == reflect.Map:
		if n.Kind == yaml.MappingNode {
			seen := map[string]int{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				path := key + "." + k.Value
				if line, ok := seen[k.Value]; ok && k.Kind == yaml.ScalarNode {
					return w.fail(k, path, "is set twice (first at line %d)", line)
				}
				seen[k.Value] = k.Line
				w.origins[path] = origin{w.source, k.Line}
			}
		}
	}
	// A value: let yaml.v3 convert it alone, so a failure has its key.
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		if t == byteSizeType {
			return w.fail(n, key, "%s", err.Error())
		}
		return w.fail(n, key, "must be %s, got %s", describe(t), nodeKind(n))
	}
	return nil
}

// mapping checks the keys of a section. seen holds the keys written in
// it so far, with their lines; nil inside a merge ("<<"), whose keys
// the section may override.
func (w *walker) mapping(n *yaml.Node, t reflect.Type, key string, seen map[string]int) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			if err := w.merge(v, t, key); err != nil {
				return err
			}
			continue
		}
		path := k.Value
		if key != "" {
			path = key + "." + k.Value
		}
		if k.Kind != yaml.ScalarNode {
			return w.fail(k, key, "has a key that is %s, not a name", nodeKind(k))
		}
		if seen != nil {
			if line, ok := seen[k.Value]; ok {
				return w.fail(k, path, "is set twice (first at line %d)", line)
			}
			seen[k.Value] = k.Line
		}
		sf, ok := fieldByYAML(t, k.Value)
		if !ok {
			return w.fail(k, path, "is not a known key (known here: %s)", knownKeys(t))
		}
		w.origins[path] = origin{w.source, k.Line}
		if err := w.value(v, sf.Type, path); err != nil {
			return err
		}
	}
	return nil
}

// merge checks the mapping or list of mappings after "<<".
func (w *walker) merge(v *yaml.Node, t reflect.Type, key string) error {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		return w.mapping(v, t, key, nil)
	case yaml.SequenceNode:
		for _, item := range v.Content {
			if item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if item.Kind != yaml.MappingNode {
				return w.fail(item, key, "merges %s; '<<' takes mappings", nodeKind(item))
			}
			if err := w.mapping(item, t, key, nil); err != nil {
				return err
			}
		}
		return nil
	}
	return w.fail(v, key, "merges %s; '<<' takes mappings", nodeKind(v))
}

// fieldByYAML finds the field of struct t written as name.
func fieldByYAML(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if sf := t.Field(i); yamlName(sf) == name {
			return sf, true
		}
	}
	return reflect.StructField{}, false
}

// describe names what a value of type t is written as.
func describe(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration like 2s or 1m30s"
	case t == byteSizeType:
		return "a size like 256MiB or 500MB"
	}
	switch t.Kind() {
	case reflect.String:
		return "a single value"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list of values"
	case reflect.Map:
		return "a mapping of names to values"
	}
	return t.String()
}

// normalize turns empty lists and maps into nil, so "origins: []" in a
// file equals the default of no origins.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				normalize(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		for i := range v.Len() {
			normalize(v.Index(i))
		}
	case reflect.Map:
		if v.Len() == 0 {
			v.SetZero()
		}
	}
}
