package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/livegrid/livegrid/coordinator"
	"github.com/livegrid/livegrid/internal/config"
)

// runCoordinator is `livegrid coordinator`: ingest, segmenters, scheduler,
// packager and the origin of a cluster, on a shared Redis and store.
func runCoordinator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("coordinator", "coordinator --redis-url redis://HOST:6379 --store-url s3://BUCKET?endpoint=URL [--config FILE] [--rtmp-addr A] [--http-addr A] [--data-dir D]", stderr)
	cl := addClusterFlags(fs, false)
	cfg, err := loadRoleConfig(fs, args, cl, config.RoleCoordinator)
	if err != nil {
		return err
	}
	log, err := configLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	node, err := coordinator.NewCoordinator(cfg, log)
	if err != nil {
		return err
	}
	return node.Run(ctx)
}

// clusterFlags are the flags of the cluster roles beyond config.AddFlags.
type clusterFlags struct {
	cfgPath            *string
	redisURL, storeURL *string
	concurrency        *int // nil where the role has no worker
}

func addClusterFlags(fs *flag.FlagSet, worker bool) *clusterFlags {
	cl := &clusterFlags{cfgPath: config.AddFlags(fs)}
	cl.redisURL = fs.String("redis-url", "", "shared Redis, redis://HOST:6379 (redis.url)")
	cl.storeURL = fs.String("store-url", "", "shared object store, s3://BUCKET?endpoint=URL (store.url)")
	if worker {
		cl.concurrency = fs.Int("concurrency", config.Default().Worker.Concurrency, "segments transcoded at once (worker.concurrency)")
	}
	return cl
}

// loadRoleConfig parses args, loads --config and LIVEGRID_* variables, lets
// the flags given override them and checks what role needs.
func loadRoleConfig(fs *flag.FlagSet, args []string, cl *clusterFlags, role config.Role) (*config.Config, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	cfg, err := config.Load(*cl.cfgPath, os.Environ())
	if err != nil {
		return nil, err
	}
	var flagErr error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "redis-url":
			cfg.Redis.URL = *cl.redisURL
		case "store-url":
			cfg.Store.URL = *cl.storeURL
		case "concurrency":
			if *cl.concurrency < 1 {
				flagErr = fmt.Errorf("--concurrency: 'worker.concurrency' must be at least 1, not %d", *cl.concurrency)
			}
			cfg.Worker.Concurrency = *cl.concurrency
		}
	})
	if flagErr != nil {
		return nil, flagErr
	}
	// ApplyFlags applies the config.AddFlags flags and validates the whole.
	if err := cfg.ApplyFlags(fs); err != nil {
		return nil, err
	}
	if err := cfg.ValidateRole(role); err != nil {
		return nil, err
	}
	return cfg, nil
}
