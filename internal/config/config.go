// Package config is the configuration every livegrid role takes: defaults,
// then a strict YAML file (--config), then LIVEGRID_* environment
// variables, then explicitly set command-line flags, checked by Validate.
//
// A role's main does:
//
//	fs := flag.NewFlagSet("standalone", flag.ContinueOnError)
//	path := config.AddFlags(fs)
//	if err := fs.Parse(args); err != nil { ... }
//	cfg, err := config.Load(*path, os.Environ())
//	if err == nil {
//		err = cfg.ApplyFlags(fs) // validates again
//	}
//	if err == nil {
//		err = cfg.ValidateRole(config.RoleStandalone)
//	}
//
// Every key has the yaml name written in its struct tag; the environment
// variable is LIVEGRID_ and the key path in upper case with '_' for '.'
// (segments.duration is LIVEGRID_SEGMENTS_DURATION). To add a key, add the
// field with its yaml tag and one-line comment, its default in Default,
// the same key with a comment in deploy/livegrid.yaml, and its rule in
// Validate; the tests then check the rest (env name, sample == defaults).
package config

import (
	"cmp"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/livegrid/livegrid/internal/queue"
)

// Config is the whole configuration. Zero values are not defaults: start
// from Default (Load does).
type Config struct {
	Log       Log       `yaml:"log"`
	HTTP      HTTP      `yaml:"http"`
	RTMP      RTMP      `yaml:"rtmp"`
	DataDir   string    `yaml:"data_dir"` // local state: the file store, recordings
	Store     Store     `yaml:"store"`
	Redis     Redis     `yaml:"redis"`
	Segments  Segments  `yaml:"segments"`
	Packager  Packager  `yaml:"packager"`
	Publish   Publish   `yaml:"publish"`
	Play      Play      `yaml:"play"`
	Transcode Transcode `yaml:"transcode"`
	Pull      []Pull    `yaml:"pull"` // streams the coordinator pulls instead of waiting for a push
	Worker    Worker    `yaml:"worker"`
	Edge      Edge      `yaml:"edge"`
}

// Log configures the process logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error
	Format string `yaml:"format"` // text or json
}

// HTTP is the HTTP server: playback, management API, metrics, health.
type HTTP struct {
	Addr        string   `yaml:"addr"`         // listen address
	TLSCert     string   `yaml:"tls_cert"`     // PEM certificate file; with tls_key serves HTTPS
	TLSKey      string   `yaml:"tls_key"`      // PEM key file
	CORSOrigins []string `yaml:"cors_origins"` // origins allowed to fetch playlists and segments; "*" for any
}

// RTMP is the RTMP server: publish and play.
type RTMP struct {
	Addr        string        `yaml:"addr"`         // listen address
	App         string        `yaml:"app"`          // application name in rtmp://HOST/{app}/{stream}
	IdleTimeout time.Duration `yaml:"idle_timeout"` // a publisher silent this long is dropped
}

// Store is the object store for segments, playlists and recordings.
type Store struct {
	URL         string        `yaml:"url"`          // file:///dir or s3://bucket?endpoint=...; empty: {data_dir}/store
	Retention   time.Duration `yaml:"retention"`    // how long segments are kept for look-back; 0 keeps them
	BufferBytes ByteSize      `yaml:"buffer_bytes"` // uploads held in memory while the store is down
}

// Redis is the queue and live-state server of a cluster.
type Redis struct {
	// URL is redis://[user:password@]host:port[/db] (rediss:// for TLS).
	// A master_name query parameter makes it a Sentinel URL: the host and
	// addr=host:port parameters name the sentinels. Empty: standalone
	// embeds one; the other roles need it.
	URL string `yaml:"url"`
}

// Segments shapes the source segments cut from a live stream.
type Segments struct {
	Duration    time.Duration `yaml:"duration"`     // target: cut at the first keyframe after it
	MaxDuration time.Duration `yaml:"max_duration"` // cut here even without a keyframe
}

// Packager shapes the live playlists.
type Packager struct {
	Window  int           `yaml:"window"`   // segments in a live playlist
	Grace   time.Duration `yaml:"grace"`    // how long a stream waits for its publisher to come back
	MaxHold time.Duration `yaml:"max_hold"` // how long a segment waits behind a missing one
}

