package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis layout: each node writes a hash of its streams (field: stream
// name, value: JSON of a streamReport) that expires unless refreshed, and
// keeps its name in a sorted set scored by the time of its last report,
// so readers find the nodes without SCAN (which Redis Cluster spreads
// over its masters).
const (
	nodeKeyPrefix = "livegrid:viewers:node:"
	nodesKey      = "livegrid:viewers:nodes"
)

// NodeKey is the Redis key of a node's report.
func NodeKey(node string) string { return nodeKeyPrefix + node }

// DefaultReportInterval is how often a Reporter writes; a report lives
// three intervals.
const DefaultReportInterval = 2 * time.Second

// Reporter writes a Tracker's snapshot to Redis every Interval, so the
// coordinators' Aggregators see this node's viewers. A node that stops
// reporting drops out when its report expires (3 intervals).
type Reporter struct {
	Redis   redis.UniversalClient
	Tracker *Tracker
	// Node names this node in the cluster; unique per process.
	Node string
	// Interval between reports; default DefaultReportInterval.
	Interval time.Duration
	// Log receives failed reports; nil discards.
	Log *slog.Logger
}

func (r *Reporter) interval() time.Duration {
	if r.Interval <= 0 {
		return DefaultReportInterval
	}
	return r.Interval
}

// Run reports every Interval until ctx ends, then removes the node's
// report so its viewers leave the totals at once. A failed report is
// logged and retried at the next tick; Run returns nil.
func (r *Reporter) Run(ctx context.Context) error {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "viewer-reporter", "node", r.Node)
	tick := time.NewTicker(r.interval())
	defer tick.Stop()
	failing := false
	for {
		err := r.Report(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			log.Warn("viewer report failed", "err", err)
			failing = true
		case err == nil && failing:
			log.Info("viewer reports resumed")
			failing = false
		}
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := r.Leave(lctx); err != nil {
				log.Warn("viewer report not removed", "err", err)
			}
			return nil
		case <-tick.C:
		}
	}
}

