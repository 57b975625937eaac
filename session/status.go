package session

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/liveness"
)

// PathInfo is a snapshot of one path, for status output and tests.
type PathInfo struct {
	ID        uint8
	Name      string
	Remote    netip.AddrPort
	Validated bool
	State     string // liveness: validating, up, suspect, dead, rejoining, down
	Usable    bool
	Tier      string // primary, backup or disabled
	// Status is what the path does now, for operators: "up" (a primary carrying data),
	// "standby" (a backup that is up while a primary is usable), "backup" (a backup
	// carrying data because no primary is usable), "disabled", "no_remote" (up, but the
	// server has not learned the client's address on it), or the liveness state when it
	// is not up (validating, suspect, dead, rejoining, down).
	Status     string
	TxPackets  uint64 // datagrams sent (data and control)
	TxBytes    uint64 // bytes of those datagrams
	TxLost     uint64 // of those, reported lost by the peer's feedback
	RxPackets  uint64 // authenticated datagrams received
	SRTT       time.Duration
	MinRTT     time.Duration
	RateBps    float64 // delivery rate estimate, bits per second
	LossRate   float64 // recent loss fraction, 0..1 (EWMA over feedback reports)
	InflightB  int
	LastHeard  time.Duration // since the last sign of life
	SendErrors uint64
	QueuedB    int    // bytes waiting in bondtun's local queue for this path
	Repairs    uint64 // packets lost on other paths re-sent on this one
	Failovers  uint64 // times the path left liveness state up (its traffic moved off)
}

// Paths returns a snapshot of every path of the session.
func (s *Session) Paths() []PathInfo {
	now := s.now()
	var out []PathInfo
	for _, p := range s.pathList() {
		if s.retired.Load()&(1<<(p.id>>4)) != 0 {
			continue // a removed uplink's (uplinkset.go)
		}
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
			TxBytes:    p.stats.SentBytes(),
			TxLost:     p.stats.Lost(),
			RxPackets:  rx,
			SRTT:       p.stats.SRTT(),
			MinRTT:     p.stats.MinRTT(),
			RateBps:    p.stats.DeliveryRate() * 8,
			LossRate:   p.stats.LossRate(),
			InflightB:  p.stats.Inflight(),
			SendErrors: p.sendErrs,
			QueuedB:    p.queuedLocked(),
			Repairs:    p.repairs,
			Failovers:  p.failovers,
		}
		if lh := p.live.LastHeard(); !lh.IsZero() {
			pi.LastHeard = now.Sub(lh)
		}
		p.mu.Unlock()
		out = append(out, pi)
	}
	setStatuses(out)
	return out
}

// setStatuses fills in each path's Status, which for a backup depends on whether any
// primary path is usable (the schedulers use backups only when none is).
func setStatuses(paths []PathInfo) {
	primaryUsable := false
	for _, p := range paths {
		if p.Usable && p.Tier == "primary" {
			primaryUsable = true
		}
	}
	for i := range paths {
		paths[i].Status = pathStatus(paths[i], primaryUsable)
	}
}

func pathStatus(p PathInfo, primaryUsable bool) string {
	switch {
	case p.Tier == "disabled":
		return "disabled"
	case p.State != liveness.Up.String():
		return p.State
	case !p.Usable:
		return "no_remote"
	case p.Tier == "backup" && primaryUsable:
		return "standby"
	case p.Tier == "backup":
		return "backup"
	}
	return "up"
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
