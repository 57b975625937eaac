package session

import "time"

// Timers and limits of the session layer, in one place.
const (
	// handshakeTimeout bounds the TLS handshake plus the HELLO/WELCOME exchange (on the
	// server: HELLO must come within it of the accept).
	handshakeTimeout = 10 * time.Second
	// tlsTimeout bounds the server's TLS handshake of an accepted connection, the phase in
	// which the client is not yet authenticated and holds one of the handshake slots
	// (admit.go). TLS 1.3 needs one round trip of the server's after the accept (the
	// ClientHello is sent with the TCP handshake's last ACK), plus the client's certificate
	// flight: 3 s covers a 1 s round trip (a loaded LTE or satellite uplink) plus one lost
	// flight re-sent after TCP's initial 1 s RTO (RFC 6298 §2) and its second round trip,
	// and a slow-loris client holds a slot for 3 s instead of 10 s.
	tlsTimeout = 3 * time.Second
	// keepaliveInterval is how often an idle control channel carries a KEEPALIVE.
	keepaliveInterval = 10 * time.Second
	// controlIdleTimeout closes a control channel that has been silent this long.
	controlIdleTimeout = 3 * keepaliveInterval
	// ctrlUplinkCheck is how often a client checks that the uplink carrying its control
	// channel is alive; once its paths are dead (≈ 1 s of silence) the channel is resumed
	// on another uplink.
	ctrlUplinkCheck = 250 * time.Millisecond
	// resumeTimeout bounds one attempt to resume the control channel on one uplink.
	resumeTimeout = 3 * time.Second
	// dataIdleTimeout ends a server session whose control channel is gone and whose
	// paths have carried no authenticated datagram for this long.
	dataIdleTimeout = 60 * time.Second

	// sessionIdleAfter and idleProbeInterval: a session that sent and received no data for
	// sessionIdleAfter probes its Up paths every idleProbeInterval instead of every 100 ms
	// (liveness.Path.SetIdleProbeInterval), and repeats its tiers as rarely; it goes back to
	// 100 ms with its next data packet. One server holding 1000 idle sessions then wakes
	// ≈ 260 times a second, not twenty thousand (scripts/bench-idle.sh: 1.5 % of a core at
	// 15 s, 3.3 % at 5 s). 15 s keeps NAT bindings alive (many home NATs drop UDP mappings
	// after 30 s; RFC 4787 REQ-5 asks for 2 min), as WireGuard's 25 s keepalive does; an idle
	// path that died is found in ≈ 45 s, a session that carries data finds it in ≈ 0.1 s.
	// A minute of silence before that, so that a tunnel between bursts of use (a home
	// router's, a site link's) keeps finding a dead idle path in ≈ 0.1 s (docs/FAILOVER.md's
	// idle_detect_s, measured 2–3 s after the last packet).
	sessionIdleAfter  = time.Minute
	idleProbeInterval = 15 * time.Second
	// idleCoalesceMin and idleCoalesceMax: while a session is idle, its KEEPALIVE and the
	// client's tier repeat (PATH_STATUS) go with a timer run that sends a datagram anyway
	// (a path's probe, a report) once idleCoalesceMin has passed since the last one, and
	// on their own idleCoalesceMax after it. The window between them is as long as
	// idleProbeInterval, so it always holds a probe round and they all fall in step: an
	// idle server session's timer then runs about twice per probe round (its probe, and
	// the report of the answers) instead of five times. idleCoalesceMax stays well under
	// controlIdleTimeout, after which the peer closes a silent channel (docs/DECISIONS.md).
	idleCoalesceMin = 5 * time.Second
	idleCoalesceMax = idleCoalesceMin + idleProbeInterval

	// reportElicitWindow: a datagram of reports only (FEEDBACK, NACK) is answered with a
	// FEEDBACK while the session carried data this recently (receive.go).
	reportElicitWindow = time.Second

	// tick is the session timer's period while anything is active (packets in the reorder
	// buffer or the local queues, arrivals not yet reported, a resend pending; timers.go);
	// it bounds how late a reorder deadline can fire, and how late an idle session reacts
	// to a packet.
	tick = time.Millisecond
	// liveInterval is how often the timer tells the reorder buffer which paths still
	// deliver and updates its repair allowance (updateLiveLocked, SetRepair) while
	// traffic flows; when idle, only when a path's state changed.
	liveInterval = 50 * time.Millisecond
	// feedbackInterval is the longest a receiver waits before reporting new arrivals.
	feedbackInterval = 5 * time.Millisecond
	// spareFeedbackInterval is how often the FEEDBACK sent on the best path is also sent on
	// the best path of another uplink: when the best path dies, the other paths' own reports
	// still come back (otherwise they would look silent, and suspect, with it).
	spareFeedbackInterval = 20 * time.Millisecond
	// rxSilence is how long a path may deliver nothing before the reorder buffer stops
	// counting on it.
	rxSilence = time.Second
	// busyGap, silentMin and silentGaps define a receive-side failover: a path whose
	// datagrams arrived less than busyGap apart on average is busy, and a busy path that
	// delivered nothing for max(silentMin, silentGaps × its mean gap) while another path
	// still delivers has gone silent. The reorder buffer then holds its gaps long enough for
	// the sender to find the path suspect and re-send what it had in flight
	// (failoverHoldLocked, docs/DECISIONS.md).
	busyGap    = 5 * time.Millisecond
	silentMin  = 20 * time.Millisecond
	silentGaps = 10
	// socketErrorRetry is how long a path that a socket error (ENETUNREACH, …) took down
	// waits before it is probed again, when no netlink event brings it back sooner.
	socketErrorRetry = time.Second
	// tierInterval is how often a client repeats its paths' tiers (PATH_STATUS) to the
	// server, in case a datagram carrying a change was lost.
	tierInterval = 500 * time.Millisecond

	// returnSwitchReports and returnSwitchMargin: when this many FEEDBACK reports in a row
	// about a path came on another path than before, with an RTT more than
	// max(returnSwitchMargin, MinRTT/4) above the path's minimum, and the path that carried
	// them before is no longer up, the path's minimum RTT is restarted (its samples' return
	// half changed; followReturnPathLocked).
	returnSwitchReports = 8
	returnSwitchMargin  = 5 * time.Millisecond

	// Path validation (migrate.go, RFC 9000 §8): a new source address of a path gets at
	// most pathAmplification times the bytes it sent before it answers (RFC 9000 §8.1's
	// factor); pathChallengeTries PATH_CHALLENGEs, pathChallengeRetry apart, then the
	// validation fails (600 ms: a NAT rebinding's new address answers within a round trip,
	// and the path goes on sending to its old address meanwhile); a path starts a
	// validation at most once per pathValidateEvery.
	pathAmplification  = 3
	pathChallengeRetry = 200 * time.Millisecond
	pathChallengeTries = 3
	pathValidateEvery  = 250 * time.Millisecond

	// maxPaths is the number of path ids (uplink id and address id are 4 bits each).
	maxPaths = 256
	// reorderMaxPackets bounds the packets held for reordering per session.
	reorderMaxPackets = 8192
	// reorderMaxHold caps the adaptive hold time of a reorder gap.
	reorderMaxHold = 500 * time.Millisecond

	// suspectFloor is the least silence (with data in flight) after which a path is suspect;
	// the liveness rule's SRTT + 4·RTTVAR term (≥ 3·SRTT) sets it on all but the shortest
	// paths. 60 ms rather than liveness's 150 ms default: feedback comes every 5 ms under
	// load, and a cut cable was noticed in ≈ 100–150 ms instead of ≈ 190 ms
	// (docs/FAILOVER.md).
	suspectFloor = 60 * time.Millisecond

	// codelTarget and codelInterval drive the CoDel controller of each path's local bulk
	// queue: a packet that waited longer than the target (plus the path's delay
	// equalization) for a whole interval is dropped, the inner TCP's congestion signal (the
	// links themselves, kept within their windows, do not drop). 45 ms, not RFC 8289's 5 ms:
	// measured in scenario H, one inner Cubic flow reached 0.76 of the links' sum at 5 ms,
	// 0.89 at 15 ms and 0.93 at 30 ms; since a dropped packet goes on as an empty
	// placeholder (the receiver learns of the loss at once instead of holding the lane),
	// 30 ms gave 0.84–0.90 and 45 ms 0.94 (A/B, 3 × 8 s each), while ping under load
	// (which rides the priority queue, not this one) did not get worse (docs/DECISIONS.md).
	//
	// The interval is RFC 8289's 100 ms, or 3/2 of the inner flows' round trip when that is
	// longer: the path's SRTT plus what a packet waits in the local queue while CoDel drops
	// (the target and the equalization allowance). CoDel's interval must cover the round
	// trip of the flows it signals (RFC 8289 §4.3), or it drops again before the inner TCP
	// could react to the first drop: from the SRTT alone, one 60 ms link's flow was cut
	// twice per overshoot and carried 0.90 of the link instead of 0.97. With two 60 ms
	// links the inner flow's round trip is ≈ 130 ms, and at the end of its slow start the
	// 100 ms interval dropped 17 packets in 1.5 s: 29 inner retransmissions, several Cubic
	// back-offs, and the flow stayed at 0.77 of the links' sum (docs/DECISIONS.md).
	//
	// That long interval spaces the drops; the onset (how long a standing queue lasts
	// before the first drop) stays 100 ms or 3/2 of the SRTT. With the onset at the long
	// interval too, the DSL that took over a cut cable's load in scenario H (SRTT 50–70 ms,
	// interval 150–170 ms) let its queue reach 190–240 ms before signalling, the inner
	// TCP's retransmission timer fired and the flow stalled 0.4–0.5 s in most cuts instead
	// of 0.1–0.2 s (docs/DECISIONS.md).
	codelTarget   = 45 * time.Millisecond
	codelInterval = 100 * time.Millisecond
	// repairMaxAge is the oldest sent packet that is still re-sent on a NACK: older copies
	// would miss the receiver's reorder deadline anyway.
	repairMaxAge = 500 * time.Millisecond
	// failoverQueueBudget bounds how much of a suspect path's local bulk queue moves to
	// another path: while the target's local queue holds more than this at its rate, the
	// rest waits on the suspect path, for room on the target or for the path's recovery.
	// Moved at once, a 100 Mbit/s path's 950 kB queue gave a 20 Mbit/s one 380 ms of
	// queue ahead of its own packets, at every flap of a path that stalls and recovers;
	// the reorder hold followed it and the inner TCP retransmitted on timeouts
	// (docs/DECISIONS.md). A dead or down path's queue still moves whole.
	failoverQueueBudget = 100 * time.Millisecond
	// repairMargin is added to the fastest path's RTT to give the receiver's reorder buffer
	// the time a NACK and the re-sent copy take.
	repairMargin = 5 * time.Millisecond
	// initialRepairAllowance is the repair allowance before any RTT was measured.
	initialRepairAllowance = 20 * time.Millisecond
)
