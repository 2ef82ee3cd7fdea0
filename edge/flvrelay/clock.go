package flvrelay

import "time"

// Clock is the relay's source of time: it runs the idle watchdog of each
// upstream, the linger after the last viewer and the pauses between
// rounds of failed origins.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop cancels the call; it reports false if f already ran or started.
	Stop() bool
}

// wallClock is the Clock of the time package.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
