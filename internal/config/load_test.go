package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestParseYAML(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want func(*Config) // how the result differs from Default
	}{
		{"empty", "", func(*Config) {}},
		{"only comments", "# nothing\n# set\n", func(*Config) {}},
		{"empty document", "---\n", func(*Config) {}},
		{"null section keeps defaults", "http:\n", func(*Config) {}},
		{"null value keeps default", "http:\n  addr:\n", func(*Config) {}},
		{"empty list is none", "edge:\n  origins: []\n", func(*Config) {}},
		{"scalars", `
log: {level: debug, format: json}
http:
  addr: 127.0.0.1:9090
  cors_origins: ["*", https://player.example.com]
segments: {duration: 3s, max_duration: 12s}
packager: {window: 10}
store: {buffer_bytes: 1GiB, retention: 0s}
publish: {takeover: true}
worker: {concurrency: 4}
`, func(c *Config) {
			c.Log = Log{Level: "debug", Format: "json"}
			c.HTTP.Addr = "127.0.0.1:9090"
			c.HTTP.CORSOrigins = []string{"*", "https://player.example.com"}
			c.Segments = Segments{Duration: 3 * time.Second, MaxDuration: 12 * time.Second}
			c.Packager.Window = 10
			c.Store.BufferBytes = GiB
			c.Store.Retention = 0
			c.Publish.Takeover = true
			c.Worker.Concurrency = 4
		}},
		{"byte size as a number", "edge:\n  cache_bytes: 1048576\n", func(c *Config) { c.Edge.CacheBytes = MiB }},
		{"maps and lists of mappings", `
publish:
  auth: key
  keys: {cam-1: k1, cam-2: k2}
transcode:
  rules:
    - match: "mobile-*"
      profile: mobile
pull:
  - {stream: lobby, url: "rtmp://camera.local/live/lobby"}
`, func(c *Config) {
			c.Publish.Auth = AuthKey
			c.Publish.Keys = map[string]string{"cam-1": "k1", "cam-2": "k2"}
			c.Transcode.Rules = []Rule{{Match: "mobile-*", Profile: "mobile"}}
			c.Pull = []Pull{{Stream: "lobby", URL: "rtmp://camera.local/live/lobby"}}
		}},
		{"x- extension keys are unknown keys", `
x-rule: &mobile {match: "m-*", profile: mobile}
`, nil},
		{"merge into a section", `
segments: &seg {duration: 4s, max_duration: 20s}
packager:
  window: 8
`, func(c *Config) {
			c.Segments = Segments{Duration: 4 * time.Second, MaxDuration: 20 * time.Second}
			c.Packager.Window = 8
		}},
		{"merge overridden by the section's own key", `
transcode:
  rules:
    - &base {match: "a-*", profile: mobile}
    - <<: *base
      match: "b-*"
`, func(c *Config) {
			c.Transcode.Rules = []Rule{{Match: "a-*", Profile: "mobile"}, {Match: "b-*", Profile: "mobile"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.yaml), "test.yaml", nil)
			if tc.want == nil {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// Every refused file names the key (when there is one) and the line.
func TestParseYAMLErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		key        string
		line       int
		want       string
	}{
		{"unknown top-level key", "log: {level: info}\nhtpp:\n  addr: :1\n", "htpp", 2,
			"config: test.yaml:2: 'htpp' is not a known key (known here: log, http, rtmp, data_dir,"},
		{"unknown nested key", "http:\n  addr: \":8080\"\n  adr: \":9090\"\n", "http.adr", 3,
			"config: test.yaml:3: 'http.adr' is not a known key (known here: addr, tls_cert, tls_key, cors_origins)"},
		{"unknown key in a list item", "pull:\n  - stream: a\n    url: rtmp://h/live/a\n    urll: x\n", "pull[0].urll", 4,
			"'pull[0].urll' is not a known key (known here: stream, url)"},
		{"unknown key in a flow mapping", "segments: {duration: 2s, maxduration: 3s}\n", "segments.maxduration", 1,
			"'segments.maxduration' is not a known key"},
		{"unknown key through a merge", "segments:\n  <<: {durration: 2s}\n", "segments.durration", 2,
			"'segments.durration' is not a known key"},
		{"repeated key", "http:\n  addr: :1\n  addr: :2\n", "http.addr", 3,
			"'http.addr' is set twice (first at line 2)"},
		{"repeated section", "http: {}\nrtmp: {}\nhttp: {}\n", "http", 3, "'http' is set twice (first at line 1)"},
		{"repeated map key", "publish:\n  auth: key\n  keys:\n    a: x\n    a: y\n", "publish.keys.a", 5, "is set twice"},
		{"bad duration", "segments:\n  duration: fast\n", "segments.duration", 2,
			`'segments.duration' must be a duration like 2s or 1m30s, got "fast"`},
		{"bad int", "packager:\n  window: six\n", "packager.window", 2, `'packager.window' must be a whole number, got "six"`},
		{"bad bool", "publish:\n  takeover: maybe\n", "publish.takeover", 2, `'publish.takeover' must be true or false, got "maybe"`},
		{"bad size", "store:\n  buffer_bytes: lots\n", "store.buffer_bytes", 2, `'store.buffer_bytes' must be a size like 256MiB or 500MB, got "lots"`},
		{"list for a value", "http:\n  addr: [a, b]\n", "http.addr", 2, "'http.addr' must be a single value, got a list"},
		{"value for a list", "edge:\n  origins: http://o:8080\n", "edge.origins", 2, `'edge.origins' must be a list of values, got "http://o:8080"`},
		{"mapping in a list", "edge:\n  origins: [{a: b}]\n", "edge.origins", 2, "'edge.origins' must be a list of values, got a list"},
		{"value for a section", "http: on\n", "http", 1, `'http' must be a mapping of addr, tls_cert, tls_key, cors_origins, got "on"`},
		{"value for a list of mappings", "pull: lobby\n", "pull", 1, `'pull' must be a list of mappings of stream, url, got "lobby"`},
		{"value in a list of mappings", "pull: [lobby]\n", "pull[0]", 1, `'pull[0]' must be a mapping of stream, url, got "lobby"`},
		{"value for a map", "publish:\n  keys: k\n", "publish.keys", 2, `'publish.keys' must be a mapping of names to values, got "k"`},
		{"not a mapping", "- a\n- b\n", "", 1, "the file must be a mapping of sections"},
		{"bad YAML", "http:\n  addr: \":8080\n", "", 2, "config: test.yaml:2: found unexpected end of stream"},
		{"bad indentation", "http:\n  addr: :1\n rtmp: x\n", "", 2, "test.yaml:2: did not find expected key"},
		{"tab indentation", "http:\n\taddr: :1\n", "", 2, "test.yaml:2: found character that cannot start any token"},
		{"two documents", "log: {}\n---\nlog: {}\n", "", 0, "holds more than one YAML document"},
		{"bad second document", "log: {}\n---\n: :\n  - [\n", "", 0, "test.yaml"},
		{"value then invalid", "segments:\n  duration: 20s\n", "segments.duration", 2,
			"config: test.yaml:2: 'segments.duration' must be between 1s and 10s, got 20s"},
		{"invalid list item keeps its line", "edge:\n  origins:\n    - http://a:1\n    - ftp://b\n", "edge.origins[1]", 4,
			`test.yaml:4: 'edge.origins[1]' must be an http:// or https:// base URL`},
		{"invalid map entry keeps its line", "publish:\n  auth: key\n  keys:\n    ok: k\n    bad/name: k\n", "publish.keys.bad/name", 5,
			"test.yaml:5: 'publish.keys.bad/name' must name a stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "test.yaml", nil)
			checkErr(t, err, tc.want)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not *Error", err)
			}
			if e.Key != tc.key || (tc.line != 0 && e.Line != tc.line) {
				t.Errorf("key %q line %d, want %q line %d", e.Key, e.Line, tc.key, tc.line)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "livegrid.yaml")
	if err := os.WriteFile(path, []byte("http:\n  addr: :9090\nrtmp:\n  addr: :1936\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":9090" || c.RTMP.Addr != ":1936" {
		t.Errorf("got %q %q", c.HTTP.Addr, c.RTMP.Addr)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	c, err = Load("", nil)
	if err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("no file: %v", err)
	}
}

// Precedence: defaults < file < environment.
func TestPrecedence(t *testing.T) {
	file := []byte("http:\n  addr: :9090\nrtmp:\n  addr: :1936\nsegments:\n  duration: 4s\n")
	env := []string{"PATH=/bin", "LIVEGRID_RTMP_ADDR=:1937", "LIVEGRID_HTTP_ADDR="}
	c, err := Parse(file, "f.yaml", env)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":9090" { // an empty variable counts as unset
		t.Errorf("http.addr = %q, want the file's", c.HTTP.Addr)
	}
	if c.RTMP.Addr != ":1937" {
		t.Errorf("rtmp.addr = %q, want the environment's", c.RTMP.Addr)
	}
	if c.Segments.Duration != 4*time.Second || c.Packager.Window != 6 {
		t.Errorf("segments.duration %v, packager.window %d", c.Segments.Duration, c.Packager.Window)
	}
	// An environment value that breaks a rule is reported as the variable's.
	_, err = Parse(file, "f.yaml", []string{"LIVEGRID_SEGMENTS_MAX_DURATION=3s"})
	checkErr(t, err, "config: LIVEGRID_SEGMENTS_MAX_DURATION: 'segments.max_duration' must be between 'segments.duration' (4s) and 1m, got 3s")
}

// Merges of merges can stand for an exponential number of keys; the
// walk gives up instead of hanging.
func TestMergeBomb(t *testing.T) {
	inner := "{duration: 2s}"
	for i := 0; i < 12; i++ {
		anchor := fmt.Sprintf("a%d", i)
		inner = fmt.Sprintf("{<<: [&%s %s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]}", anchor, inner, anchor, anchor, anchor, anchor, anchor, anchor, anchor)
	}
	start := time.Now()
	_, err := Parse([]byte("segments: "+inner+"\n"), "bomb.yaml", nil)
	checkErr(t, err, "expands to too many values (aliases and merges)")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}
