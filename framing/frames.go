package framing

import "encoding/binary"

// FrameType identifies a control frame (PROTOCOL.md §4).
type FrameType uint8

// Control frame types defined in v1. Receivers skip any other type.
const (
	// FrameProbe validates a path or keeps an idle one alive.
	FrameProbe FrameType = 1
	// FrameProbeAck answers a PROBE on the same path.
	FrameProbeAck FrameType = 2
	// FrameFeedback reports what the receiver got on one path.
	FrameFeedback FrameType = 3
	// FrameNack names datagrams lost on one path, so the sender can re-send
	// their contents on another.
	FrameNack FrameType = 4
	// FramePathStatus tells the peer the tier of one path (the client's uplink
	// tier), so both directions use the same primary/backup/disabled policy.
	FramePathStatus FrameType = 5
	// FramePathChallenge asks the peer to echo 8 unpredictable bytes, to prove that a new
	// source address of a path is the peer's (RFC 9000 §8.2).
	FramePathChallenge FrameType = 6
	// FramePathResponse echoes a PATH_CHALLENGE's bytes on the same path.
	FramePathResponse FrameType = 7
)

// Path tiers carried by PATH_STATUS.
const (
	TierPrimary  uint8 = 0 // carries traffic whenever it is usable
	TierBackup   uint8 = 1 // carries traffic only while no primary path is usable
	TierDisabled uint8 = 2 // carries no data (probes only)
)

// String returns the frame's name as PROTOCOL.md spells it.
func (t FrameType) String() string {
	switch t {
	case FrameProbe:
		return "PROBE"
	case FrameProbeAck:
		return "PROBE_ACK"
	case FrameFeedback:
		return "FEEDBACK"
	case FrameNack:
		return "NACK"
	case FramePathStatus:
		return "PATH_STATUS"
	case FramePathChallenge:
		return "PATH_CHALLENGE"
	case FramePathResponse:
		return "PATH_RESPONSE"
	}
	return "UNKNOWN"
}

// FrameHeaderLen is the size of a frame's type and body-length prefix.
const FrameHeaderLen = 2

// Body lengths of the v1 frames. A known frame with any other body length is malformed.
const (
	ProbeBodyLen    = 4
	ProbeAckBodyLen = 4 + 2 + 2
	FeedbackBodyLen = 1 + 6 + 4 + 8 + 2 + 2
	NackBodyLen     = 1 + 6 + 2
	PathStatusLen   = 1 + 1
	PathDataLen     = 8 // PATH_CHALLENGE and PATH_RESPONSE
)

// MaxFrameBody is the largest body a frame's one-byte length can describe.
const MaxFrameBody = 255

// Probe is a PROBE frame.
type Probe struct {
	ID uint32 // echoed in the [ProbeAck]
}

// ProbeAck is a PROBE_ACK frame.
type ProbeAck struct {
	ID       uint32 // the probe's id
	EchoTime uint16 // the probe datagram's send time
	Delay    uint16 // 100 µs units between the probe's arrival and this ACK
}

// Feedback is a FEEDBACK frame: the receiver's cumulative view of one path.
type Feedback struct {
	PathID    uint8
	HighestPN uint64 // highest packet number received on the path, ≤ MaxPacketNumber
	Packets   uint32 // datagrams received, cumulative, mod 2^32
	Bytes     uint64 // bytes received, cumulative
	EchoTime  uint16 // send time of the HighestPN datagram
	Delay     uint16 // 100 µs units since that datagram arrived
}

// Nack is a NACK frame: Count datagrams from packet number First on one path
// never arrived (a gap in a FIFO path's packet numbers).
type Nack struct {
	PathID uint8
	First  uint64 // first missing packet number, ≤ MaxPacketNumber
	Count  uint16 // how many in a row, ≥ 1
}

// Len returns the encoded size of the frame, header included.
func (Nack) Len() int { return FrameHeaderLen + NackBodyLen }

// Append appends the encoded frame to b. It panics if First exceeds
// [MaxPacketNumber].
func (f Nack) Append(b []byte) []byte {
	if f.First > MaxPacketNumber {
		panic("framing: nack packet number exceeds 48 bits")
	}
	b = append(b, byte(FrameNack), NackBodyLen, f.PathID)
	b = append(b, byte(f.First>>40), byte(f.First>>32))
	b = binary.BigEndian.AppendUint32(b, uint32(f.First))
	return binary.BigEndian.AppendUint16(b, f.Count)
}

