package perf

import "encoding/binary"

// Stream is a deterministic pseudo-random byte stream with random access:
// byte k depends only on the seed and k, so a receiver can check any chunk
// without replaying what came before and without keeping state. It is a
// value type and safe for concurrent use.
type Stream struct {
	seed uint64
}

// NewStream returns the stream of one flow of a test. Mixing in the flow
// index gives every flow its own bytes, so crossed connections are caught.
func NewStream(testSeed uint16, flow uint8) Stream {
	return Stream{seed: splitmix64(uint64(testSeed)<<8 | uint64(flow))}
}

// splitmix64 is the SplitMix64 finaliser: a cheap bijective mixer whose
// output passes common statistical tests, plenty for catching corruption.
func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// word returns the 8 stream bytes at offsets 8*blk .. 8*blk+7, little-endian.
func (s Stream) word(blk uint64) uint64 {
	return splitmix64(s.seed ^ blk*0xD1B54A32D192ED03)
}

// Fill writes the stream bytes at offsets off .. off+len(dst)-1 into dst.
func (s Stream) Fill(dst []byte, off uint64) {
	// Unaligned head and tail go byte by byte; whole words at once.
	for len(dst) > 0 && (off%8 != 0 || len(dst) < 8) {
		dst[0] = byte(s.word(off/8) >> (8 * (off % 8)))
		dst, off = dst[1:], off+1
	}
	for len(dst) >= 8 {
		binary.LittleEndian.PutUint64(dst, s.word(off/8))
		dst, off = dst[8:], off+8
	}
	for len(dst) > 0 {
		dst[0] = byte(s.word(off/8) >> (8 * (off % 8)))
		dst, off = dst[1:], off+1
	}
}

// Verify checks that src equals the stream bytes starting at offset off. It
// returns the index in src of the first wrong byte, or -1 if all match.
func (s Stream) Verify(src []byte, off uint64) int {
	i := 0
	for i < len(src) && (off%8 != 0 || len(src)-i < 8) {
		if src[i] != byte(s.word(off/8)>>(8*(off%8))) {
			return i
		}
		i, off = i+1, off+1
	}
	for len(src)-i >= 8 {
		got, want := binary.LittleEndian.Uint64(src[i:]), s.word(off/8)
		if got != want {
			x := got ^ want
			k := 0
			for x&0xff == 0 {
				x >>= 8
				k++
			}
			return i + k
		}
		i, off = i+8, off+8
	}
	for i < len(src) {
		if src[i] != byte(s.word(off/8)>>(8*(off%8))) {
			return i
		}
		i, off = i+1, off+1
	}
	return -1
}
