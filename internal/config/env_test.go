package config

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestEnvOverrides(t *testing.T) {
	for _, tc := range []struct {
		kind, env string
		want      func(*Config)
	}{
		{"string", "LIVEGRID_HTTP_ADDR=:9090", func(c *Config) { c.HTTP.Addr = ":9090" }},
		{"top-level key", "LIVEGRID_DATA_DIR=/srv/livegrid", func(c *Config) { c.DataDir = "/srv/livegrid" }},
		{"duration", "LIVEGRID_SEGMENTS_DURATION=3s", func(c *Config) { c.Segments.Duration = 3 * time.Second }},
		{"key with '_'", "LIVEGRID_SEGMENTS_MAX_DURATION=1m", func(c *Config) { c.Segments.MaxDuration = time.Minute }},
		{"int", "LIVEGRID_PACKAGER_WINDOW=10", func(c *Config) { c.Packager.Window = 10 }},
		{"bool", "LIVEGRID_PUBLISH_TAKEOVER=true", func(c *Config) { c.Publish.Takeover = true }},
		{"size", "LIVEGRID_STORE_BUFFER_BYTES=1GiB", func(c *Config) { c.Store.BufferBytes = GiB }},
		{"size in bytes", "LIVEGRID_EDGE_CACHE_BYTES=0", func(c *Config) { c.Edge.CacheBytes = 0 }},
		{"blanks trimmed", "LIVEGRID_WORKER_CONCURRENCY= 4 ", func(c *Config) { c.Worker.Concurrency = 4 }},
		{"list", "LIVEGRID_EDGE_ORIGINS=http://a:8080, http://b:8080,", func(c *Config) {
			c.Edge.Origins = []string{"http://a:8080", "http://b:8080"}
		}},
		{"list of one", "LIVEGRID_HTTP_CORS_ORIGINS=*", func(c *Config) { c.HTTP.CORSOrigins = []string{"*"} }},
		{"empty is unset", "LIVEGRID_LOG_LEVEL=", func(*Config) {}},
		{"no '=' is empty", "LIVEGRID_LOG_LEVEL", func(*Config) {}},
		{"harness variable", "LIVEGRID_CACHE=/tmp/cache", func(*Config) {}},
		{"harness variable", "LIVEGRID_MINIO=/usr/bin/minio", func(*Config) {}},
		{"other variable", "HOME=/root", func(*Config) {}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			got, err := Parse(nil, "", []string{tc.env})
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s:\n got  %+v\nwant %+v", tc.env, got, want)
			}
		})
	}
}

// Kinds no key uses yet, for the next one that does.
func TestSetTextKinds(t *testing.T) {
	var v struct {
		F float64
		I int64
	}
	rv := reflect.ValueOf(&v).Elem()
	if err := setText(rv.Field(0), " 1.5 "); err != nil || v.F != 1.5 {
		t.Errorf("float64: %v %v", v.F, err)
	}
	if err := setText(rv.Field(1), "-9000000000"); err != nil || v.I != -9e9 {
		t.Errorf("int64: %v %v", v.I, err)
	}
	if err := setText(rv.Field(0), "x"); err == nil || err.Error() != `must be a number, got "x"` {
		t.Errorf("float64 error: %v", err)
	}
}

func TestEnvCombined(t *testing.T) {
	c, err := Parse(nil, "", []string{
		"LIVEGRID_PUBLISH_AUTH=token",
		"LIVEGRID_PUBLISH_TOKEN_SECRET=0123456789abcdef0123456789abcdef",
		"LIVEGRID_REDIS_URL=redis://127.0.0.1:6379/0",
		"LIVEGRID_LOG_LEVEL=warn", "LIVEGRID_LOG_LEVEL=debug", // the last one wins
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Publish.Auth != AuthToken || len(c.Publish.TokenSecret) != 32 || c.Redis.URL == "" || c.Log.Level != "debug" {
		t.Errorf("got %+v", c)
	}
	if err := c.ValidateRole(RoleWorker); err != nil {
		t.Error(err)
	}
}

func TestEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		env, source, key, want string
	}{
		{"LIVEGRID_HTTP_ADR=:1", "LIVEGRID_HTTP_ADR", "",
			"config: LIVEGRID_HTTP_ADR: is not a livegrid setting; LIVEGRID_HTTP_* are LIVEGRID_HTTP_ADDR, LIVEGRID_HTTP_TLS_CERT, LIVEGRID_HTTP_TLS_KEY, LIVEGRID_HTTP_CORS_ORIGINS"},
		{"LIVEGRID_NOPE=1", "LIVEGRID_NOPE", "", "config: LIVEGRID_NOPE: is not a livegrid setting; see deploy/livegrid.yaml"},
		{"LIVEGRID_HTTP=x", "LIVEGRID_HTTP", "", "LIVEGRID_HTTP: is not a livegrid setting"},
		{"LIVEGRID_PUBLISH_KEYS=a:b", "LIVEGRID_PUBLISH_KEYS", "publish.keys", "'publish.keys' can be set only in the config file"},
		{"LIVEGRID_PULL=x", "LIVEGRID_PULL", "pull", "'pull' can be set only in the config file"},
		{"LIVEGRID_SEGMENTS_DURATION=fast", "LIVEGRID_SEGMENTS_DURATION", "segments.duration",
			`config: LIVEGRID_SEGMENTS_DURATION: 'segments.duration' must be a duration like 2s or 1m30s, got "fast"`},
		{"LIVEGRID_SEGMENTS_DURATION=20s", "LIVEGRID_SEGMENTS_DURATION", "segments.duration",
			"config: LIVEGRID_SEGMENTS_DURATION: 'segments.duration' must be between 1s and 10s, got 20s"},
		{"LIVEGRID_PACKAGER_WINDOW=6.5", "LIVEGRID_PACKAGER_WINDOW", "packager.window", `'packager.window' must be a whole number, got "6.5"`},
		{"LIVEGRID_PUBLISH_TAKEOVER=yes", "LIVEGRID_PUBLISH_TAKEOVER", "publish.takeover", `'publish.takeover' must be true or false, got "yes"`},
		{"LIVEGRID_STORE_BUFFER_BYTES=big", "LIVEGRID_STORE_BUFFER_BYTES", "store.buffer_bytes", `'store.buffer_bytes' must be a size like 256MiB`},
		{"LIVEGRID_PUBLISH_AUTH=token", "", "publish.token_secret", "'publish.token_secret' must be at least 32 characters"},
		{"LIVEGRID_EDGE_ORIGINS=http://a:1,ftp://b", "LIVEGRID_EDGE_ORIGINS", "edge.origins[1]", `'edge.origins[1]' must be an http:// or https:// base URL`},
	} {
		t.Run(tc.env, func(t *testing.T) {
			_, err := Parse(nil, "", []string{"PATH=/bin", tc.env})
			checkErr(t, err, tc.want)
			var e *Error
			if !errors.As(err, &e) || e.Source != tc.source || e.Key != tc.key {
				t.Errorf("got %#v, want source %q key %q", e, tc.source, tc.key)
			}
		})
	}
}
