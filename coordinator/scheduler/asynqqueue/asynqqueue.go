// Package asynqqueue is the scheduler's task queue on asynq and Redis; it is
// the one package of the coordinator that imports asynq.
package asynqqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/livegrid/livegrid/internal/queue"
	"github.com/redis/go-redis/v9"
)

// Queue enqueues transcode tasks, takes back a dead worker's tasks and
// reports queue depths.
type Queue struct {
	rdb      redis.UniversalClient
	client   *asynq.Client
	insp     *asynq.Inspector
	claimTTL time.Duration
}

// DefaultClaimTTL is how long an enqueued task id stays claimed: long
// enough to cover a coordinator restart, short enough that a busy cluster
// does not fill Redis with claims.
const DefaultClaimTTL = 10 * time.Minute

// New returns a Queue on rdb, which the caller keeps and closes. Task ids
// stay claimed for claimTTL (<= 0: DefaultClaimTTL): asynq refuses a
// duplicate id only within one queue and only while the task exists, but a
// segment may be routed to a worker's queue or the shared one, so the
// claim is what makes enqueueing a segment twice a no-op.
func New(rdb redis.UniversalClient, claimTTL time.Duration) *Queue {
	if claimTTL <= 0 {
		claimTTL = DefaultClaimTTL
	}
	return &Queue{
		rdb:      rdb,
		client:   asynq.NewClientFromRedisClient(rdb),
		insp:     asynq.NewInspectorFromRedisClient(rdb),
		claimTTL: claimTTL,
	}
}

func claimKey(id string) string       { return "livegrid:claim:" + id }
func movedKey(from, id string) string { return "livegrid:moved:" + from + ":" + id }
func ceilSeconds(d time.Duration) time.Duration {
	// asynq keeps timeouts and deadlines in whole seconds and truncates;
	// rounding up never cuts a run short.
	return (d + time.Second - 1).Truncate(time.Second)
}

// Enqueue enqueues a job; a job whose id was enqueued before returns an
// error wrapping queue.ErrDuplicate and changes nothing.
func (q *Queue) Enqueue(ctx context.Context, j queue.Job) error {
	payload, err := j.Task.Marshal()
	if err != nil {
		return err
	}
	ok, err := q.rdb.SetNX(ctx, claimKey(j.ID), j.Queue, q.claimTTL).Result()
	if err != nil {
		return fmt.Errorf("asynqqueue: claim %s: %w", j.ID, err)
	}
	if !ok {
		return fmt.Errorf("asynqqueue: %s: %w", j.ID, queue.ErrDuplicate)
	}
	opts := []asynq.Option{asynq.TaskID(j.ID), asynq.Queue(j.Queue), asynq.MaxRetry(j.MaxRetry)}
	opts = append(opts, limits(j.Timeout, j.Deadline)...)
	_, err = q.client.EnqueueContext(ctx, asynq.NewTask(queue.TypeTranscodeSegment, payload), opts...)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		return fmt.Errorf("asynqqueue: %s: %w", j.ID, queue.ErrDuplicate)
	case err != nil:
		// Release the claim so a later try can enqueue; if the task did
		// get in, the worst case is a duplicate run, whose result the
		// result log drops.
		_ = q.rdb.Del(context.WithoutCancel(ctx), claimKey(j.ID)).Err()
		return fmt.Errorf("asynqqueue: enqueue %s to %s: %w", j.ID, j.Queue, err)
	}
	return nil
}

func limits(timeout time.Duration, deadline time.Time) []asynq.Option {
	var opts []asynq.Option
	if timeout > 0 {
		opts = append(opts, asynq.Timeout(ceilSeconds(timeout)))
	}
	if !deadline.IsZero() {
		opts = append(opts, asynq.Deadline(deadline.Add(time.Second-1).Truncate(time.Second)))
	}
	return opts
}

// reclaimRounds bounds the list-move rounds of one Reclaim, in case tasks
// keep changing state under it.
const reclaimRounds = 20