// ParseNack decodes a NACK body as returned by [FrameReader.Next].
func ParseNack(body []byte) (Nack, error) {
	if len(body) != NackBodyLen {
		return Nack{}, ErrFrameLen
	}
	return Nack{PathID: body[0], First: uint48(body[1:7]), Count: binary.BigEndian.Uint16(body[7:9])}, nil
}

// PathStatus is a PATH_STATUS frame.
type PathStatus struct {
	PathID uint8
	Tier   uint8 // TierPrimary, TierBackup or TierDisabled
}

// Len returns the encoded size of the frame, header included.
func (PathStatus) Len() int { return FrameHeaderLen + PathStatusLen }

// Append appends the encoded frame to b.
func (f PathStatus) Append(b []byte) []byte {
	return append(b, byte(FramePathStatus), PathStatusLen, f.PathID, f.Tier)
}

// ParsePathStatus decodes a PATH_STATUS body. An unknown tier is an error.
func ParsePathStatus(body []byte) (PathStatus, error) {
	if len(body) != PathStatusLen {
		return PathStatus{}, ErrFrameLen
	}
	if body[1] > TierDisabled {
		return PathStatus{}, ErrTier
	}
	return PathStatus{PathID: body[0], Tier: body[1]}, nil
}

// PathChallenge is a PATH_CHALLENGE frame. Data must be unpredictable (from a CSPRNG).
type PathChallenge struct {
	Data [PathDataLen]byte
}

// PathResponse is a PATH_RESPONSE frame: the Data of the challenge it answers.
type PathResponse struct {
	Data [PathDataLen]byte
}

// Len returns the encoded size of the frame, header included.
func (PathChallenge) Len() int { return FrameHeaderLen + PathDataLen }

// Len returns the encoded size of the frame, header included.
func (PathResponse) Len() int { return FrameHeaderLen + PathDataLen }

// Append appends the encoded frame to b.
func (f PathChallenge) Append(b []byte) []byte {
	return append(append(b, byte(FramePathChallenge), PathDataLen), f.Data[:]...)
}

// Append appends the encoded frame to b.
func (f PathResponse) Append(b []byte) []byte {
	return append(append(b, byte(FramePathResponse), PathDataLen), f.Data[:]...)
}

// ParsePathChallenge decodes a PATH_CHALLENGE body as returned by [FrameReader.Next].
func ParsePathChallenge(body []byte) (PathChallenge, error) {
	if len(body) != PathDataLen {
		return PathChallenge{}, ErrFrameLen
	}
	return PathChallenge{Data: [PathDataLen]byte(body)}, nil
}

// ParsePathResponse decodes a PATH_RESPONSE body as returned by [FrameReader.Next].
func ParsePathResponse(body []byte) (PathResponse, error) {
	if len(body) != PathDataLen {
		return PathResponse{}, ErrFrameLen
	}
	return PathResponse{Data: [PathDataLen]byte(body)}, nil
}

// Len returns the encoded size of the frame, header included.
func (Probe) Len() int { return FrameHeaderLen + ProbeBodyLen }

// Len returns the encoded size of the frame, header included.
func (ProbeAck) Len() int { return FrameHeaderLen + ProbeAckBodyLen }

// Len returns the encoded size of the frame, header included.
func (Feedback) Len() int { return FrameHeaderLen + FeedbackBodyLen }

// Append appends the encoded frame to b.
func (f Probe) Append(b []byte) []byte {
	b = append(b, byte(FrameProbe), ProbeBodyLen)
	return binary.BigEndian.AppendUint32(b, f.ID)
}

// Append appends the encoded frame to b.
func (f ProbeAck) Append(b []byte) []byte {
	b = append(b, byte(FrameProbeAck), ProbeAckBodyLen)
	b = binary.BigEndian.AppendUint32(b, f.ID)
	b = binary.BigEndian.AppendUint16(b, f.EchoTime)
	return binary.BigEndian.AppendUint16(b, f.Delay)
}

// Append appends the encoded frame to b. It panics if HighestPN exceeds
// [MaxPacketNumber], which no valid packet number can.
func (f Feedback) Append(b []byte) []byte {
	if f.HighestPN > MaxPacketNumber {
		panic("framing: feedback packet number exceeds 48 bits")
	}
	b = append(b, byte(FrameFeedback), FeedbackBodyLen, f.PathID)
	b = append(b, byte(f.HighestPN>>40), byte(f.HighestPN>>32))
	b = binary.BigEndian.AppendUint32(b, uint32(f.HighestPN))
	b = binary.BigEndian.AppendUint32(b, f.Packets)
	b = binary.BigEndian.AppendUint64(b, f.Bytes)
	b = binary.BigEndian.AppendUint16(b, f.EchoTime)
	return binary.BigEndian.AppendUint16(b, f.Delay)
}

