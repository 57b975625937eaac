// Package liveness is the per-path liveness state machine of bondtun's
// failover (docs/DECISIONS.md, "Liveness"): it decides, from what the session sends and
// hears on one path, whether the path may carry new data.
//
// States and transitions:
//
//	Validating ──answer──► Up            (a path that was never Up)
//	Validating ──answer──► Rejoining     (a path that was Up before a local down)
//	Up ──silence ≥ suspect threshold──► Suspect
//	Suspect ──answer (after hold-down)──► Up
//	Suspect ──silence ≥ DeadAfter──► Dead
//	Dead ──answer (after hold-down)──► Rejoining
//	Rejoining ──RejoinProbes good answers in a row (after hold-down)──► Up
//	Rejoining ──probes unanswered for the threshold──► Dead
//	any ──OnLocalDown──► Down ──OnLocalUp──► Validating
//
// "Silence" is the time since the first datagram sent after the last
// evidence of delivery (OnHeard). With data in flight the suspect threshold
// is max(SRTT + 4·RTTVAR, SuspectFloor), so a bufferbloated path whose RTT
// has grown is not declared dead; feedback every few milliseconds is the
// heartbeat then. Without data in flight, probes are the heartbeat: the path
// is suspect once a probe has gone unanswered for
// max(MissedProbes × ProbeInterval, SRTT + 4·RTTVAR, SuspectFloor). RTTVAR is
// held at its peak and decays by a quarter once per SRTT (as Linux does),
// not per sample, and is never taken below SRTT/2 (its RFC 6298 initial
// value), so SRTT + 4·RTTVAR ≥ 3·SRTT: per-sample smoothing of feedback
// every 5 ms shrinks RTTVAR to nearly zero on a steady path, and a delay
// spike of a few RTTs would otherwise look like a failure.
//
// A rejoin answer is good when its RTT is at most RejoinRTTFactor × the SRTT
// the path had when it stopped answering, or within RejoinRTTSlack of it (a
// sub-millisecond path's answers vary by more than its SRTT with the hosts'
// scheduling alone). That reference is forgotten after RejoinRTTMemory, so a
// path whose route really got slower still rejoins. A slow answer resets the
// count. A path that is alone (no other path of the
// session usable, [Path.SetAlone]) rejoins on its first answer, however slow. Improvements (Suspect→Up, Dead→Rejoining,
// Rejoining→Up) wait until the current state is at least one ProbeInterval
// old, so a flapping path changes state at most about once per probe
// interval. Deteriorations (→Suspect, →Dead, →Down) happen at once.
//
// Only Up carries new data ([Path.Usable]). The caller reacts to every
// changed [Transition]: on →Suspect, →Dead or →Down it moves new traffic off
// the path, resends its unacknowledged packets on other paths and tells the
// reorder buffer the path is not live; on →Up it schedules on the path again,
// restarting the path's rate estimate low when [Transition.Restart] says so.
//
// The package starts no goroutines, reads no clock (every method takes now)
// and does not allocate. A Path is not safe for concurrent use.
package liveness
