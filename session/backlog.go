package session

import "time"

// Backlog limits for a sender that has no congestion control of its own (the library's
// message writer): it waits while the local queues hold backlogTime of the paths' summed
// delivery rate, plus each path's delay equalization (its rate times the difference between
// its one-way delay and the slowest usable path's, the queue EAT lets it hold before the
// slower path arrives as early), and at least backlogMin bytes. The paths' windows pace
// what leaves the queues; the limit keeps the queues short enough that CoDel (codelTarget,
// which also allows the equalization) never has to drop from them. Without the
// equalization term a far path was never used: the short paths' queues never grew long
// enough for it to win (docs/DECISIONS.md).
const (
	backlogTime = 10 * time.Millisecond
	backlogMin  = 64 << 10
)

// Backlog reports the datagram bytes waiting in s's local queues, and the most a sender
// without congestion control of its own should let wait (see backlogTime): a writer that
// offers more while queued ≥ limit only makes the queues drop. The limit is 0 while no
// path is usable (before the first probe came back, or while every path is failing):
// what was offered then would be dropped or only wait.
func (s *Session) Backlog() (queued, limit int) {
	var rate float64 // bytes the queues may hold
	usable := false
	for _, p := range s.pathList() {
		p.mu.Lock()
		queued += p.queuedLocked()
		if p.usableLocked(time.Time{}) {
			usable = true
			r := p.stats.DeliveryRate()
			rate += r * (backlogTime + p.equalize).Seconds()
		}
		p.mu.Unlock()
	}
	if !usable {
		return queued, 0
	}
	return queued, max(backlogMin, int(rate))
}
