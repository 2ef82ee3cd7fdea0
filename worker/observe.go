package worker

import (
	"context"

	"github.com/livegrid/livegrid/internal/queue"
)

// observedLog hands every result it publishes to fn as well.
type observedLog struct {
	resultLog
	fn func(queue.Result)
}

func (l observedLog) Publish(ctx context.Context, r queue.Result) (bool, error) {
	ok, err := l.resultLog.Publish(ctx, r)
	if err == nil && ok && l.fn != nil {
		l.fn(r)
	}
	return ok, err
}
