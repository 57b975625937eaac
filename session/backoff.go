package session

import (
	"math/rand/v2"
	"time"
)

// The client's retry schedule, for connects and for resumes: minBackoff, doubling up to
// maxBackoff, each wait drawn uniformly within ±backoffJitter of it. The cap is short
// because a retry costs the server one TLS handshake (bounded by its admission, admit.go)
// while a long cap keeps the tunnel down long after the fault is gone (a 30 s cap left a
// client down 16 s after a 20 s outage); the jitter keeps clients that lost the same server
// at the same moment from coming back in step. docs/DECISIONS.md gives the reasons.
const (
	minBackoff    = time.Second
	maxBackoff    = 4 * time.Second
	backoffJitter = 0.2
)

// backoff is one retry schedule. The zero value is not usable: use newBackoff.
type backoff struct {
	next  time.Duration  // the un-jittered wait of the next retry
	float func() float64 // uniform in [0, 1)
}

func newBackoff(float func() float64) backoff {
	if float == nil {
		float = rand.Float64
	}
	return backoff{next: minBackoff, float: float}
}

// wait returns how long to wait before the next retry and advances the schedule.
func (b *backoff) wait() time.Duration {
	d := b.next
	b.next = min(2*b.next, maxBackoff)
	f := 1 + backoffJitter*(2*b.float()-1)
	return time.Duration(float64(d) * f)
}

// reset starts the schedule again: a session was established.
func (b *backoff) reset() { b.next = minBackoff }
