package session

// Snapshot is the state of a node for `bondtun status`, encoded as JSON.
type Snapshot struct {
	Role     string            `json:"role"` // "client" or "server"
	Sessions []SessionSnapshot `json:"sessions"`
	Node     map[string]uint64 `json:"node_counters"`
}

// SessionSnapshot is one session in a Snapshot.
type SessionSnapshot struct {
	Peer     string            `json:"peer"`
	Cipher   string            `json:"cipher"`
	Paths    []PathInfo        `json:"paths"`
	Counters map[string]uint64 `json:"counters"`
	Reorder  map[string]uint64 `json:"reorder"`
}

func (s *Session) snapshot() SessionSnapshot {
	c := &s.counters
	ss := SessionSnapshot{
		Peer:   s.peerName,
		Cipher: s.cipherName,
		Paths:  s.Paths(),
		Counters: map[string]uint64{
			"tx_packets": c.TxPackets.Load(), "tx_bytes": c.TxBytes.Load(), "tx_dropped": c.TxDropped.Load(),
			"tx_queue_dropped": c.TxQueueDropped.Load(), "tx_repaired": c.TxRepaired.Load(), "tx_inner_retx": c.TxInnerRetx.Load(), "rx_lost": c.RxLost.Load(),
			"rx_packets": c.RxPackets.Load(), "rx_bytes": c.RxBytes.Load(), "rx_replay": c.RxReplay.Load(),
			"rx_auth_fail": c.RxAuthFail.Load(), "rx_bad_inner": c.RxBadInner.Load(), "rx_no_path": c.RxNoPath.Load(),
			"rx_not_allowed": c.RxNotAllowed.Load(), "rx_reorder_dropped": c.RxReorderDropped.Load(),
		},
	}
	s.rxMu.Lock()
	st := s.reorder.Stats()
	hold := s.reorder.Hold()
	s.rxMu.Unlock()
	ss.Reorder = map[string]uint64{
		"delivered": st.Delivered, "in_order": st.InOrder, "filled": st.Filled, "paths_past": st.PathsPast,
		"deadline": st.Deadline, "overflow": st.Overflow, "jumps": st.Jumps, "duplicates": st.Duplicates,
		"late": st.Late, "hold_us": uint64(hold.Microseconds()), "hold_max_us": uint64(st.HoldMax.Microseconds()),
	}
	return ss
}

func (nc *NodeCounters) snapshot() map[string]uint64 {
	return map[string]uint64{
		"rx_datagrams": nc.RxDatagrams.Load(), "rx_truncated": nc.RxTruncated.Load(),
		"rx_bad_header": nc.RxBadHeader.Load(), "rx_no_session": nc.RxNoSession.Load(),
		"tx_no_session": nc.TxNoSession.Load(), "tx_no_route": nc.TxNoRoute.Load(), "tx_not_ip": nc.TxNotIP.Load(),
	}
}

// Snapshot returns the client's state.
func (c *Client) Snapshot() Snapshot {
	snap := Snapshot{Role: "client", Node: c.counters.snapshot()}
	if s := c.Session(); s != nil {
		snap.Sessions = append(snap.Sessions, s.snapshot())
	}
	return snap
}

// Snapshot returns the server's state.
func (sv *Server) Snapshot() Snapshot {
	snap := Snapshot{Role: "server", Node: sv.counters.snapshot()}
	for _, s := range sv.Sessions() {
		snap.Sessions = append(snap.Sessions, s.snapshot())
	}
	return snap
}