// Report writes the Tracker's snapshot once.
func (r *Reporter) Report(ctx context.Context) error {
	reps := r.Tracker.reports()
	key := NodeKey(r.Node)
	ttl := 3 * r.interval()
	fields := make([]any, 0, 2*len(reps))
	for _, rep := range reps {
		b, err := json.Marshal(rep)
		if err != nil {
			return fmt.Errorf("stats: report %s: %w", rep.Stream, err)
		}
		fields = append(fields, rep.Stream, b)
	}
	// One key in a MULTI, so readers see the whole report or the last;
	// the index is another key (another cluster slot), written after.
	_, err := r.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		if len(fields) > 0 {
			p.HSet(ctx, key, fields...)
			p.PExpire(ctx, key, ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("stats: report %s: %w", r.Node, err)
	}
	now := r.Tracker.cfg.Now()
	if err := r.Redis.ZAdd(ctx, nodesKey, redis.Z{Score: float64(now.UnixMilli()), Member: r.Node}).Err(); err != nil {
		return fmt.Errorf("stats: report %s: index: %w", r.Node, err)
	}
	return nil
}

// Leave removes the node's report.
func (r *Reporter) Leave(ctx context.Context) error {
	if err := r.Redis.Del(ctx, NodeKey(r.Node)).Err(); err != nil {
		return fmt.Errorf("stats: leave %s: %w", r.Node, err)
	}
	if err := r.Redis.ZRem(ctx, nodesKey, r.Node).Err(); err != nil {
		return fmt.Errorf("stats: leave %s: index: %w", r.Node, err)
	}
	return nil
}

// DefaultForgetNodes is how long after its last report a node leaves the
// index; its report itself expired long before.
const DefaultForgetNodes = 10 * time.Minute

// Aggregator merges the viewer reports of every node in Redis: viewers,
// plays, bytes and bandwidth add up, addresses and visitors are unions,
// the start time is the earliest.
type Aggregator struct {
	Redis redis.UniversalClient
	// Local, when set, is this node's own Tracker, read directly instead
	// of through its report (fresher), whose node name is Self.
	Local *Tracker
	Self  string
	// Now is the clock for durations and the index; default time.Now.
	Now func() time.Time
	// ForgetNodes is how long after its last report a node is dropped
	// from the index; default DefaultForgetNodes.
	ForgetNodes time.Duration
	// MaxClientIPs caps the merged addresses per stream; default
	// DefaultMaxClientIPs.
	MaxClientIPs int
	// Live, when set, gives a live stream's start time, as Config.Live.
	Live func(stream string) (started time.Time, ok bool)
	// Log receives unreadable reports; nil discards.
	Log *slog.Logger
}

// Streams returns every stream any node reports, merged, sorted by name.
// On a Redis failure it still returns the Local streams, with the error.
func (a *Aggregator) Streams(ctx context.Context) ([]StreamStats, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	m := map[string]*merged{}
	if a.Local != nil {
		for _, rep := range a.Local.reports() {
			m[rep.Stream] = newMerged(rep)
		}
	}
	err := a.readNodes(ctx, now(), m)
	limit := a.MaxClientIPs
	if limit <= 0 {
		limit = DefaultMaxClientIPs
	}
	out := make([]StreamStats, 0, len(m))
	for _, mg := range m {
		out = append(out, mg.stats(now(), limit, a.Live))
	}
	slices.SortFunc(out, func(x, y StreamStats) int { return strings.Compare(x.Stream, y.Stream) })
	return out, err
}

// Stream returns one stream merged over every node.
func (a *Aggregator) Stream(ctx context.Context, name string) (StreamStats, bool, error) {
	all, err := a.Streams(ctx)
	for _, s := range all {
		if s.Stream == name {
			return s, true, err
		}
	}
	return StreamStats{}, false, err
}

// readNodes merges the reports of every node but Self into m.
func (a *Aggregator) readNodes(ctx context.Context, now time.Time, m map[string]*merged) error {
	if a.Redis == nil {
		return nil
	}
	forget := a.ForgetNodes
	if forget <= 0 {
		forget = DefaultForgetNodes
	}
	cut := strconv.FormatInt(now.Add(-forget).UnixMilli(), 10)
	if err := a.Redis.ZRemRangeByScore(ctx, nodesKey, "-inf", "("+cut).Err(); err != nil {
		return fmt.Errorf("stats: prune nodes: %w", err)
	}
	nodes, err := a.Redis.ZRange(ctx, nodesKey, 0, -1).Result()
	if err != nil {
		return fmt.Errorf("stats: list nodes: %w", err)
	}
	nodes = slices.DeleteFunc(nodes, func(n string) bool { return a.Local != nil && n == a.Self })
	if len(nodes) == 0 {
		return nil
	}
	pipe := a.Redis.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(nodes))
	for i, n := range nodes {
		cmds[i] = pipe.HGetAll(ctx, NodeKey(n))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("stats: read reports: %w", err)
	}
	var bad error
	for i, cmd := range cmds {
		for stream, v := range cmd.Val() {
			var rep streamReport
			if err := json.Unmarshal([]byte(v), &rep); err != nil || rep.Stream != stream {
				bad = fmt.Errorf("stats: node %s stream %s: unreadable report: %w", nodes[i], stream, err)
				continue
			}
			if mg := m[stream]; mg != nil {
				mg.add(rep)
			} else {
				m[stream] = newMerged(rep)
			}
		}
	}
	if bad != nil && a.Log != nil {
		a.Log.Warn("viewer reports skipped", "err", bad)
	}
	return nil
}

// merged is one stream's reports added up.
type merged struct {
	s   StreamStats
	vis visitors
	// unsized counts the visitors of reports without a set, which can
	// only be added.
	unsized int64
	ips     map[string]struct{}
}

func newMerged(r streamReport) *merged {
	mg := &merged{s: r.StreamStats, ips: map[string]struct{}{}}
	mg.s.ClientIPs = nil
	mg.addSets(r)
	return mg
}

func (mg *merged) add(r streamReport) {
	s := &mg.s
	s.Viewers += r.Viewers
	s.PlaysTotal += r.PlaysTotal
	s.BytesOut += r.BytesOut
	s.BandwidthBps += r.BandwidthBps
	s.ByProtocol.FLV += r.ByProtocol.FLV
	s.ByProtocol.RTMP += r.ByProtocol.RTMP
	s.ByProtocol.HLS += r.ByProtocol.HLS
	s.ByProtocol.DASH += r.ByProtocol.DASH
	if !r.StartTime.IsZero() && (s.StartTime.IsZero() || r.StartTime.Before(s.StartTime)) {
		s.StartTime = r.StartTime
	}
	mg.addSets(r)
}

// addSets adds r's addresses and visitors.
func (mg *merged) addSets(r streamReport) {
	for _, ip := range r.ClientIPs {
		mg.ips[ip] = struct{}{}
	}
	if r.Visitors != nil {
		mg.vis.merge(r.Visitors)
	} else {
		mg.unsized += r.VisitorsTotal
	}
}

func (mg *merged) stats(now time.Time, limit int, live func(string) (time.Time, bool)) StreamStats {
	s := mg.s
	if live != nil {
		if started, ok := live(s.Stream); ok && !started.IsZero() {
			s.StartTime = started
		}
	}
	s.VisitorsTotal = mg.vis.count() + mg.unsized
	s.DurationS = durationSeconds(now.Sub(s.StartTime))
	s.ClientIPs = sortedIPs(mg.ips, limit)
	return s
}
