package session

import (
	"fmt"
	"net/netip"
	"time"

	"bondtun/framing"
	"bondtun/liveness"
)

// PathInfo is a snapshot of one path, for status output and tests.
type PathInfo struct {
	ID         uint8
	Name       string
	Remote     netip.AddrPort
	Validated  bool
	State      string // liveness: validating, up, suspect, dead, rejoining, down
	Usable     bool
	Tier       string // primary, backup or disabled
	TxPackets  uint64 // datagrams sent (data and control)
	TxLost     uint64 // of those, reported lost by the peer's feedback
	RxPackets  uint64 // authenticated datagrams received
	SRTT       time.Duration
	MinRTT     time.Duration
	RateBps    float64 // delivery rate estimate, bits per second
	InflightB  int
	LastHeard  time.Duration // since the last sign of life
	SendErrors uint64
	QueuedB    int    // bytes waiting in bondtun's local queue for this path
	Repairs    uint64 // packets lost on other paths re-sent on this one
}

// Paths returns a snapshot of every path of the session.
func (s *Session) Paths() []PathInfo {
	now := time.Now()
	var out []PathInfo
	for _, p := range s.pathList() {
		s.rxMu.Lock()
		rx := p.rxDatagram
		s.rxMu.Unlock()
		p.mu.Lock()
		pi := PathInfo{
			ID:         p.id,
			Name:       p.name,
			Remote:     p.remote,
			Validated:  p.live.State() != liveness.Validating,
			State:      p.live.State().String(),
			Usable:     p.usableLocked(now),
			Tier:       tierName(p.tier),
			TxPackets:  p.stats.Sent(),
			TxLost:     p.stats.Lost(),
			RxPackets:  rx,
			SRTT:       p.stats.SRTT(),
			MinRTT:     p.stats.MinRTT(),
			RateBps:    p.stats.DeliveryRate() * 8,
			InflightB:  p.stats.Inflight(),
			SendErrors: p.sendErrs,
			QueuedB:    p.queuedLocked(),
			Repairs:    p.repairs,
		}
		if lh := p.live.LastHeard(); !lh.IsZero() {
			pi.LastHeard = now.Sub(lh)
		}
		p.mu.Unlock()
		out = append(out, pi)
	}
	return out
}

func tierName(t uint8) string {
	switch t {
	case framing.TierBackup:
		return "backup"
	case framing.TierDisabled:
		return "disabled"
	}
	return "primary"
}

// ParseTier maps "primary", "backup" and "disabled" to a path tier.
func ParseTier(s string) (uint8, error) {
	switch s {
	case "primary":
		return framing.TierPrimary, nil
	case "backup":
		return framing.TierBackup, nil
	case "disabled":
		return framing.TierDisabled, nil
	}
	return 0, fmt.Errorf("unknown tier %q (want primary, backup or disabled)", s)
}