// Publish authorisation modes.
const (
	AuthNone  = "none"  // anyone may publish
	AuthKey   = "key"   // ?key= must match publish.key or publish.keys[stream]
	AuthToken = "token" // ?token= must be signed with publish.token_secret
)

// Publish decides who may publish.
type Publish struct {
	Auth        string            `yaml:"auth"`         // none, key or token
	Key         string            `yaml:"key"`          // with auth: key, the key of every stream not in keys
	Keys        map[string]string `yaml:"keys"`         // with auth: key, stream name -> its key
	TokenSecret string            `yaml:"token_secret"` // with auth: token, the HMAC secret (32+ characters)
	Takeover    bool              `yaml:"takeover"`     // a second publisher of a live stream replaces the first
}

// Play decides who may watch, on the origin and on edges alike. Every
// rule left empty does not apply, so the defaults let everyone watch.
type Play struct {
	TokenSecret       string        `yaml:"token_secret"`        // set: every play needs ?expires=&token= signed with it (livegrid token sign)
	RefererAllow      []string      `yaml:"referer_allow"`       // hosts (example.com, *.example.com) whose pages may embed streams
	RefererDeny       []string      `yaml:"referer_deny"`        // hosts refused even when allowed
	RefererAllowEmpty bool          `yaml:"referer_allow_empty"` // a request without a Referer passes the referer rules
	GeoIPDB           string        `yaml:"geoip_db"`            // MaxMind-format .mmdb file; needed by the country and region lists
	AllowCountries    []string      `yaml:"allow_countries"`     // ISO 3166-1 alpha-2 codes; set: only these
	DenyCountries     []string      `yaml:"deny_countries"`      // ISO 3166-1 alpha-2 codes refused
	AllowRegions      []string      `yaml:"allow_regions"`       // ISO 3166-2 codes (DE-BY); set: only these
	DenyRegions       []string      `yaml:"deny_regions"`        // ISO 3166-2 codes refused
	AllowCIDRs        []string      `yaml:"allow_cidrs"`         // set: only clients in these networks
	DenyCIDRs         []string      `yaml:"deny_cidrs"`          // clients refused
	TrustedProxies    []string      `yaml:"trusted_proxies"`     // load balancers whose X-Forwarded-For is believed
	CallbackURL       string        `yaml:"callback_url"`        // set: each play and publish is POSTed here; 2xx allows, 4xx denies
	CallbackTimeout   time.Duration `yaml:"callback_timeout"`    // one callback call
	CallbackCache     time.Duration `yaml:"callback_cache"`      // how long an answer is reused
	CallbackFailOpen  bool          `yaml:"callback_fail_open"`  // allow when the callback times out or fails
}

// EncoderAuto lets each rung use its ladder's encoder order.
const EncoderAuto = "auto"

// Transcode picks each stream's ABR ladder and encoder.
type Transcode struct {
	Profile string `yaml:"profile"` // ladder of streams no rule matches: a builtin name or a .yaml file
	Rules   []Rule `yaml:"rules"`   // first match picks the ladder
	Encoder string `yaml:"encoder"` // auto, or one of nvenc, qsv, vaapi, software for every rung
}

// Rule picks a ladder by stream name.
type Rule struct {
	// Match is a glob (cam-*) or, after '~', a regular expression
	// (~^sports-[0-9]+$) on the stream name.
	Match   string `yaml:"match"`
	Profile string `yaml:"profile"` // builtin ladder name or .yaml file
}

// Pull is a stream the coordinator pulls from a URL.
type Pull struct {
	Stream string `yaml:"stream"` // name it is published under
	URL    string `yaml:"url"`    // rtmp(s)://, or http(s):// for HTTP-FLV or HLS
}

// Worker is the transcode worker (its own role, or inside standalone).
type Worker struct {
	ID              string        `yaml:"id"`               // stable name and queue; empty: the host name
	Concurrency     int           `yaml:"concurrency"`      // segments transcoded at once
	SharedQueue     string        `yaml:"shared_queue"`     // queue every worker takes from
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"` // how long a stopping worker lets tasks finish
}

// Edge is the viewer-facing relay.
type Edge struct {
	Origins       []string      `yaml:"origins"`        // origin base URLs, tried in order
	CacheBytes    ByteSize      `yaml:"cache_bytes"`    // memory for cached segments and playlists; 0 disables
	OriginTimeout time.Duration `yaml:"origin_timeout"` // one origin request; then the next origin
}

