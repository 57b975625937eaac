package session

import (
	"errors"
	"time"

	"github.com/bondtun/bondtun/internal/timerq"
)

// The engine's clock. Every read of the current time in the session engine goes through
// its node's clock (ClientConfig.Clock, ServerConfig.Clock; the wall clock by default), or
// is a now its caller passed down: a datagram batch, a SendBatch and a timer run each read it
// once, and what they call gets it as an argument. The pure packages under the engine
// (sched, reorder, liveness, pathstat, aqm) never read a clock at all. clock_test.go fails if
// a time.Now comes back outside this file. Two kinds of waits run on the runtime's clock
// instead (the wall clock, or a synctest bubble's): I/O deadlines (ioDeadline) and a
// client's waits between connection attempts (Client.sleepOrWake, time.NewTimer), since
// both are the operating system's or the runtime's business. A test on a manual clock that
// needs a retry to happen moves the runtime's clock too (a synctest bubble), while the
// retry's give-up deadline is measured on the node's clock.

// wallClock is a node's clock when its configuration gives none.
func wallClock() time.Time { return time.Now() }

// ioDeadline is a deadline d from now for a net.Conn. Connections measure their deadlines
// on the runtime's clock (the wall clock, or a synctest bubble's), not on the engine's, so an
// engine driven by a manual clock still gives its sockets deadlines that mean what they say.
func ioDeadline(d time.Duration) time.Time { return time.Now().Add(d) }

// errClockWithoutTimers: a node given a clock must be given the timer queue that runs on it.
var errClockWithoutTimers = errors.New("a Clock needs Timers, a timer queue on the same clock (timerq.Config.Now)")

// nodeClock is a node's clock, from its configuration: clock if set (then q must be set, and
// on the same clock), else q's clock, else the wall clock.
func nodeClock(clock func() time.Time, q *timerq.Queue) (func() time.Time, error) {
	switch {
	case clock != nil && q == nil:
		return nil, errClockWithoutTimers
	case clock != nil:
		return clock, nil
	case q != nil:
		return q.Now, nil
	}
	return wallClock, nil
}