// Reclaim moves the tasks waiting in a dead worker's queue (from) to
// another queue (to) and copies its active tasks there: asynq would only
// recover those after their lease expires, and only for a server that
// listens on from, which no one does once the worker is gone. A copy keeps
// the task id, so a second Reclaim, or one by another coordinator, adds
// nothing; the original of an active copy stays behind as an orphan, and
// if its worker comes back and runs it, the result log drops the second
// result. drained reports that nothing is left waiting in from.
func (q *Queue) Reclaim(ctx context.Context, from, to string) (moved int, drained bool, err error) {
	lists := []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		q.insp.ListPendingTasks, q.insp.ListScheduledTasks, q.insp.ListRetryTasks,
	}
	const page = 200
	for _, list := range lists {
		for range reclaimRounds {
			infos, err := list(from, asynq.PageSize(page))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				return moved, true, nil
			}
			if err != nil {
				return moved, false, fmt.Errorf("asynqqueue: list %s: %w", from, err)
			}
			for _, info := range infos {
				if err := q.copyTask(ctx, info, to); err != nil {
					return moved, false, err
				}
				if err := q.insp.DeleteTask(from, info.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
					return moved, false, fmt.Errorf("asynqqueue: delete %s from %s: %w", info.ID, from, err)
				}
				moved++
			}
			if len(infos) < page {
				break
			}
		}
	}
	active, err := q.insp.ListActiveTasks(from, asynq.PageSize(1000))
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		return moved, false, fmt.Errorf("asynqqueue: list active %s: %w", from, err)
	}
	for _, info := range active {
		first, err := q.rdb.SetNX(ctx, movedKey(from, info.ID), to, q.claimTTL).Result()
		if err != nil {
			return moved, false, fmt.Errorf("asynqqueue: mark %s moved: %w", info.ID, err)
		}
		if !first {
			continue
		}
		if err := q.copyTask(ctx, info, to); err != nil {
			_ = q.rdb.Del(context.WithoutCancel(ctx), movedKey(from, info.ID)).Err()
			return moved, false, err
		}
		moved++
	}
	for _, list := range lists {
		infos, err := list(from, asynq.PageSize(1))
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			return moved, false, fmt.Errorf("asynqqueue: list %s: %w", from, err)
		}
		if len(infos) > 0 {
			return moved, false, nil
		}
	}
	return moved, true, nil
}

// copyTask enqueues a copy of info in queue to, carrying the runs it has
// failed so far in the payload, since the copy's own retry count starts at 0.
func (q *Queue) copyTask(ctx context.Context, info *asynq.TaskInfo, to string) error {
	payload := info.Payload
	if t, err := queue.DecodeTask(payload); err == nil {
		t.PriorFailures += info.Retried
		if b, err := t.Marshal(); err == nil {
			payload = b
		}
	} // a poison payload moves as it is; the worker quarantines it
	opts := []asynq.Option{asynq.TaskID(info.ID), asynq.Queue(to), asynq.MaxRetry(max(info.MaxRetry-info.Retried, 0))}
	opts = append(opts, limits(info.Timeout, info.Deadline)...)
	_, err := q.client.EnqueueContext(ctx, asynq.NewTask(info.Type, payload), opts...)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("asynqqueue: copy %s to %s: %w", info.ID, to, err)
	}
	return nil
}

// Stats returns the depth of every queue asynq knows.
func (q *Queue) Stats(ctx context.Context) ([]queue.QueueStats, error) {
	names, err := q.insp.Queues()
	if err != nil {
		return nil, fmt.Errorf("asynqqueue: list queues: %w", err)
	}
	out := make([]queue.QueueStats, 0, len(names))
	for _, name := range names {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		info, err := q.insp.GetQueueInfo(name)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("asynqqueue: stats of %s: %w", name, err)
		}
		out = append(out, queue.QueueStats{
			Queue: name, Pending: info.Pending, Active: info.Active, Scheduled: info.Scheduled,
			Retry: info.Retry, Archived: info.Archived, Latency: info.Latency,
		})
	}
	return out, nil
}
