package main

import (
	"context"
	"io"

	"github.com/livegrid/livegrid/coordinator"
	"github.com/livegrid/livegrid/internal/config"
)

// runWorker is `livegrid worker`: transcodes segments from a cluster's
// Redis queue into its shared store.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("worker", "worker --redis-url redis://HOST:6379 --store-url s3://BUCKET?endpoint=URL [--concurrency N] [--config FILE]", stderr)
	cl := addClusterFlags(fs, true)
	cfg, err := loadRoleConfig(fs, args, cl, config.RoleWorker)
	if err != nil {
		return err
	}
	log, err := configLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	tuneScheduler()
	w, err := coordinator.NewWorker(cfg, log)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}
