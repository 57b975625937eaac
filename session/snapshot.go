package session

import "time"

// Snapshot is the state of a node for `bondtun status`, which turns it into the JSON
// schema of docs/STATUS.md.
type Snapshot struct {
	Role     string // "client" or "server"
	Sessions []SessionSnapshot
	Node     map[string]uint64 // node counters, counts of datagrams or packets
}

// SessionSnapshot is one session in a Snapshot.
type SessionSnapshot struct {
	Peer   string
	Cipher string
	// ReceiverIndex is the index the peer puts in the datagrams it sends to this node (in
	// the clear on the wire, docs/PROTOCOL.md §3).
	ReceiverIndex uint16
	Paths         []PathInfo
	Counters      map[string]uint64 // counts of packets, except the *_bytes ones
	Reorder       map[string]uint64 // the reorder buffer's counts of packets and gaps (reorder.Stats)
	// ReorderHeld is the number of packets the reorder buffer holds now, waiting for a gap.
	ReorderHeld int
	// ReorderHold is the buffer's current adaptive hold; ReorderHoldMax the longest a
	// released gap was held.
	ReorderHold, ReorderHoldMax time.Duration
}

func (s *Session) snapshot() SessionSnapshot {
	c := &s.counters
	ss := SessionSnapshot{
		Peer:          s.peerName,
		Cipher:        s.cipherName,
		ReceiverIndex: s.local,
		Paths:         s.Paths(),
		Counters: map[string]uint64{
			"tx_packets": c.TxPackets.Load(), "tx_bytes": c.TxBytes.Load(), "tx_dropped": c.TxDropped.Load(),
			"tx_queue_dropped": c.TxQueueDropped.Load(), "tx_repaired": c.TxRepaired.Load(), "tx_inner_retx": c.TxInnerRetx.Load(), "tx_rebalanced": c.TxRebalanced.Load(), "rx_lost": c.RxLost.Load(),
			"rx_packets": c.RxPackets.Load(), "rx_bytes": c.RxBytes.Load(), "rx_replay": c.RxReplay.Load(),
			"rx_auth_fail": c.RxAuthFail.Load(), "rx_bad_inner": c.RxBadInner.Load(), "rx_no_path": c.RxNoPath.Load(),
			"rx_not_allowed": c.RxNotAllowed.Load(), "rx_reorder_dropped": c.RxReorderDropped.Load(),
			"path_challenges": c.PathChallenges.Load(), "path_moves": c.PathMoves.Load(),
			"path_validations_failed": c.PathValidationsFailed.Load(), "path_validations_limited": c.PathValidationsLimited.Load(),
			"path_amplification_limited": c.PathAmplificationLimited.Load(),
			"key_updates":                c.KeyUpdates.Load(), "rx_prev_key": c.RxPrevKey.Load(),
		},
	}
	s.rxMu.Lock()
	st := s.reorder.Stats()
	ss.ReorderHold = s.reorder.Hold()
	ss.ReorderHeld = s.reorder.Len()
	s.rxMu.Unlock()
	ss.ReorderHoldMax = st.HoldMax
	ss.Reorder = map[string]uint64{
		"delivered": st.Delivered, "in_order": st.InOrder, "filled": st.Filled, "paths_past": st.PathsPast,
		"deadline": st.Deadline, "overflow": st.Overflow, "jumps": st.Jumps, "duplicates": st.Duplicates,
		"late": st.Late,
	}
	return ss
}

func (nc *NodeCounters) snapshot() map[string]uint64 {
	return map[string]uint64{
		"rx_datagrams": nc.RxDatagrams.Load(), "rx_truncated": nc.RxTruncated.Load(),
		"rx_bad_header": nc.RxBadHeader.Load(), "rx_no_session": nc.RxNoSession.Load(),
		"tx_no_session": nc.TxNoSession.Load(), "tx_no_route": nc.TxNoRoute.Load(), "tx_not_ip": nc.TxNotIP.Load(),
		"handshakes_refused": nc.HandshakesRefused.Load(), "handshakes_preempted": nc.HandshakesPreempted.Load(),
		"handshakes_failed": nc.HandshakesFailed.Load(),
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
	for _, ps := range sv.peers.Load().byKey {
		if s := ps.sess.Load(); s != nil {
			ss := s.snapshot()
			ss.Peer = ps.name() // a reload may have renamed it
			snap.Sessions = append(snap.Sessions, ss)
		}
	}
	return snap
}
