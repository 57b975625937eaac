package pathstat

// A loss-bounded in-flight ceiling, after BBRv2's inflight_hi
// (draft-cardwell-iccrg-bbr-congestion-control, "inflight_hi"): a link whose bottleneck
// buffer is shallower than the standing queue the window allows (a 5 ms buffer beside a
// 10 ms queue allowance) drops whatever goes beyond it, round after round. Those losses
// are repaired, so the inner TCP sees no loss, but every repair holds its lane for a
// round trip and the inner flow's RTT swings by that much (docs/DECISIONS.md). A packet-timed
// round trip that lost more than ceilingLossThreshold of the datagrams it resolved sets the
// ceiling to ceilingBeta × the most the path had in flight during that round; each round
// that lost at most one datagram raises it by 1/64 (at least one datagram), so it probes
// back up and stops mattering on a link whose buffer is deep enough, and a round with a
// few losses holds it (growing through them, the ceiling settled where each round lost
// just under the threshold). Random loss below the threshold (a lossy radio link's 1–2 %)
// never sets it.
const (
	ceilingLossThreshold = 0.05
	ceilingMinLost       = 3 // fewer losses in a round prove nothing
	ceilingGrowMaxLost   = 1 // a round with more losses than this trims the ceiling
	ceilingTrim          = 2 // by this many datagrams per loss
	ceilingBeta          = 0.85
	ceilingGrowthDiv     = 64
	ceilingMinGrowth     = 1500
	ceilingMax           = 1 << 40
)

type lossCeiling struct {
	bytes       float64 // the ceiling; 0 while no round had excess loss
	lost        uint64  // datagrams of this round found lost
	resolved    uint64  // datagrams of this round found received or lost
	maxInflight int64   // the most in flight since the round began
}

func (c *lossCeiling) onSent(inflight int64) { c.maxInflight = max(c.maxInflight, inflight) }

func (c *lossCeiling) onResolved(lost, resolved uint64) {
	c.lost += lost
	c.resolved += resolved
}

// endRound closes a packet-timed round trip; inflight is what is in flight now, the start
// of the next round's maximum.
func (c *lossCeiling) endRound(inflight int64) {
	switch {
	case c.lost >= ceilingMinLost && float64(c.lost) > ceilingLossThreshold*float64(c.resolved):
		cut := ceilingBeta * float64(c.maxInflight)
		if c.bytes == 0 || cut < c.bytes {
			c.bytes = cut
		}
	case c.bytes == 0:
	case c.lost <= ceilingGrowMaxLost:
		c.bytes = min(c.bytes+max(c.bytes/ceilingGrowthDiv, ceilingMinGrowth), ceilingMax)
	default:
		// A few losses at the ceiling: it is a little above what the buffer holds.
		c.bytes = max(c.bytes-ceilingTrim*float64(c.lost)*ceilingMinGrowth, ceilingMinGrowth)
	}
	c.lost, c.resolved, c.maxInflight = 0, 0, inflight
}

// InflightCeiling returns the loss-bounded ceiling on the bytes the path should have in
// flight, or 0 while no round trip lost more than 5 % of its datagrams. The window is
// min(window, max(ceiling, the bandwidth-delay product + 5 ms)) (sched.Window).
func (s *Stats) InflightCeiling() int { return int(s.ceiling.bytes) }
