package main

import (
	"time"

	"github.com/bondtun/bondtun/session"
)

// statusSchemaVersion is the version of the status JSON (docs/STATUS.md). It changes only
// when a field is removed, renamed or changes meaning; adding a field keeps it.
const statusSchemaVersion = 1

// The status JSON of docs/STATUS.md. A running `up` answers a status request with a
// statusDoc holding its own tunnel; `bondtun status --json` prints one statusDoc with
// every tunnel it asked. Names are snake_case with their unit; lists are never null.

type statusDoc struct {
	SchemaVersion int            `json:"schema_version"`
	Tunnels       []tunnelStatus `json:"tunnels"`
	StaleSockets  []string       `json:"stale_sockets"`
}

type tunnelStatus struct {
	Device       string            `json:"device"`
	Config       string            `json:"config"`
	Socket       string            `json:"socket"`
	PID          int               `json:"pid"`
	Netns        string            `json:"netns"`
	Version      string            `json:"version"`
	Role         string            `json:"role"`
	UptimeS      float64           `json:"uptime_s"`
	Sessions     []sessionStatus   `json:"sessions"`
	NodeCounters map[string]uint64 `json:"node_counters"`
}

type sessionStatus struct {
	Peer     string            `json:"peer"`
	Cipher   string            `json:"cipher"`
	RxIndex  uint16            `json:"receiver_index"`
	Paths    []pathStatus      `json:"paths"`
	Reorder  reorderStatus     `json:"reorder"`
	Counters map[string]uint64 `json:"counters"`
}

type pathStatus struct {
	ID              uint8    `json:"id"`
	Name            string   `json:"name"`
	Remote          string   `json:"remote"`
	State           string   `json:"state"`
	Liveness        string   `json:"liveness"`
	Tier            string   `json:"tier"`
	Usable          bool     `json:"usable"`
	SRTTMs          float64  `json:"srtt_ms"`
	MinRTTMs        float64  `json:"min_rtt_ms"`
	RateBps         float64  `json:"rate_bps"`
	LossRatio       float64  `json:"loss_ratio"`
	TxShare         float64  `json:"tx_share"`
	TxPackets       uint64   `json:"tx_packets"`
	TxBytes         uint64   `json:"tx_bytes"`
	TxLostPackets   uint64   `json:"tx_lost_packets"`
	RxPackets       uint64   `json:"rx_packets"`
	InflightBytes   int      `json:"inflight_bytes"`
	QueuedBytes     int      `json:"queued_bytes"`
	RepairedPackets uint64   `json:"repaired_packets"`
	SendErrors      uint64   `json:"send_errors"`
	LastHeardMs     *float64 `json:"last_heard_ms"`
}

type reorderStatus struct {
	HeldPackets int               `json:"held_packets"`
	HoldMs      float64           `json:"hold_ms"`
	HoldMaxMs   float64           `json:"hold_max_ms"`
	Counters    map[string]uint64 `json:"counters"`
}

// tunnelInfo is what a running `up` knows about itself beside its node's snapshot.
type tunnelInfo struct {
	Device, Config, Socket, Netns string
	PID                           int
	Started                       time.Time
}

// newStatusDoc is the status of one running tunnel.
func newStatusDoc(info tunnelInfo, snap session.Snapshot, now time.Time) statusDoc {
	t := tunnelStatus{
		Device:       info.Device,
		Config:       info.Config,
		Socket:       info.Socket,
		PID:          info.PID,
		Netns:        info.Netns,
		Version:      currentVersion(),
		Role:         snap.Role,
		UptimeS:      now.Sub(info.Started).Seconds(),
		Sessions:     []sessionStatus{},
		NodeCounters: nonNil(snap.Node),
	}
	for _, s := range snap.Sessions {
		t.Sessions = append(t.Sessions, newSessionStatus(s))
	}
	return statusDoc{SchemaVersion: statusSchemaVersion, Tunnels: []tunnelStatus{t}, StaleSockets: []string{}}
}

func newSessionStatus(s session.SessionSnapshot) sessionStatus {
	ss := sessionStatus{
		Peer:    s.Peer,
		Cipher:  s.Cipher,
		RxIndex: s.ReceiverIndex,
		Paths:   []pathStatus{},
		Reorder: reorderStatus{
			HeldPackets: s.ReorderHeld,
			HoldMs:      ms(s.ReorderHold),
			HoldMaxMs:   ms(s.ReorderHoldMax),
			Counters:    nonNil(s.Reorder),
		},
		Counters: nonNil(s.Counters),
	}
	var total uint64
	for _, p := range s.Paths {
		total += p.TxBytes
	}
	for _, p := range s.Paths {
		ps := pathStatus{
			ID:              p.ID,
			Name:            p.Name,
			State:           p.Status,
			Liveness:        p.State,
			Tier:            p.Tier,
			Usable:          p.Usable,
			SRTTMs:          ms(p.SRTT),
			MinRTTMs:        ms(p.MinRTT),
			RateBps:         p.RateBps,
			LossRatio:       p.LossRate,
			TxPackets:       p.TxPackets,
			TxBytes:         p.TxBytes,
			TxLostPackets:   p.TxLost,
			RxPackets:       p.RxPackets,
			InflightBytes:   p.InflightB,
			QueuedBytes:     p.QueuedB,
			RepairedPackets: p.Repairs,
			SendErrors:      p.SendErrors,
		}
		if p.Remote.IsValid() {
			ps.Remote = p.Remote.String()
		}
		if total > 0 {
			ps.TxShare = float64(p.TxBytes) / float64(total)
		}
		if p.LastHeard > 0 {
			h := ms(p.LastHeard)
			ps.LastHeardMs = &h
		}
		ss.Paths = append(ss.Paths, ps)
	}
	return ss
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func nonNil(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return map[string]uint64{}
	}
	return m
}
