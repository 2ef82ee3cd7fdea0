package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every configuration variable.
const EnvPrefix = "LIVEGRID_"

// otherEnv are LIVEGRID_* variables that are not configuration: the test
// harness and deploy scripts read them. Load leaves them alone.
var otherEnv = []string{
	"LIVEGRID_CACHE", // deploy/minio.sh, internal/store/storetest: tool cache
	"LIVEGRID_MINIO", // internal/store/storetest: MinIO binary
}

// field is one key of Config that holds a value (not a section).
type field struct {
	key   string // "segments.duration"
	env   string // "LIVEGRID_SEGMENTS_DURATION"
	index []int  // for reflect.Value.FieldByIndex from Config
	typ   reflect.Type
}

// textual reports whether a flag or environment variable can set the
// field: scalars and lists of strings. Maps and lists of mappings are
// written only in the file.
func (f field) textual() bool { return textType(f.typ) }

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

func textType(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

// section reports whether t is a struct of keys the walk descends into.
func section(t reflect.Type) bool { return t.Kind() == reflect.Struct }

// yamlName is the key a struct field is written under; "" for none.
func yamlName(sf reflect.StructField) string {
	if !sf.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// fields lists the value keys of Config in declaration order.
var fields = sync.OnceValue(func() []field {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name := yamlName(sf)
			if name == "" {
				continue
			}
			key := prefix + name
			idx := append(slices.Clone(index), i)
			if section(sf.Type) {
				walk(sf.Type, key+".", idx)
				continue
			}
			env := EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
			out = append(out, field{key: key, env: env, index: idx, typ: sf.Type})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
})

// fieldByKey returns the field with the key path, or false.
func fieldByKey(key string) (field, bool) {
	for _, f := range fields() {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// knownKeys lists the keys a section takes, for unknown-key messages.
func knownKeys(t reflect.Type) string {
	var names []string
	for i := range t.NumField() {
		if n := yamlName(t.Field(i)); n != "" {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// setText parses s into v, a field of a textual type. Lists are
// comma-separated; blanks around items and empty items are dropped.
func setText(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("must be a duration like 2s or 1m30s, got %q", s)
		}
		v.SetInt(int64(d))
		return nil
	case v.Type() == byteSizeType:
		b, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(b))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be a whole number, got %q", s)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("must be a number, got %q", s)
		}
		v.SetFloat(f)
	case reflect.Slice: // of strings, as textType says
		var list []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list).Convert(v.Type()))
	default:
		return fmt.Errorf("cannot be set from text") // textType keeps other kinds out
	}
	return nil
}

// set parses s into the field at key of c.
func (c *Config) set(key, s string) error {
	f, ok := fieldByKey(key)
	if !ok || !f.textual() {
		return fmt.Errorf("is not a key that takes text")
	}
	return setText(reflect.ValueOf(c).Elem().FieldByIndex(f.index), s)
}

// applyEnv applies the LIVEGRID_* entries of env ("NAME=value", as
// os.Environ gives). An empty value counts as unset, so a compose file can
// pass ${X:-} through; a variable given twice takes its last value.
// origins records the variable behind each key it sets.
func (c *Config) applyEnv(env []string, origins map[string]origin) error {
	vals := map[string]string{}
	for _, kv := range env {
		name, val, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) && !slices.Contains(otherEnv, name) {
			vals[name] = val
		}
	}
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	slices.Sort(names) // the first error is the same every run
	byEnv := map[string]field{}
	for _, f := range fields() {
		byEnv[f.env] = f
	}
	for _, name := range names {
		f, ok := byEnv[name]
		if !ok {
			return &Error{Source: name, Msg: "is not a livegrid setting" + envHint(name)}
		}
		if !f.textual() {
			return &Error{Source: name, Key: f.key, Msg: "can be set only in the config file"}
		}
		if vals[name] == "" {
			continue
		}
		if err := c.set(f.key, vals[name]); err != nil {
			return &Error{Source: name, Key: f.key, Msg: err.Error()}
		}
		origins[f.key] = origin{source: name}
	}
	return nil
}

// envHint names the variables of the section an unknown variable seems
// to aim at.
func envHint(name string) string {
	var best string
	for _, f := range fields() {
		sec, _, ok := strings.Cut(f.key, ".")
		p := EnvPrefix + strings.ToUpper(sec) + "_"
		if ok && strings.HasPrefix(name, p) && len(p) > len(best) {
			best = p
		}
	}
	if best == "" {
		return "; see deploy/livegrid.yaml for the keys (LIVEGRID_SECTION_KEY)"
	}
	var list []string
	for _, f := range fields() {
		if strings.HasPrefix(f.env, best) && f.textual() {
			list = append(list, f.env)
		}
	}
	return "; " + best + "* are " + strings.Join(list, ", ")
}

// nodeKind describes a YAML node for messages: its text if a scalar.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "nothing"
}

// fieldValue returns the value of the field at key of c.
func fieldValue(c *Config, key string) any {
	f, ok := fieldByKey(key)
	if !ok {
		return nil
	}
	return reflect.ValueOf(c).Elem().FieldByIndex(f.index).Interface()
}
