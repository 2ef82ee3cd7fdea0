package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/profiles"
	"github.com/livegrid/livegrid/worker/transcode"
)

// Standalone is the single-process node: the coordinator role and the
// worker role on an embedded Redis (miniredis) for the queue and the
// result log, and the store (a local folder by default).
type Standalone struct {
	node
}

// NewStandalone returns a standalone node for cfg, which Load (and
// ApplyFlags) validated; start it with Run.
func NewStandalone(cfg *config.Config, log *slog.Logger) (*Standalone, error) {
	if err := cfg.ValidateRole(config.RoleStandalone); err != nil {
		return nil, err
	}
	if !transcode.HasLibav {
		return nil, errNoLibav
	}
	return &Standalone{node: newNode(cfg, log, "standalone")}, nil
}

// Run starts everything and serves until ctx ends, then shuts down in
// order: ingest, segmenters (flushed), worker (drained), scheduler,
// packager, HTTP, Redis. Every goroutine it starts has ended when it returns.
func (s *Standalone) Run(ctx context.Context) error {
	cfg, log := s.cfg, s.log

	// Redis: the configured one, or an embedded miniredis.
	ropts := &redis.UniversalOptions{}
	if cfg.Redis.URL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("standalone: start embedded redis: %w", err)
		}
		defer mr.Close()
		ropts.Addrs = []string{mr.Addr()}
		log.Info("embedded redis", "addr", mr.Addr())
	} else {
		o, err := cfg.Redis.UniversalOptions()
		if err != nil {
			return fmt.Errorf("standalone: 'redis.url' %w", err)
		}
		ropts = o
	}

	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return fmt.Errorf("standalone: data dir: %w", err)
		}
	}
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("standalone: %w", err)
	}
	defer st.Close()
	return s.serve(ctx, ropts, st, newWorker(cfg, log, ropts, st))
}

func encoderKind(s string) profiles.EncoderKind {
	if s == "" || s == config.EncoderAuto {
		return ""
	}
	return profiles.EncoderKind(s)
}
