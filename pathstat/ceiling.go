package pathstat

import "math"

// A loss-bounded in-flight ceiling, after BBRv2's inflight_hi
// (draft-cardwell-iccrg-bbr-congestion-control, "inflight_hi"): a link whose bottleneck
// buffer is shallower than the standing queue the window allows (a 5 ms buffer beside a
// 10 ms queue allowance) drops whatever goes beyond it, round after round. Those losses
// are repaired, so the inner TCP sees no loss, but every repair holds its lane for a
// round trip and the inner flow's RTT swings by that much (docs/DECISIONS.md).
//
// Such an overrun loses a large share of every round (the excess of the window over the
// buffer: 10–20 % of a round's datagrams), while a lossy radio link loses 1–2 % at random,
// whatever is in flight. Each round's verdict was once its own (more than 5 % of the
// datagrams it resolved and at least 3), but a round of a slow or fresh path resolves only
// 20–60 datagrams, and 3 random losses among them at 1.6 % come once in about 80 rounds:
// the ceiling was set in the first second of a 52 Mbit/s link with 1.6 % random loss, it
// ended the path's startup at 15 Mbit/s, and the path stayed near there for seconds, held
// to its bandwidth-delay product (issue 12). So the evidence accumulates over rounds, as a
// CUSUM of the log-likelihood ratio of a loss rate of ceilingExcessLoss (an overrun) against
// ceilingBaseLoss (random loss; E. S. Page, "Continuous inspection schemes", Biometrika
// 1954): each lost datagram adds ln(p1/p0), each delivered one ln((1−p1)/(1−p0)) < 0, the
// sum never goes below 0, and the ceiling is set to ceilingBeta × the most the path had in
// flight during the round at which it passes ceilingEvidence. Random loss below about
// 5 % drifts the sum down; with 2 % random loss it passes the bound once in about 40 000
// datagrams, and an overrun that loses 17 % of a round's datagrams passes it within about
// 35 datagrams, 10 % within about 75.
//
// Each round that lost no more than half of ceilingBaseLoss of its datagrams (or one) raises
// the ceiling by 1/64 (at least one datagram), so it probes back up and stops mattering on
// a link whose buffer is deep enough; a round that lost more than ceilingBaseLoss trims it
// by ceilingTrim datagrams per loss beyond that share, and one in between holds it. So the
// ceiling settles where the link drops 1–2 % of a round, which random loss could explain
// too (BBRv2's loss threshold is also 2 %; those losses are repaired). Counting every loss
// against the ceiling, as the trim once did, let a lossy link's random 1–2 % trim a large
// window's ceiling round after round: 4 of 270 datagrams a round took it from 340 kB to
// one datagram in 50 rounds, and the CUSUM, at 2 % random loss, sets a ceiling about once
// in 40 000 datagrams (every 20 s at 20 Mbit/s).
const (
	ceilingBaseLoss    = 0.02
	ceilingExcessLoss  = 0.10
	ceilingEvidence    = 7 // ≈ ln 1100
	ceilingGrowMaxLost = 1 // random loss may take this many datagrams of any round
	ceilingTrim        = 2 // datagrams trimmed per loss beyond random loss
	ceilingBeta        = 0.85
	ceilingGrowthDiv   = 64
	ceilingMinGrowth   = 1500
	ceilingMax         = 1 << 40
)

var (
	ceilingLLRLost = math.Log(ceilingExcessLoss / ceilingBaseLoss)
	ceilingLLRKept = math.Log((1 - ceilingExcessLoss) / (1 - ceilingBaseLoss))
)

type lossCeiling struct {
	bytes       float64 // the ceiling; 0 while no overrun was detected
	evidence    float64 // the CUSUM of excess loss, ≥ 0
	lost        uint64  // datagrams of this round found lost
	resolved    uint64  // datagrams of this round found received or lost
	maxInflight int64   // the most in flight since the round began
}

// randomLoss is how many of this round's datagrams random loss may take without telling
// of an overrun: ceilingBaseLoss of those resolved, and at least ceilingGrowMaxLost.
func (c *lossCeiling) randomLoss() float64 {
	return max(ceilingBaseLoss*float64(c.resolved), ceilingGrowMaxLost)
}

func (c *lossCeiling) onSent(inflight int64) { c.maxInflight = max(c.maxInflight, inflight) }

func (c *lossCeiling) onResolved(lost, resolved uint64) {
	c.lost += lost
	c.resolved += resolved
}

// endRound closes a packet-timed round trip; inflight is what is in flight now, the start
// of the next round's maximum.
func (c *lossCeiling) endRound(inflight int64) {
	kept := c.resolved - min(c.lost, c.resolved)
	c.evidence = max(c.evidence+float64(c.lost)*ceilingLLRLost+float64(kept)*ceilingLLRKept, 0)
	switch {
	case c.evidence > ceilingEvidence:
		c.evidence = 0
		cut := ceilingBeta * float64(c.maxInflight)
		if c.bytes == 0 || cut < c.bytes {
			c.bytes = cut
		}
	case c.bytes == 0:
	case float64(c.lost) <= max(c.randomLoss()/2, ceilingGrowMaxLost):
		c.bytes = min(c.bytes+max(c.bytes/ceilingGrowthDiv, ceilingMinGrowth), ceilingMax)
	case float64(c.lost) > c.randomLoss():
		// More losses than random loss explains: the ceiling is a little above what the
		// buffer holds.
		excess := float64(c.lost) - c.randomLoss()
		c.bytes = max(c.bytes-ceilingTrim*excess*ceilingMinGrowth, ceilingMinGrowth)
	}
	c.lost, c.resolved, c.maxInflight = 0, 0, inflight
}

// InflightCeiling returns the loss-bounded ceiling on the bytes the path should have in
// flight, or 0 while no overrun was detected. The window is
// min(window, max(ceiling, the bandwidth-delay product + 5 ms)) (sched.Window).
func (s *Stats) InflightCeiling() int { return int(s.ceiling.bytes) }
