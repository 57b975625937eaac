package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bondtun/bondtun/session"
)

// Label names.
var (
	peerLabels = []string{"peer"}
	pathLabels = []string{"peer", "path"}
)

// PathStates are the values of bondtun_path_state's state label: every value a path's
// state (session.PathInfo.Status, docs/STATUS.md "Path states") takes. A path has one
// series per state, 1 for its current state and 0 for the others.
var PathStates = []string{"up", "standby", "backup", "validating", "suspect", "dead", "rejoining", "down", "disabled", "no_remote"}

// PathTiers are the values of bondtun_path_tier's tier label.
var PathTiers = []string{"primary", "backup", "disabled"}

// A counter taken from one of the snapshot's counter maps: key in the map, and the value
// of the desc's reason label ("" for a desc without one).
type mapCounter struct {
	desc   *prometheus.Desc
	key    string
	reason string
}

// Collector is a prometheus.Collector of one node's state. Its source, the node's
// Snapshot method, is set once the node exists; until then it collects nothing.
type Collector struct {
	version string
	source  atomic.Pointer[func() session.Snapshot]
	descs   []*prometheus.Desc

	nodeInfo, sessions, sessionInfo           *prometheus.Desc
	nodeCounters, sessionCounters, reorderCts []mapCounter
	reorderHeld, reorderHold, reorderHoldMax  *prometheus.Desc
	pathInfo, pathState, pathTier, pathUsable *prometheus.Desc
	pathRTT, pathMinRTT, pathLoss, pathRate   *prometheus.Desc
	pathShare, pathInflight, pathQueued       *prometheus.Desc
	pathLastHeard                             *prometheus.Desc
	pathTxPackets, pathTxBytes, pathTxLost    *prometheus.Desc
	pathRxPackets, pathRepairs, pathSendErrs  *prometheus.Desc
	pathFailovers                             *prometheus.Desc
}

// NewCollector returns a collector whose bondtun_node_info carries version.
func NewCollector(version string) *Collector {
	c := &Collector{version: version}
	c.describeNode()
	c.describeSessions()
	c.describeReorder()
	c.describePathStates()
	c.describePathGauges()
	c.describePathCounters()
	return c
}

// describeNode makes the node's families: its info, the number of sessions, and the
// node-wide counters (datagrams received and rejected, handshakes refused, preempted and
// failed, packets from the TUN that no session took).
func (c *Collector) describeNode() {
	c.nodeInfo = c.desc("bondtun_node_info", "Always 1; labels: the node's role (client or server) and bondtun's version.", nil, "role", "version")
	c.sessions = c.desc("bondtun_sessions", "Sessions now established (a client has at most one).", nil)
	c.nodeCounters = []mapCounter{
		{c.desc("bondtun_node_received_datagrams_total", "Datagrams received on the data sockets.", nil), "rx_datagrams", ""},
		{c.desc("bondtun_handshakes_refused_total", "Control connections closed without a TLS handshake: a per-source limit, or every slot busy (server).", nil), "handshakes_refused", ""},
		{c.desc("bondtun_handshakes_preempted_total", "Strangers' TLS handshakes closed to make room for a newcomer (server).", nil), "handshakes_preempted", ""},
		{c.desc("bondtun_handshakes_failed_total", "TLS handshakes that failed, timed out or were preempted (server).", nil), "handshakes_failed", ""},
	}
	c.nodeCounters = append(c.nodeCounters, c.reasons("bondtun_node_rejected_datagrams_total",
		"Datagrams dropped before any session saw them, by reason: truncated (longer than the receive buffer), bad_header, no_session (unknown receiver index).", nil,
		"rx_truncated", "truncated", "rx_bad_header", "bad_header", "rx_no_session", "no_session")...)
	c.nodeCounters = append(c.nodeCounters, c.reasons("bondtun_node_dropped_packets_total",
		"Packets read from the TUN that no session took, by reason: no_session, no_route (no peer allows the destination; server), not_ip (server).", nil,
		"tx_no_session", "no_session", "tx_no_route", "no_route", "tx_not_ip", "not_ip")...)
}

