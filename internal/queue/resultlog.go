package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ResultLog announces segment results on one Redis stream per live stream
// (ResultsKey), read through a consumer group by the coordinator that
// schedules the stream.
//
// Why a stream with a consumer group, and not the alternatives:
//   - Pub/sub loses every result published while the coordinator is down or
//     reconnecting; a restarted coordinator would never learn of them.
//   - asynq's ResultWriter keeps a result on the task, so the coordinator
//     would have to poll every outstanding task in every queue it may have
//     moved to, and results vanish with the task's retention.
//   - A Redis stream keeps entries until trimmed, and its consumer group
//     remembers what was delivered and what was acknowledged: a coordinator
//     that restarts reads on from the group's position, and entries another
//     coordinator took but never acknowledged are claimed after ClaimIdle.
//     Several coordinators can each follow their own streams.
//
// Publishing is at most once per segment: a marker (DoneKey) is set in the
// same script as the XADD, so a duplicate run of a task (a copy taken off a
// dead worker, a resubmission after a lost task) finds it and announces
// nothing. Delivery to the coordinator is at least once, acknowledged after
// it handled the result; the scheduler drops a result it already has.
type ResultLog struct {
	rdb redis.UniversalClient
	// Group is the consumer group of the coordinators.
	Group string
	// MaxLen bounds each stream's entries (approximately).
	MaxLen int64
	// TTL is how long a stream's log outlives its last write: how long a
	// coordinator may be away and still find its results.
	TTL time.Duration
	// DoneTTL is how long a segment's done marker lives: longer than any
	// duplicate run of its task can come after it.
	DoneTTL time.Duration
}

// NewResultLog returns a ResultLog with defaults: group "livegrid",
// 4096 entries per stream, logs kept an hour, done markers 30 minutes.
func NewResultLog(rdb redis.UniversalClient) *ResultLog {
	return &ResultLog{rdb: rdb, Group: "livegrid", MaxLen: 4096, TTL: time.Hour, DoneTTL: 30 * time.Minute}
}

// Delivery is one result read from the log. Err is set, and Result is
// partial, when the entry does not decode; it still has to be acknowledged.
type Delivery struct {
	Stream string
	ID     string // the entry id, for Ack
	Result Result
	Err    error
}

var publishScript = redis.NewScript(`
if redis.call("SET", KEYS[1], "1", "NX", "PX", ARGV[2]) then
  redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[3], "*", "result", ARGV[1])
  redis.call("PEXPIRE", KEYS[2], ARGV[4])
  return 1
end
return 0
`)

// Publish announces r unless a result for its segment was announced
// before; published reports which.
func (l *ResultLog) Publish(ctx context.Context, r Result) (published bool, err error) {
	payload, err := r.Marshal()
	if err != nil {
		return false, err
	}
	keys := []string{DoneKey(r.Stream, r.TaskID), ResultsKey(r.Stream)}
	n, err := publishScript.Run(ctx, l.rdb, keys, payload, l.DoneTTL.Milliseconds(), l.MaxLen, l.TTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("queue: publish result %s: %w", r.TaskID, err)
	}
	return n == 1, nil
}

// Done reports whether a result for the segment was published.
func (l *ResultLog) Done(ctx context.Context, stream, taskID string) (bool, error) {
	n, err := l.rdb.Exists(ctx, DoneKey(stream, taskID)).Result()
	if err != nil {
		return false, fmt.Errorf("queue: check result %s: %w", taskID, err)
	}
	return n == 1, nil
}

// Read returns results of the given streams not yet delivered to the
// group, waiting up to block for one. A missing group (a new stream, or a
// Redis that lost its data) is created from the start of the log.
func (l *ResultLog) Read(ctx context.Context, consumer string, streams []string, block time.Duration) ([]Delivery, error) {
	if len(streams) == 0 {
		return nil, nil
	}
	args := make([]string, 0, 2*len(streams))
	for _, s := range streams {
		args = append(args, ResultsKey(s))
	}
	for range streams {
		args = append(args, ">")
	}
	read := func() ([]redis.XStream, error) {
		return l.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: l.Group, Consumer: consumer, Streams: args, Count: 100, Block: block,
		}).Result()
	}
	xs, err := read()
	if isNoGroup(err) {
		if err := l.ensureGroups(ctx, streams); err != nil {
			return nil, err
		}
		xs, err = read()
	}
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("queue: read results: %w", err)
	}
	var out []Delivery
	for _, x := range xs {
		out = appendDeliveries(out, streamName(x.Stream), x.Messages)
	}
	return out, nil
}

// Claim takes over results of stream that another consumer (a coordinator
// that died, or this one before a restart) was given but has not
// acknowledged for minIdle.
func (l *ResultLog) Claim(ctx context.Context, consumer, stream string, minIdle time.Duration) ([]Delivery, error) {
	msgs, _, err := l.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: ResultsKey(stream), Group: l.Group, Consumer: consumer, MinIdle: minIdle, Start: "0-0", Count: 100,
	}).Result()
	switch {
	case isNoGroup(err) || errors.Is(err, redis.Nil):
		return nil, nil // nothing was ever delivered
	case err != nil:
		return nil, fmt.Errorf("queue: claim results of %s: %w", stream, err)
	}
	return appendDeliveries(nil, stream, msgs), nil
}

// Ack acknowledges handled results of stream.
func (l *ResultLog) Ack(ctx context.Context, stream string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := l.rdb.XAck(ctx, ResultsKey(stream), l.Group, ids...).Err(); err != nil {
		return fmt.Errorf("queue: ack results of %s: %w", stream, err)
	}
	return nil
}

func (l *ResultLog) ensureGroups(ctx context.Context, streams []string) error {
	for _, s := range streams {
		err := l.rdb.XGroupCreateMkStream(ctx, ResultsKey(s), l.Group, "0").Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return fmt.Errorf("queue: create result group for %s: %w", s, err)
		}
	}
	return nil
}

func isNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

func appendDeliveries(out []Delivery, stream string, msgs []redis.XMessage) []Delivery {
	for _, m := range msgs {
		d := Delivery{Stream: stream, ID: m.ID}
		raw, _ := m.Values["result"].(string)
		d.Result, d.Err = DecodeResult([]byte(raw))
		out = append(out, d)
	}
	return out
}

func streamName(key string) string {
	s := strings.TrimPrefix(key, resultsPrefix)
	return strings.TrimSuffix(s, "}")
}
