package crypto

import "sync/atomic"

// ReplayWindowSize is how many packet numbers, counting the highest one
// accepted, a ReplayWindow remembers: with highest h, packet numbers
// h-4095..h are checked against the bitmap, older ones are rejected
// (docs/PROTOCOL.md §3). Each path has its own window, so it only has to
// absorb one path's reordering, not the skew between paths.
const ReplayWindowSize = 4096

const (
	replayBlockLog  = 6 // 64 bits per block
	replayBlockBits = 1 << replayBlockLog
	// The ring holds the window plus one block, so that advancing into a
	// new block can clear it without losing bits still inside the window;
	// rounded up to a power of two so the index is a mask.
	replayRingBlocks = 128
	replayRingMask   = replayRingBlocks - 1
	replayBitMask    = replayBlockBits - 1
)

// Compile-time check that the ring is larger than the window by a block.
var _ [replayRingBlocks*replayBlockBits - ReplayWindowSize - replayBlockBits]struct{}

// ReplayWindow rejects packet numbers already seen or older than the window.
// It is the RFC 6479 ring of 64-bit blocks, as in wireguard-go's replay
// package, sized to [ReplayWindowSize].
//
// Use it in two steps: [ReplayWindow.Check] before opening a datagram (a
// cheap reject of replays), then [ReplayWindow.Update] once the AEAD has
// authenticated it, so that only authenticated datagrams change the state.
//
// The zero value is an empty window, ready to use. Update and Reset must not
// run concurrently with each other (the path's receive lock orders them);
// Check may run at any time, concurrently with them, so that a replay is
// rejected without that lock. Its fields are atomic for that: Update clears
// the blocks the window moves into before it publishes the new highest packet
// number, so a Check that sees the new highest also sees them cleared. A
// Check racing an Update can only err towards accepting (a number the Update
// is about to record or move past), which the Update after the open rejects.
type ReplayWindow struct {
	last atomic.Uint64 // highest packet number accepted by Update
	ring [replayRingBlocks]atomic.Uint64
}

// Check reports whether pn may be new: false if it exceeds
// [MaxPacketNumber], is older than the window, or was already recorded by
// Update. It does not change the window.
func (w *ReplayWindow) Check(pn uint64) bool {
	if pn > MaxPacketNumber {
		return false
	}
	last := w.last.Load()
	if pn > last {
		return true
	}
	if last-pn >= ReplayWindowSize {
		return false
	}
	return w.ring[(pn>>replayBlockLog)&replayRingMask].Load()&(1<<(pn&replayBitMask)) == 0
}

// Update records pn as seen, advancing the window if pn is the highest yet.
// It returns false, changing nothing, if pn would fail Check now: another
// datagram with the same number was authenticated between this one's Check
// and Update, or the window moved past it meanwhile.
func (w *ReplayWindow) Update(pn uint64) bool {
	if pn > MaxPacketNumber {
		return false
	}
	last := w.last.Load()
	if pn > last {
		// Clear the blocks the window moves into; a jump of a whole ring
		// or more clears everything.
		cur := last >> replayBlockLog
		diff := pn>>replayBlockLog - cur
		if diff > replayRingBlocks {
			diff = replayRingBlocks
		}
		for i := cur + 1; i <= cur+diff; i++ {
			w.ring[i&replayRingMask].Store(0)
		}
	} else if last-pn >= ReplayWindowSize {
		return false
	}
	block := &w.ring[(pn>>replayBlockLog)&replayRingMask]
	bit := uint64(1) << (pn & replayBitMask)
	b := block.Load()
	if b&bit != 0 {
		return false
	}
	block.Store(b | bit)
	if pn > last {
		w.last.Store(pn)
	}
	return true
}

// Reset empties the window, as for a new key.
func (w *ReplayWindow) Reset() {
	w.last.Store(0)
	for i := range w.ring {
		w.ring[i].Store(0)
	}
}
