package packager

import "time"

// Clock is the packager's source of time: it fixes availabilityStartTime,
// stamps MPD publish times and runs the grace, hold and linger timers.
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
