package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Every rule, with the key its message names.
func TestValidate(t *testing.T) {
	secret := strings.Repeat("s", 32)
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		key    string // "" for a valid config
		want   string
	}{
		{"defaults", func(*Config) {}, "", ""},
		{"log.level", func(c *Config) { c.Log.Level = "verbose" }, "log.level", `'log.level' must be one of debug, info, warn, error, got "verbose"`},
		{"log.format", func(c *Config) { c.Log.Format = "xml" }, "log.format", `'log.format' must be one of text, json, got "xml"`},

		{"http.addr", func(c *Config) { c.HTTP.Addr = "8080" }, "http.addr", `'http.addr' must be a listen address like :8080 or 127.0.0.1:8080, got "8080"`},
		{"http.addr port", func(c *Config) { c.HTTP.Addr = ":99999" }, "http.addr", `'http.addr' must be a listen address`},
		{"http.addr ipv6", func(c *Config) { c.HTTP.Addr = "[::1]:8080" }, "", ""},
		{"http.tls_key missing", func(c *Config) { c.HTTP.TLSCert = "cert.pem" }, "http.tls_key", "'http.tls_key' must be set with 'http.tls_cert'"},
		{"http.tls_cert missing", func(c *Config) { c.HTTP.TLSKey = "key.pem" }, "http.tls_cert", "'http.tls_cert' must be set with 'http.tls_key'"},
		{"http tls", func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = "c.pem", "k.pem" }, "", ""},
		{"http.cors_origins", func(c *Config) { c.HTTP.CORSOrigins = []string{"*", "https://a.example.com/path"} }, "http.cors_origins[1]",
			`'http.cors_origins[1]' must be * or an origin like https://player.example.com, got "https://a.example.com/path"`},

		{"rtmp.addr", func(c *Config) { c.RTMP.Addr = "" }, "rtmp.addr", `'rtmp.addr' must be a listen address like :8080 or 127.0.0.1:8080, got ""`},
		{"rtmp.addr clash", func(c *Config) { c.RTMP.Addr = "0.0.0.0:8080" }, "rtmp.addr", `'rtmp.addr' must not use the port of 'http.addr' (:8080), got "0.0.0.0:8080"`},
		{"port 0 twice", func(c *Config) { c.RTMP.Addr, c.HTTP.Addr = "127.0.0.1:0", "127.0.0.1:0" }, "", ""},
		{"same port, other hosts", func(c *Config) { c.RTMP.Addr, c.HTTP.Addr = "10.0.0.1:80", "10.0.0.2:80" }, "", ""},
		{"rtmp.app", func(c *Config) { c.RTMP.App = "live/x" }, "rtmp.app", `'rtmp.app' must be 1 to 64 characters of [A-Za-z0-9._-], not starting with '.', got "live/x"`},
		{"rtmp.idle_timeout", func(c *Config) { c.RTMP.IdleTimeout = 0 }, "rtmp.idle_timeout", "'rtmp.idle_timeout' must be between 1s and 10m, got 0s"},

		{"data_dir", func(c *Config) { c.DataDir = " " }, "data_dir", `'data_dir' must be a directory, got " "`},
		{"store.url scheme", func(c *Config) { c.Store.URL = "ftp://x" }, "store.url", `'store.url' is not a store URL (file:///dir or s3://bucket?endpoint=...): scheme "ftp" is not supported`},
		{"store.url user info", func(c *Config) { c.Store.URL = "s3://key:secret@bucket" }, "store.url", "user information in the URL is not supported"},
		{"store.url s3", func(c *Config) { c.Store.URL = "s3://bucket?endpoint=http://127.0.0.1:9000" }, "", ""},
		{"store.retention negative", func(c *Config) { c.Store.Retention = -time.Hour }, "store.retention", "'store.retention' must be 0 (keep everything) or at least 1m, got -1h0m0s"},
		{"store.retention short", func(c *Config) { c.Store.Retention = time.Second }, "store.retention", "at least 1m, got 1s"},
		{"store.retention 0", func(c *Config) { c.Store.Retention = 0 }, "", ""},
		{"store.buffer_bytes", func(c *Config) { c.Store.BufferBytes = 1000 }, "store.buffer_bytes", "'store.buffer_bytes' must be at least 1MiB, got 1000B"},

		{"redis.url scheme", func(c *Config) { c.Redis.URL = "http://redis:6379" }, "redis.url", `'redis.url' must be a redis:// or rediss:// URL, got scheme "http"`},
		{"redis.url no host", func(c *Config) { c.Redis.URL = "redis:///0" }, "redis.url", "'redis.url' must name a host"},
		{"redis.url not a URL", func(c *Config) { c.Redis.URL = "redis://:pa ss@h:%zz" }, "redis.url", "'redis.url' is not a URL"},
		{"redis.url db", func(c *Config) { c.Redis.URL = "redis://:pw@h:6379/x" }, "redis.url", `'redis.url' invalid database number: "x"`},
		{"redis.url query", func(c *Config) { c.Redis.URL = "redis://h:6379?pool_fifo=true" }, "redis.url", `'redis.url' query parameter "pool_fifo" is not supported`},
		{"redis.url addr without sentinel", func(c *Config) { c.Redis.URL = "redis://h:6379?addr=h2:6379" }, "redis.url", `query parameter "addr" needs master_name`},
		{"redis.url empty master", func(c *Config) { c.Redis.URL = "redis://s:26379?master_name=" }, "redis.url", `"master_name" is empty`},
		{"redis.url sentinel", func(c *Config) { c.Redis.URL = "redis://s1:26379?master_name=m&addr=s2:26379" }, "", ""},

		{"segments.duration short", func(c *Config) { c.Segments.Duration = 500 * time.Millisecond }, "segments.duration", "'segments.duration' must be between 1s and 10s, got 500ms"},
		{"segments.duration long", func(c *Config) { c.Segments.Duration = 20 * time.Second }, "segments.duration", "'segments.duration' must be between 1s and 10s, got 20s"},
		{"segments.max_duration below", func(c *Config) { c.Segments.MaxDuration = time.Second }, "segments.max_duration", "'segments.max_duration' must be between 'segments.duration' (2s) and 1m, got 1s"},
		{"segments.max_duration above", func(c *Config) { c.Segments.MaxDuration = 2 * time.Minute }, "segments.max_duration", "got 2m0s"},

		{"packager.window", func(c *Config) { c.Packager.Window = 2 }, "packager.window", "'packager.window' must be between 3 and 1000 segments, got 2"},
		{"packager.grace", func(c *Config) { c.Packager.Grace = -time.Second }, "packager.grace", "'packager.grace' must be between 0s and 10m, got -1s"},
		{"packager.max_hold", func(c *Config) { c.Packager.MaxHold = time.Hour }, "packager.max_hold", "'packager.max_hold' must be between 1s and 10m, got 1h0m0s"},

		{"publish.auth", func(c *Config) { c.Publish.Auth = "password" }, "publish.auth", `'publish.auth' must be one of none, key, token, got "password"`},
		{"publish.key without auth", func(c *Config) { c.Publish.Key = "k" }, "publish.key", `'publish.key' is set but 'publish.auth' is "none"; set auth to "key" or remove it`},
		{"publish.keys without auth", func(c *Config) { c.Publish.Keys = map[string]string{"a": "k"} }, "publish.keys", `'publish.keys' is set but 'publish.auth' is "none"`},
		{"publish.token_secret without auth", func(c *Config) { c.Publish.TokenSecret = secret }, "publish.token_secret", `'publish.token_secret' is set but 'publish.auth' is "none"; set auth to "token"`},
		{"auth key without keys", func(c *Config) { c.Publish.Auth = AuthKey }, "publish.key", `'publish.key' or 'publish.keys' must be set when 'publish.auth' is "key"`},
		{"auth key", func(c *Config) { c.Publish.Auth, c.Publish.Key = AuthKey, "k" }, "", ""},
		{"publish.keys stream", func(c *Config) { c.Publish.Auth, c.Publish.Keys = AuthKey, map[string]string{".hidden": "k"} }, "publish.keys..hidden", "must name a stream"},
		{"publish.keys empty", func(c *Config) { c.Publish.Auth, c.Publish.Keys = AuthKey, map[string]string{"cam": ""} }, "publish.keys.cam", "'publish.keys.cam' must not be empty"},
		{"publish.token_secret short", func(c *Config) { c.Publish.Auth, c.Publish.TokenSecret = AuthToken, "short" }, "publish.token_secret",
			`'publish.token_secret' must be at least 32 characters when 'publish.auth' is "token", got 5`},
		{"auth token", func(c *Config) { c.Publish.Auth, c.Publish.TokenSecret = AuthToken, secret }, "", ""},

		{"transcode.profile", func(c *Config) { c.Transcode.Profile = "defualt" }, "transcode.profile", `'transcode.profile' must be a builtin ladder (default, hevc, mobile) or a .yaml ladder file, got "defualt"`},
		{"transcode.profile file", func(c *Config) { c.Transcode.Profile = "/etc/livegrid/ladder.yaml" }, "", ""},
		{"transcode.profile builtin:", func(c *Config) { c.Transcode.Profile = "builtin:mobile" }, "", ""},
		{"transcode.rules match empty", func(c *Config) { c.Transcode.Rules = []Rule{{Profile: "mobile"}} }, "transcode.rules[0].match", "'transcode.rules[0].match' must be a glob like cam-* or ~ and a regular expression"},
		{"transcode.rules bad glob", func(c *Config) { c.Transcode.Rules = []Rule{{Match: "cam-[", Profile: "mobile"}} }, "transcode.rules[0].match", "'transcode.rules[0].match' is not a valid pattern: syntax error in pattern"},
		{"transcode.rules bad regexp", func(c *Config) { c.Transcode.Rules = []Rule{{Match: "~(", Profile: "mobile"}} }, "transcode.rules[0].match", "'transcode.rules[0].match' is not a valid pattern: error parsing regexp"},
		{"transcode.rules profile", func(c *Config) { c.Transcode.Rules = []Rule{{Match: "*", Profile: ""}} }, "transcode.rules[0].profile", `'transcode.rules[0].profile' must be a builtin ladder`},
		{"transcode.encoder", func(c *Config) { c.Transcode.Encoder = "x264" }, "transcode.encoder", `'transcode.encoder' must be one of auto, nvenc, qsv, vaapi, software, got "x264"`},

		{"pull stream", func(c *Config) { c.Pull = []Pull{{Stream: "a b", URL: "rtmp://h/live/a"}} }, "pull[0].stream", `'pull[0].stream' must be 1 to 128 characters of [A-Za-z0-9._-], not starting with '.', got "a b"`},
		{"pull stream twice", func(c *Config) {
			c.Pull = []Pull{{Stream: "a", URL: "rtmp://h/live/a"}, {Stream: "a", URL: "https://h/a.m3u8"}}
		}, "pull[1].stream", `'pull[1].stream' repeats stream "a" of 'pull[0]'`},
		{"pull url", func(c *Config) { c.Pull = []Pull{{Stream: "a", URL: "srt://h:9000?key=secret"}} }, "pull[0].url", "'pull[0].url' must be an rtmp://, rtmps://, or http(s):// (HTTP-FLV or HLS) URL with a host"},
		{"pull ok", func(c *Config) { c.Pull = []Pull{{Stream: "a", URL: "http://h/live/a.flv"}} }, "", ""},

		{"worker.id", func(c *Config) { c.Worker.ID = "w/1" }, "worker.id", `'worker.id' must be empty (the host name) or 1 to 128 characters of [A-Za-z0-9._-], not starting with '.', got "w/1"`},
		{"worker.concurrency", func(c *Config) { c.Worker.Concurrency = 0 }, "worker.concurrency", "'worker.concurrency' must be between 1 and 256, got 0"},
		{"worker.shared_queue", func(c *Config) { c.Worker.SharedQueue = "" }, "worker.shared_queue", `'worker.shared_queue' must be 1 to 128 characters`},
		{"worker.shutdown_timeout", func(c *Config) { c.Worker.ShutdownTimeout = -1 }, "worker.shutdown_timeout", "'worker.shutdown_timeout' must be between 0s and 10m, got -1ns"},

		{"edge.origins", func(c *Config) { c.Edge.Origins = []string{"origin:8080"} }, "edge.origins[0]", `'edge.origins[0]' must be an http:// or https:// base URL like http://origin-1:8080, got "origin:8080"`},
		{"edge.origins twice", func(c *Config) { c.Edge.Origins = []string{"http://o:1", "http://o:1"} }, "edge.origins[1]", "'edge.origins[1]' repeats 'edge.origins[0]'"},
		{"edge.cache_bytes", func(c *Config) { c.Edge.CacheBytes = -1 }, "edge.cache_bytes", "'edge.cache_bytes' must not be negative, got -1"},
		{"edge.origin_timeout", func(c *Config) { c.Edge.OriginTimeout = 0 }, "edge.origin_timeout", "'edge.origin_timeout' must be between 100ms and 1m, got 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.modify(c)
			err := c.Validate()
			checkErr(t, err, tc.want)
			if err == nil {
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Key != tc.key {
				t.Errorf("error %#v, want key %q", err, tc.key)
			}
			if strings.Contains(err.Error(), "secret") && tc.key != "publish.token_secret" {
				t.Errorf("message repeats a secret: %v", err)
			}
		})
	}
}