// describeSessions makes the families of each session (label peer): its info and the
// counters of what it sent, received and dropped.
func (c *Collector) describeSessions() {
	c.sessionInfo = c.desc("bondtun_session_info", "Always 1 per established session; labels: the peer's name and the negotiated AEAD.", nil, "peer", "cipher")
	c.sessionCounters = []mapCounter{
		{c.desc("bondtun_peer_sent_packets_total", "Datagrams sent to the peer.", peerLabels), "tx_packets", ""},
		{c.desc("bondtun_peer_sent_bytes_total", "Bytes of the datagrams sent to the peer.", peerLabels), "tx_bytes", ""},
		{c.desc("bondtun_peer_received_packets_total", "Data packets received from the peer.", peerLabels), "rx_packets", ""},
		{c.desc("bondtun_peer_received_bytes_total", "Bytes of the inner packets received from the peer.", peerLabels), "rx_bytes", ""},
		{c.desc("bondtun_peer_repaired_packets_total", "Packets re-sent on another path after a loss.", peerLabels), "tx_repaired", ""},
		{c.desc("bondtun_peer_rebalanced_packets_total", "Queued packets moved to a path where they arrive sooner.", peerLabels), "tx_rebalanced", ""},
		{c.desc("bondtun_peer_inner_retransmitted_packets_total", "Inner TCP retransmissions sent (on the lowest-delay path).", peerLabels), "tx_inner_retx", ""},
		{c.desc("bondtun_peer_missing_packets_total", "Packets this node saw missing in the peer's per-path packet numbers.", peerLabels), "rx_lost", ""},
		{c.desc("bondtun_peer_path_challenges_total", "Validations of a path's new source address started (server).", peerLabels), "path_challenges", ""},
		{c.desc("bondtun_peer_path_moves_total", "Paths moved to a validated new address (server).", peerLabels), "path_moves", ""},
		{c.desc("bondtun_peer_path_validations_failed_total", "Path validations whose challenges got no response (server).", peerLabels), "path_validations_failed", ""},
		{c.desc("bondtun_peer_path_validations_limited_total", "Datagrams from a new address that started no validation because one had started less than 250 ms before (server).", peerLabels), "path_validations_limited", ""},
		{c.desc("bondtun_peer_path_amplification_limited_total", "Path challenges not sent because of the anti-amplification limit (server).", peerLabels), "path_amplification_limited", ""},
	}
	c.sessionCounters = append(c.sessionCounters, c.reasons("bondtun_peer_rejected_datagrams_total",
		"Datagrams for this session that were rejected, by reason: replay (replay window), auth_fail (failed authentication), bad_inner (malformed inner header or frames), no_path (unknown path ID).", peerLabels,
		"rx_replay", "replay", "rx_auth_fail", "auth_fail", "rx_bad_inner", "bad_inner", "rx_no_path", "no_path")...)
	c.sessionCounters = append(c.sessionCounters, c.reasons("bondtun_peer_dropped_packets_total",
		"Packets dropped, by reason: not_allowed (received from a source outside the peer's allowed_ips), send (before sending: bad size, failed send), queue (from local queues: CoDel, a failed path's queue).", peerLabels,
		"rx_not_allowed", "not_allowed", "tx_dropped", "send", "tx_queue_dropped", "queue")...)
}

// describeReorder makes the families of each session's reorder buffer: its counters and
// its gauges (packets held, the current and the longest hold).
func (c *Collector) describeReorder() {
	c.reorderCts = []mapCounter{
		{c.desc("bondtun_peer_reorder_delivered_packets_total", "Packets the reorder buffer released for delivery.", peerLabels), "delivered", ""},
		{c.desc("bondtun_peer_reorder_in_order_packets_total", "Packets that arrived as their lane's next (never held).", peerLabels), "in_order", ""},
		{c.desc("bondtun_peer_reorder_jumps_total", "Lanes flushed because a sequence number jumped too far ahead.", peerLabels), "jumps", ""},
	}
	c.reorderCts = append(c.reorderCts, c.reasons("bondtun_peer_reorder_gaps_released_total",
		"Reorder holds ended (gaps released), by reason: filled (the missing packet or its repair came), paths_past (every live path delivered past it), deadline, overflow (the buffer was full).", peerLabels,
		"filled", "filled", "paths_past", "paths_past", "deadline", "deadline", "overflow", "overflow")...)
	c.reorderCts = append(c.reorderCts, c.reasons("bondtun_peer_reorder_dropped_packets_total",
		"Packets the reorder buffer rejected, by reason: duplicate, late (their lane had moved past them).", peerLabels,
		"duplicates", "duplicate", "late", "late")...)
	c.reorderHeld = c.desc("bondtun_peer_reorder_held_packets", "Packets the reorder buffer holds now behind gaps (the reorder depth).", peerLabels)
	c.reorderHold = c.desc("bondtun_peer_reorder_hold_seconds", "The reorder buffer's current adaptive hold: how long a gap may wait.", peerLabels)
	c.reorderHoldMax = c.desc("bondtun_peer_reorder_hold_max_seconds", "The longest a released gap was held in this session.", peerLabels)
}

