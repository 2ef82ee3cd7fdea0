package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"strings"

	"github.com/livegrid/livegrid/edge"
	"github.com/livegrid/livegrid/internal/config"
)

// runEdge is `livegrid edge`: the viewer-facing relay in front of one or
// more origins.
func runEdge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("edge", "edge --origin URL[,URL...] [--http-addr A] [--rtmp-addr A] [--config FILE] [--cache-bytes N] [--origin-timeout D]", stderr)
	cfg, err := loadEdgeConfig(fs, args)
	if err != nil {
		return err
	}
	log, err := configLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	e, err := edge.Assemble(cfg, log)
	if err != nil {
		return err
	}
	return e.Run(ctx)
}

// edgeFlagKeys are the edge's own flags and the keys they set.
var edgeFlagKeys = map[string]string{
	"origin":         "edge.origins",
	"cache-bytes":    "edge.cache_bytes",
	"origin-timeout": "edge.origin_timeout",
	"log-level":      "log.level",
	"log-format":     "log.format",
}

// loadEdgeConfig parses args, loads --config and LIVEGRID_* variables,
// lets the flags given override them, and checks what the edge needs. A
// refused value names the flag it came from.
func loadEdgeConfig(fs *flag.FlagSet, args []string) (*config.Config, error) {
	cfgPath := config.AddFlags(fs)
	def := config.Default()
	origins := fs.String("origin", "", "origin base URLs, comma-separated, tried in order: http://origin-1:8080,http://origin-2:8080 (edge.origins)")
	cacheBytes := fs.String("cache-bytes", def.Edge.CacheBytes.String(), "memory for cached playlists and segments, like 512MiB; 0 turns the cache off (edge.cache_bytes)")
	originTimeout := fs.Duration("origin-timeout", def.Edge.OriginTimeout, "one origin request; then the next origin is tried (edge.origin_timeout)")
	logLevel := fs.String("log-level", def.Log.Level, "log level: debug, info, warn, error (log.level)")
	logFormat := fs.String("log-format", def.Log.Format, "log format: text or json (log.format)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return nil, err
	}
	var flagErr error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "origin":
			cfg.Edge.Origins = nil
			for _, o := range strings.Split(*origins, ",") {
				if o = strings.TrimSpace(o); o != "" {
					cfg.Edge.Origins = append(cfg.Edge.Origins, o)
				}
			}
		case "cache-bytes":
			n, err := config.ParseByteSize(*cacheBytes)
			if err != nil {
				flagErr = &config.Error{Source: "--cache-bytes", Key: "edge.cache_bytes", Msg: err.Error()}
			}
			cfg.Edge.CacheBytes = n
		case "origin-timeout":
			cfg.Edge.OriginTimeout = *originTimeout
		case "log-level":
			cfg.Log.Level = *logLevel
		case "log-format":
			cfg.Log.Format = *logFormat
		}
	})
	if flagErr != nil {
		return nil, flagErr
	}
	// ApplyFlags applies the config.AddFlags flags and validates the whole.
	if err := cfg.ApplyFlags(fs); err != nil {
		return nil, nameFlag(fs, err)
	}
	if err := cfg.ValidateRole(config.RoleEdge); err != nil {
		if e := (*config.Error)(nil); errors.As(err, &e) && e.Source == "" {
			e.Msg += " (--origin or edge.origins)"
		}
		return nil, err
	}
	return cfg, nil
}

// nameFlag points a config error about a key one of the edge's flags set
// at that flag.
func nameFlag(fs *flag.FlagSet, err error) error {
	var e *config.Error
	if !errors.As(err, &e) || e.Source != "" {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		key, ok := edgeFlagKeys[f.Name]
		if ok && (e.Key == key || strings.HasPrefix(e.Key, key+"[")) {
			e.Source = "--" + f.Name
		}
	})
	return err
}
