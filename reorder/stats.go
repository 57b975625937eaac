package reorder

import "time"

// Stats counts what a [Buffer] did since New. Gaps are counted once per
// release, by the rule that released them.
type Stats struct {
	Delivered  uint64 // items released for delivery
	InOrder    uint64 // items that arrived as their lane's next and were never behind a gap
	Filled     uint64 // gaps released by rule (a): filled
	PathsPast  uint64 // gaps released by rule (b): every live path delivered a later packet
	Deadline   uint64 // gaps released by rule (c): the deadline passed
	Overflow   uint64 // gaps released because MaxPackets items were held
	Jumps      uint64 // lanes flushed because a sequence jumped more than MaxPackets ahead
	Duplicates uint64 // items rejected because the same sequence was already held
	Late       uint64 // items rejected because their lane had delivered or skipped past them

	// Hold time of released gaps, from the gap's deadline start (the
	// arrival of the first packet held behind it) to its release.
	HoldCount uint64
	HoldSum   time.Duration
	HoldMax   time.Duration
}

func (s *Stats) addHold(d time.Duration) {
	s.HoldCount++
	s.HoldSum += d
	s.HoldMax = max(s.HoldMax, d)
}