// ParseProbe decodes a PROBE body as returned by [FrameReader.Next].
func ParseProbe(body []byte) (Probe, error) {
	if len(body) != ProbeBodyLen {
		return Probe{}, ErrFrameLen
	}
	return Probe{ID: binary.BigEndian.Uint32(body)}, nil
}

// ParseProbeAck decodes a PROBE_ACK body as returned by [FrameReader.Next].
func ParseProbeAck(body []byte) (ProbeAck, error) {
	if len(body) != ProbeAckBodyLen {
		return ProbeAck{}, ErrFrameLen
	}
	return ProbeAck{
		ID:       binary.BigEndian.Uint32(body[0:4]),
		EchoTime: binary.BigEndian.Uint16(body[4:6]),
		Delay:    binary.BigEndian.Uint16(body[6:8]),
	}, nil
}

// ParseFeedback decodes a FEEDBACK body as returned by [FrameReader.Next].
func ParseFeedback(body []byte) (Feedback, error) {
	if len(body) != FeedbackBodyLen {
		return Feedback{}, ErrFrameLen
	}
	return Feedback{
		PathID:    body[0],
		HighestPN: uint48(body[1:7]),
		Packets:   binary.BigEndian.Uint32(body[7:11]),
		Bytes:     binary.BigEndian.Uint64(body[11:19]),
		EchoTime:  binary.BigEndian.Uint16(body[19:21]),
		Delay:     binary.BigEndian.Uint16(body[21:23]),
	}, nil
}

// FrameReader iterates over the frames of a control datagram's payload without
// allocating. Bodies alias the payload. Typical use:
//
//	r := framing.NewFrameReader(payload)
//	for t, body, ok := r.Next(); ok; t, body, ok = r.Next() {
//		switch t { ... }
//	}
//	if r.Err() != nil { drop the datagram }
//
// Because a truncated frame invalidates the whole datagram (§4), a receiver that acts on
// frames as it reads them may prefer to call [ValidateFrames] first.
type FrameReader struct {
	rest []byte
	err  error
}

// NewFrameReader returns a reader over payload, the plaintext after the inner header.
func NewFrameReader(payload []byte) FrameReader { return FrameReader{rest: payload} }

// Next returns the next frame's type and body. Unknown types are returned too, so the
// caller decides to skip them. It returns ok == false at the end of the payload or on a
// truncated frame; [FrameReader.Err] tells the two apart.
func (r *FrameReader) Next() (t FrameType, body []byte, ok bool) {
	if len(r.rest) == 0 || r.err != nil {
		return 0, nil, false
	}
	if len(r.rest) < FrameHeaderLen {
		r.err = ErrShort
		return 0, nil, false
	}
	n := FrameHeaderLen + int(r.rest[1])
	if len(r.rest) < n {
		r.err = ErrShort
		return 0, nil, false
	}
	t, body = FrameType(r.rest[0]), r.rest[FrameHeaderLen:n:n]
	r.rest = r.rest[n:]
	return t, body, true
}

// Err returns [ErrShort] if iteration stopped at a truncated frame, else nil.
func (r *FrameReader) Err() error { return r.err }

// ValidateFrames checks that payload is a well-formed sequence of frames: none is
// truncated and every known frame has its exact body length. It does not allocate.
func ValidateFrames(payload []byte) error {
	r := NewFrameReader(payload)
	for t, body, ok := r.Next(); ok; t, body, ok = r.Next() {
		if want := frameBodyLen(t); want >= 0 && len(body) != want {
			return ErrFrameLen
		}
	}
	return r.Err()
}

// frameBodyLen returns the body length of a known frame type, or -1 for an unknown one.
func frameBodyLen(t FrameType) int {
	switch t {
	case FrameProbe:
		return ProbeBodyLen
	case FrameProbeAck:
		return ProbeAckBodyLen
	case FrameFeedback:
		return FeedbackBodyLen
	case FrameNack:
		return NackBodyLen
	case FramePathStatus:
		return PathStatusLen
	case FramePathChallenge, FramePathResponse:
		return PathDataLen
	}
	return -1
}
