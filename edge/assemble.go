package edge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/livegrid/livegrid/coordinator/ingest"
	"github.com/livegrid/livegrid/edge/flvrelay"
	"github.com/livegrid/livegrid/internal/config"
	"github.com/livegrid/livegrid/internal/stats"
)

// Assemble is the edge role's composition root: New plus the HTTP-FLV
// relay (one upstream per stream, GOP cache, failover), RTMP play from the
// same relay, and viewer statistics, reported to the cluster through
// Redis when redis.url is set.
func Assemble(cfg *config.Config, log *slog.Logger) (*Edge, error) {
	e, err := New(cfg, log)
	if err != nil {
		return nil, err
	}
	log = e.log
	tracker := stats.NewTracker(stats.Config{})
	relay, err := flvrelay.New(flvrelay.Config{
		Origins: cfg.Edge.Origins, PrepareRequest: e.PrepareOriginRequest,
		Logger: log.With("component", "flvrelay"),
		OnViewer: func(stream, protocol, remoteAddr string) func(int64) {
			name, _, _ := strings.Cut(stream, "/")
			s := tracker.Open(name, stats.FLV, hostOf(remoteAddr))
			return func(n int64) {
				s.Add(n)
				s.Close()
			}
		},
	})
	if err != nil {
		e.closePolicy()
		return nil, fmt.Errorf("edge: %w", err)
	}
	e.FLV = relay
	e.RTMP = &ingest.Server{
		Hub: relay.Hub(), Auth: ingest.DenyAll, OnPlay: relay.Acquire, AuthPlay: e.policy.AuthorizePlay,
		App: cfg.RTMP.App, Log: log.With("component", "rtmp-play"),
	}
	trusted := e.policy.TrustedProxies
	e.Observe = func(r *http.Request, stream, protocol string, status int, bytes int64) {
		if stream == "" || (status != http.StatusOK && status != http.StatusPartialContent) {
			return
		}
		var p stats.Protocol
		switch protocol {
		case ProtocolHLS:
			p = stats.HLS
		case ProtocolDASH:
			p = stats.DASH
		case ProtocolSegment:
			p = "" // the protocol of the client's last manifest
		default:
			return // FLV viewers are counted per connection by the relay
		}
		tracker.ObserveHTTP(stream, p, stats.ClientIP(r, trusted), r.UserAgent(), bytes)
	}
	e.Stats = tracker
	e.stop = append(e.stop, relay.Close)
	if cfg.Redis.URL != "" {
		ropts, err := cfg.Redis.UniversalOptions()
		if err != nil {
			return nil, fmt.Errorf("edge: 'redis.url' %w", err)
		}
		rdb := redis.NewUniversalClient(ropts)
		rep := &stats.Reporter{Redis: rdb, Tracker: tracker, Node: "edge-" + cfg.WorkerID(), Log: log.With("component", "viewer-report")}
		e.background = append(e.background, func(ctx context.Context) {
			if err := rep.Run(ctx); err != nil {
				log.Warn("viewer reports stopped", "err", err)
			}
		})
		e.stop = append(e.stop, rdb.Close)
	}
	return e, nil
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
