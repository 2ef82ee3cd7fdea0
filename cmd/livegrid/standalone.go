package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/livegrid/livegrid/coordinator"
	"github.com/livegrid/livegrid/internal/config"
)

// runStandalone is `livegrid standalone`: coordinator, one worker and the
// origin in one process, with an embedded Redis and the file store.
func runStandalone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("standalone", "standalone [--config FILE] [--rtmp-addr A] [--http-addr A] [--data-dir D]", stderr)
	cfgPath := config.AddFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	if err := cfg.ApplyFlags(fs); err != nil {
		return err
	}
	log, err := configLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	tuneScheduler()
	node, err := coordinator.NewStandalone(cfg, log)
	if err != nil {
		return err
	}
	return node.Run(ctx)
}

// configLogger builds the process logger from log.level and log.format.
func configLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("'log.level' must be debug, info, warn or error, not %q", c.Level)
	}
	opts := &slog.HandlerOptions{Level: l}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