// describePathStates makes the families that describe each path (labels peer, path): its
// info, state, tier and whether it is usable.
func (c *Collector) describePathStates() {
	c.pathInfo = c.desc("bondtun_path_info", "Always 1 per path; labels: its ID on the wire and the peer's address on it (empty while unknown).", pathLabels, "id", "remote")
	c.pathState = c.desc("bondtun_path_state", "1 for the path's current state, 0 for the others (docs/STATUS.md, path states).", pathLabels, "state")
	c.pathTier = c.desc("bondtun_path_tier", "1 for the path's tier, 0 for the others.", pathLabels, "tier")
	c.pathUsable = c.desc("bondtun_path_usable", "1 if new data may be scheduled on the path now.", pathLabels)
}

// describePathGauges makes each path's estimates and queues: round-trip times, loss,
// delivery rate, share of the bytes sent, bytes in flight and queued, last heard.
func (c *Collector) describePathGauges() {
	c.pathRTT = c.desc("bondtun_path_rtt_seconds", "Smoothed round-trip time.", pathLabels)
	c.pathMinRTT = c.desc("bondtun_path_min_rtt_seconds", "Smallest round-trip time of about the last 10 s.", pathLabels)
	c.pathLoss = c.desc("bondtun_path_loss_ratio", "Recent loss fraction, 0..1 (moving average over feedback reports).", pathLabels)
	c.pathRate = c.desc("bondtun_path_delivery_rate_bytes_per_second", "Delivery rate estimate (the maximum sample of the last 10 round trips; an idle path keeps its last).", pathLabels)
	c.pathShare = c.desc("bondtun_path_sent_share_ratio", "This path's fraction of the bytes the session sent, 0..1, since the session began.", pathLabels)
	c.pathInflight = c.desc("bondtun_path_inflight_bytes", "Bytes sent and not yet reported by feedback.", pathLabels)
	c.pathQueued = c.desc("bondtun_path_queued_bytes", "Bytes waiting in bondtun's local queue for the path.", pathLabels)
	c.pathLastHeard = c.desc("bondtun_path_last_heard_seconds", "Time since the last sign of life from the peer on the path; absent before the first.", pathLabels)
}

// describePathCounters makes each path's counters: datagrams and bytes sent, lost,
// received and repaired, failed sends and failovers.
func (c *Collector) describePathCounters() {
	c.pathTxPackets = c.desc("bondtun_path_sent_packets_total", "Datagrams sent on the path (data and control).", pathLabels)
	c.pathTxBytes = c.desc("bondtun_path_sent_bytes_total", "Bytes of the datagrams sent on the path.", pathLabels)
	c.pathTxLost = c.desc("bondtun_path_lost_packets_total", "Datagrams sent on the path that the peer's feedback reported lost.", pathLabels)
	c.pathRxPackets = c.desc("bondtun_path_received_packets_total", "Authenticated datagrams received on the path.", pathLabels)
	c.pathRepairs = c.desc("bondtun_path_repaired_packets_total", "Packets lost on other paths re-sent on this one.", pathLabels)
	c.pathSendErrs = c.desc("bondtun_path_send_errors_total", "Failed socket sends on the path.", pathLabels)
	c.pathFailovers = c.desc("bondtun_path_failovers_total", "Times the path stopped answering or went down while up (its traffic moved to the other paths).", pathLabels)
}

// desc makes a Desc with the variable labels vars and then more, and remembers it for
// Describe.
func (c *Collector) desc(name, help string, vars []string, more ...string) *prometheus.Desc {
	labels := append(append([]string(nil), vars...), more...)
	d := prometheus.NewDesc(name, help, labels, nil)
	c.descs = append(c.descs, d)
	return d
}

// reasons makes the Desc of a counter with a reason label and one mapCounter per
// reason; keyReason lists snapshot key, reason, key, reason, ...
func (c *Collector) reasons(name, help string, vars []string, keyReason ...string) []mapCounter {
	d := c.desc(name, help, vars, "reason")
	var out []mapCounter
	for i := 0; i+1 < len(keyReason); i += 2 {
		out = append(out, mapCounter{desc: d, key: keyReason[i], reason: keyReason[i+1]})
	}
	return out
}
