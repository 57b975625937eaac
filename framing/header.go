package framing

import "encoding/binary"

// Sizes and limits of the datagram format (PROTOCOL.md §3).
const (
	// HeaderLen is the size of the cleartext header, which is the AEAD's associated data.
	HeaderLen = 10
	// InnerHeaderLen is the size of the sealed prefix: lane, lane sequence, send time.
	InnerHeaderLen = 6
	// TagLen is the size of the AEAD tag that ends every datagram.
	TagLen = 16
	// Overhead is what a datagram adds to its payload.
	Overhead = HeaderLen + InnerHeaderLen + TagLen
	// PayloadOffset is where the inner packet or the control frames start.
	PayloadOffset = HeaderLen + InnerHeaderLen
	// MinDatagramLen is the length of a datagram with an empty payload; anything
	// shorter is dropped before any cryptography.
	MinDatagramLen = Overhead
	// MaxPacketNumber is the largest packet number; a sender must rekey before it.
	MaxPacketNumber = 1<<48 - 1
	// MaxLaneSeq is the largest lane sequence; it then wraps to 0.
	MaxLaneSeq = 1<<24 - 1
)

// MsgType is the datagram type in the low four bits of the first header byte.
type MsgType uint8

// Datagram types defined in v1.
const (
	// TypeData carries one inner IP packet.
	TypeData MsgType = 1
	// TypeControl carries control frames (§4).
	TypeControl MsgType = 2
)

// String returns "data", "control" or "unknown".
func (t MsgType) String() string {
	switch t {
	case TypeData:
		return "data"
	case TypeControl:
		return "control"
	}
	return "unknown"
}

const (
	keyPhaseBit  = 0x80
	reservedBits = 0x70
	typeBits     = 0x0f
)

// Header is the cleartext datagram header.
type Header struct {
	Type         MsgType
	KeyPhase     bool   // which of the two current data keys sealed the datagram
	PathID       uint8  // see [PathID]
	Receiver     uint16 // receiver index chosen by the peer in HELLO/WELCOME
	PacketNumber uint64 // per path and direction; at most [MaxPacketNumber]
}

// Put writes the header into b[:HeaderLen]. It panics if b is shorter than HeaderLen or
// if the packet number exceeds [MaxPacketNumber]: truncating it would reuse a nonce.
// Type is masked to its four bits.
func (h *Header) Put(b []byte) {
	_ = b[HeaderLen-1] // one bounds check, and the documented panic on a short buffer
	if h.PacketNumber > MaxPacketNumber {
		panic("framing: packet number exceeds 48 bits")
	}
	first := byte(h.Type) & typeBits
	if h.KeyPhase {
		first |= keyPhaseBit
	}
	b[0] = first
	b[1] = h.PathID
	binary.BigEndian.PutUint16(b[2:4], h.Receiver)
	putUint48(b[4:10], h.PacketNumber)
}

// ParseHeader decodes the header of the datagram b. It fails with [ErrShort] if the
// datagram is shorter than [MinDatagramLen], [ErrReserved] if a reserved bit is set and
// [ErrBadType] for an unknown type. It does not allocate.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < MinDatagramLen {
		return Header{}, ErrShort
	}
	first := b[0]
	if first&reservedBits != 0 {
		return Header{}, ErrReserved
	}
	t := MsgType(first & typeBits)
	if t != TypeData && t != TypeControl {
		return Header{}, ErrBadType
	}
	return Header{
		Type:         t,
		KeyPhase:     first&keyPhaseBit != 0,
		PathID:       b[1],
		Receiver:     binary.BigEndian.Uint16(b[2:4]),
		PacketNumber: uint48(b[4:10]),
	}, nil
}

// InnerHeader is the sealed 6-byte prefix of the payload. A control datagram has lane 0
// and lane sequence 0.
type InnerHeader struct {
	Lane     uint8
	LaneSeq  uint32 // 24 bits on the wire; widen with [ExtendSeq24]
	SendTime uint16 // see [Timestamp]
}

// Put writes the inner header into b[:InnerHeaderLen]; the caller passes the slice that
// starts at [HeaderLen]. LaneSeq is masked to 24 bits, as it counts modulo 2^24. It panics
// if b is shorter than InnerHeaderLen.
func (h *InnerHeader) Put(b []byte) {
	_ = b[InnerHeaderLen-1]
	b[0] = h.Lane
	b[1] = byte(h.LaneSeq >> 16)
	b[2] = byte(h.LaneSeq >> 8)
	b[3] = byte(h.LaneSeq)
	binary.BigEndian.PutUint16(b[4:6], h.SendTime)
}

// ParseInnerHeader decodes an inner header from the start of the opened plaintext b. It
// fails only with [ErrShort] and does not allocate.
func ParseInnerHeader(b []byte) (InnerHeader, error) {
	if len(b) < InnerHeaderLen {
		return InnerHeader{}, ErrShort
	}
	return InnerHeader{
		Lane:     b[0],
		LaneSeq:  uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]),
		SendTime: binary.BigEndian.Uint16(b[4:6]),
	}, nil
}

// ExtendSeq24 widens a 24-bit lane sequence number to the 64-bit value closest to
// largest+1, where largest is the highest extended sequence received on the lane so far
// (0 before the first packet, since lane sequences start at 0). It is QUIC's packet number
// decoding (RFC 9000 Appendix A.3) with a 24-bit window: correct as long as the sender is
// less than 2^23 packets ahead of, or behind, the receiver on that lane.
func ExtendSeq24(largest uint64, truncated uint32) uint64 {
	const (
		win  = 1 << 24
		hwin = win / 2
		mask = win - 1
	)
	expected := largest + 1
	candidate := expected&^mask | uint64(truncated&mask)
	switch {
	// Differences rather than sums, so nothing overflows near 2^64.
	case candidate <= expected && expected-candidate >= hwin && candidate <= ^uint64(0)-win:
		return candidate + win
	case candidate > expected && candidate-expected > hwin && candidate >= win:
		return candidate - win
	}
	return candidate
}

// PathID returns the path id of the pair (uplink, server address), both 0..15: the uplink
// id in the high nibble, the address id in the low one.
func PathID(uplink, addr uint8) uint8 { return uplink<<4 | addr&0x0f }

// SplitPathID returns the uplink id and server address id a path id names.
func SplitPathID(id uint8) (uplink, addr uint8) { return id >> 4, id & 0x0f }

func putUint48(b []byte, v uint64) {
	_ = b[5]
	b[0] = byte(v >> 40)
	b[1] = byte(v >> 32)
	binary.BigEndian.PutUint32(b[2:6], uint32(v))
}

func uint48(b []byte) uint64 {
	_ = b[5]
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(binary.BigEndian.Uint32(b[2:6]))
}