// Default returns the defaults: a standalone node that needs no other
// service. deploy/livegrid.yaml must load to exactly this.
func Default() *Config {
	return &Config{
		Log:     Log{Level: "info", Format: "text"},
		HTTP:    HTTP{Addr: ":8080"},
		RTMP:    RTMP{Addr: ":1935", App: "live", IdleTimeout: 30 * time.Second},
		DataDir: "./data",
		Store: Store{
			Retention:   7 * 24 * time.Hour,
			BufferBytes: 256 * MiB,
		},
		Segments: Segments{Duration: 2 * time.Second, MaxDuration: 10 * time.Second},
		Packager: Packager{Window: 6, Grace: 10 * time.Second, MaxHold: 30 * time.Second},
		Publish:  Publish{Auth: AuthNone},
		Play:     Play{RefererAllowEmpty: true, CallbackTimeout: 2 * time.Second, CallbackCache: 10 * time.Second},
		Transcode: Transcode{
			Profile: "default",
			Encoder: EncoderAuto,
		},
		Worker: Worker{
			Concurrency:     1,
			SharedQueue:     queue.SharedQueue,
			ShutdownTimeout: 10 * time.Second,
		},
		Edge: Edge{CacheBytes: 512 * MiB, OriginTimeout: 5 * time.Second},
	}
}

// StoreURL is store.url, or when that is empty the file store in
// {data_dir}/store.
func (c *Config) StoreURL() string {
	if c.Store.URL != "" {
		return c.Store.URL
	}
	dir := filepath.ToSlash(filepath.Join(c.DataDir, "store"))
	if !filepath.IsAbs(dir) && safeRelPath.MatchString(dir) {
		return "file:" + dir // stays relative to the working directory, like data_dir
	}
	// A relative file URL cannot be escaped, so an unusual one goes absolute.
	if abs, err := filepath.Abs(dir); err == nil {
		dir = filepath.ToSlash(abs)
	}
	return (&url.URL{Scheme: "file", Path: dir}).String()
}

var safeRelPath = regexp.MustCompile(`^[A-Za-z0-9._-][A-Za-z0-9._/-]*$`)

// WorkerID is worker.id, or when that is empty the host name (or
// "worker" where the host name is no valid queue name).
func (c *Config) WorkerID() string {
	if c.Worker.ID != "" {
		return c.Worker.ID
	}
	h, err := os.Hostname()
	if err != nil || !queue.ValidName(h) {
		return "worker"
	}
	return h
}

// ProfileFor returns the ladder for a stream: the profile of the first
// rule that matches its name, else transcode.profile.
func (t *Transcode) ProfileFor(stream string) string {
	for _, r := range t.Rules {
		if ok, _ := r.Matches(stream); ok {
			return r.Profile
		}
	}
	return t.Profile
}

// Matches reports whether the rule matches a stream name; the error is
// for a malformed pattern, which Validate refuses.
func (r Rule) Matches(stream string) (bool, error) {
	if expr, ok := strings.CutPrefix(r.Match, "~"); ok {
		re, err := regexp.Compile(expr)
		if err != nil {
			return false, err
		}
		return re.MatchString(stream), nil
	}
	return path.Match(r.Match, stream)
}

// Role is a process role; ValidateRole checks what each one needs.
type Role string

// Roles.
const (
	RoleStandalone  Role = "standalone"
	RoleCoordinator Role = "coordinator"
	RoleWorker      Role = "worker"
	RoleEdge        Role = "edge"
)

// ValidateRole checks what a role needs beyond Validate: a cluster
// coordinator or worker needs Redis, an edge its origins.
func (c *Config) ValidateRole(role Role) error {
	switch role {
	case RoleStandalone:
		return nil
	case RoleCoordinator, RoleWorker:
		if c.Redis.URL == "" {
			return bad("redis.url", "is required by the %s role (a cluster shares Redis)", role)
		}
		return nil
	case RoleEdge:
		if len(c.Edge.Origins) == 0 {
			return bad("edge.origins", "must name at least one origin for the edge role")
		}
		return nil
	}
	return &Error{Msg: fmt.Sprintf("unknown role %q", cmp.Or(string(role), "(empty)"))}
}
