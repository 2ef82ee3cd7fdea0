package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Registry keeps worker heartbeats in Redis: a hash per worker that expires
// unless refreshed, and a set of the workers seen, so a reader finds a
// worker whose hash has expired (dead) as well as the live ones.
type Registry struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// DefaultHeartbeatTTL is how long a heartbeat hash outlives its last write.
const DefaultHeartbeatTTL = 10 * time.Second

// NewRegistry returns a Registry on rdb; ttl <= 0 means DefaultHeartbeatTTL.
// Freshness is the reader's decision (Heartbeat.LastSeen against its clock);
// the TTL only sweeps hashes of workers gone for good.
func NewRegistry(rdb redis.UniversalClient, ttl time.Duration) *Registry {
	if ttl <= 0 {
		ttl = DefaultHeartbeatTTL
	}
	return &Registry{rdb: rdb, ttl: ttl}
}

// Beat writes a heartbeat.
func (r *Registry) Beat(ctx context.Context, hb Heartbeat) error {
	key := HeartbeatKey(hb.ID)
	// Not a MULTI: the hash and the set may live on different cluster slots,
	// and a set entry without a hash only reads as a dead worker.
	pipe := r.rdb.Pipeline()
	pipe.HSet(ctx, key,
		"id", hb.ID,
		"capacity", hb.Capacity,
		"busy", hb.Busy,
		"encoders", strings.Join(hb.Encoders, ","),
		"active", strings.Join(hb.Active, ","),
		"draining", boolField(hb.Draining),
		"left", boolField(hb.Left),
		"last_seen", hb.LastSeen.UnixMilli())
	pipe.PExpire(ctx, key, r.ttl)
	pipe.SAdd(ctx, workersKey, hb.ID)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("queue: heartbeat %s: %w", hb.ID, err)
	}
	return nil
}

// Leave marks worker id as gone after a clean shutdown, keeping it in the
// set: readers see at once that it left, with nothing running, and take
// back what is left in its queue.
func (r *Registry) Leave(ctx context.Context, id string) error {
	key := HeartbeatKey(id)
	pipe := r.rdb.Pipeline()
	pipe.HSet(ctx, key, "id", id, "left", "1", "busy", 0, "active", "", "draining", "1")
	pipe.PExpire(ctx, key, r.ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("queue: leave %s: %w", id, err)
	}
	return nil
}

// Forget removes worker id from the set, once its queue is empty.
func (r *Registry) Forget(ctx context.Context, id string) error {
	if err := r.rdb.SRem(ctx, workersKey, id).Err(); err != nil {
		return fmt.Errorf("queue: forget %s: %w", id, err)
	}
	return nil
}

// Workers returns every worker in the set. One whose hash is gone comes back
// with only its ID: a zero LastSeen, which no clock finds fresh. One that
// left keeps its last LastSeen but has Left set.
func (r *Registry) Workers(ctx context.Context) ([]Heartbeat, error) {
	ids, err := r.rdb.SMembers(ctx, workersKey).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: list workers: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, HeartbeatKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue: read heartbeats: %w", err)
	}
	hbs := make([]Heartbeat, 0, len(ids))
	for i, id := range ids {
		hb := parseHeartbeat(cmds[i].Val())
		hb.ID = id
		hbs = append(hbs, hb)
	}
	return hbs, nil
}

// parseHeartbeat reads a heartbeat hash; a field that does not parse reads
// as zero, so a garbled hash looks like a dead or full worker, never a
// free one.
func parseHeartbeat(m map[string]string) Heartbeat {
	atoi := func(k string) int {
		n, _ := strconv.Atoi(m[k])
		return n
	}
	hb := Heartbeat{Capacity: atoi("capacity"), Busy: atoi("busy"), Draining: m["draining"] == "1", Left: m["left"] == "1"}
	if e := m["encoders"]; e != "" {
		hb.Encoders = strings.Split(e, ",")
	}
	if a := m["active"]; a != "" {
		hb.Active = strings.Split(a, ",")
	}
	if ms, err := strconv.ParseInt(m["last_seen"], 10, 64); err == nil && ms > 0 {
		hb.LastSeen = time.UnixMilli(ms)
	}
	return hb
}

func boolField(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
