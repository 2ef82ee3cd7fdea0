package config

import (
	"flag"
	"io"
	"testing"
)

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		env   []string
		check func(*Config) bool
		want  string
	}{
		{"unset flags change nothing", nil, []string{"LIVEGRID_HTTP_ADDR=:9090"},
			func(c *Config) bool { return c.HTTP.Addr == ":9090" && c.RTMP.Addr == ":1935" && c.DataDir == "./data" }, ""},
		{"flags beat file and env", []string{"--http-addr", ":7070", "--rtmp-addr=:1940", "--data-dir", "/srv/lg"}, []string{"LIVEGRID_HTTP_ADDR=:9090"},
			func(c *Config) bool {
				return c.HTTP.Addr == ":7070" && c.RTMP.Addr == ":1940" && c.DataDir == "/srv/lg" && c.StoreURL() == "file:///srv/lg/store"
			}, ""},
		{"a flag setting an explicit default still wins", []string{"--http-addr=:8080"}, []string{"LIVEGRID_HTTP_ADDR=:9090"},
			func(c *Config) bool { return c.HTTP.Addr == ":8080" }, ""},
		{"bad flag value names the flag and key", []string{"--rtmp-addr", "1935"}, nil, nil,
			`config: --rtmp-addr: 'rtmp.addr' must be a listen address like :8080 or 127.0.0.1:8080, got "1935"`},
		{"clash made by a flag", []string{"--rtmp-addr", ":8080"}, nil, nil,
			`config: --rtmp-addr: 'rtmp.addr' must not use the port of 'http.addr'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("standalone", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			path := AddFlags(fs)
			if err := fs.Parse(append([]string{"--config", samplePath}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			c, err := Load(*path, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			err = c.ApplyFlags(fs)
			checkErr(t, err, tc.want)
			if tc.check != nil && !tc.check(c) {
				t.Errorf("got %+v", c)
			}
		})
	}
}

func TestFlagDefaultsShown(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	AddFlags(fs)
	for name, want := range map[string]string{"rtmp-addr": ":1935", "http-addr": ":8080", "data-dir": "./data", "config": ""} {
		if f := fs.Lookup(name); f == nil || f.DefValue != want {
			t.Errorf("--%s default %v, want %q", name, f, want)
		}
	}
}
