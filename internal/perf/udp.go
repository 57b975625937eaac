package perf

import (
	"encoding/binary"
	"errors"
	"time"
)

// Wire layout of btperf UDP datagrams. Big-endian.
//
//	off size field
//	0   1    magic 0xB8
//	1   1    kind: UDPData, UDPFin or UDPReport
//	2   2    reserved, zero
//	4   4    test id (random per client run)
//	8   8    data: sequence number; fin: datagrams sent
//	-- report only --
//	16  8    datagrams received
//	24  8    datagrams received out of order
//	32  8    bytes received
//	40  8    nanoseconds from first to last data datagram
//
// Data datagrams are padded with zeros to the chosen size.
const (
	UDPMagic     = 0xB8
	UDPHeaderLen = 16
	UDPReportLen = 48
	// MaxUDPSize is the largest UDP payload over IPv4.
	MaxUDPSize = 65507
)

// UDPKind is the type of a btperf datagram.
type UDPKind uint8

// Datagram kinds.
const (
	UDPData   UDPKind = 1 // load, carries a sequence number
	UDPFin    UDPKind = 2 // end of test, carries the number of datagrams sent
	UDPReport UDPKind = 3 // receiver's counts, answer to UDPFin
)

// ErrUDP reports a malformed datagram.
var ErrUDP = errors.New("perf: malformed udp datagram")

// UDPPacket is a decoded datagram. Received..Span are set for UDPReport only.
type UDPPacket struct {
	Kind      UDPKind
	Test      uint32
	Seq       uint64 // sequence number (data) or datagrams sent (fin)
	Received  uint64
	Reordered uint64
	Bytes     uint64
	Span      time.Duration
}

// PutUDP encodes p into the start of b, which must hold UDPHeaderLen bytes
// (UDPReportLen for a report), and returns the encoded length. It does not
// touch the rest of b, so a sender can reuse one padded buffer.
func PutUDP(b []byte, p *UDPPacket) (int, error) {
	n := UDPHeaderLen
	if p.Kind == UDPReport {
		n = UDPReportLen
	}
	if p.Kind < UDPData || p.Kind > UDPReport {
		return 0, ErrUDP
	}
	if len(b) < n {
		return 0, ErrShort
	}
	b[0], b[1], b[2], b[3] = UDPMagic, byte(p.Kind), 0, 0
	binary.BigEndian.PutUint32(b[4:], p.Test)
	binary.BigEndian.PutUint64(b[8:], p.Seq)
	if p.Kind == UDPReport {
		binary.BigEndian.PutUint64(b[16:], p.Received)
		binary.BigEndian.PutUint64(b[24:], p.Reordered)
		binary.BigEndian.PutUint64(b[32:], p.Bytes)
		binary.BigEndian.PutUint64(b[40:], uint64(p.Span))
	}
	return n, nil
}

// ParseUDP decodes a datagram. Data datagrams may carry any padding; fin and
// report datagrams must have their exact length.
func ParseUDP(b []byte) (UDPPacket, error) {
	if len(b) < UDPHeaderLen {
		return UDPPacket{}, ErrShort
	}
	p := UDPPacket{
		Kind: UDPKind(b[1]),
		Test: binary.BigEndian.Uint32(b[4:]),
		Seq:  binary.BigEndian.Uint64(b[8:]),
	}
	if b[0] != UDPMagic || b[2] != 0 || b[3] != 0 {
		return UDPPacket{}, ErrUDP
	}
	switch p.Kind {
	case UDPData:
	case UDPFin:
		if len(b) != UDPHeaderLen {
			return UDPPacket{}, ErrUDP
		}
	case UDPReport:
		if len(b) != UDPReportLen {
			return UDPPacket{}, ErrUDP
		}
		p.Received = binary.BigEndian.Uint64(b[16:])
		p.Reordered = binary.BigEndian.Uint64(b[24:])
		p.Bytes = binary.BigEndian.Uint64(b[32:])
		span := binary.BigEndian.Uint64(b[40:])
		if span > uint64(2*MaxDuration) || p.Reordered > p.Received {
			return UDPPacket{}, ErrUDP
		}
		p.Span = time.Duration(span)
	default:
		return UDPPacket{}, ErrUDP
	}
	return p, nil
}

// UDPCounter counts a receiver's data datagrams. A datagram whose sequence
// number is below the highest seen so far counts as reordered (a duplicate
// counts as received and reordered). Loss is computed from the sender's
// count, so tail losses are included. Not safe for concurrent use.
type UDPCounter struct {
	Received  uint64
	Reordered uint64
	Bytes     uint64
	MaxSeq    uint64
	First     time.Duration // offset of the first datagram
	Last      time.Duration // offset of the latest datagram
}

// Observe counts a data datagram of n bytes with sequence seq, received at
// offset at.
func (c *UDPCounter) Observe(seq uint64, n int, at time.Duration) {
	if c.Received == 0 {
		c.First = at
		c.MaxSeq = seq
	} else if seq < c.MaxSeq {
		c.Reordered++
	} else {
		c.MaxSeq = seq
	}
	c.Received++
	c.Bytes += uint64(n)
	c.Last = at
}

// Span is the time from the first to the last datagram.
func (c *UDPCounter) Span() time.Duration { return c.Last - c.First }

// UDPLoss returns the lost fraction given the sender's count, in [0, 1].
func UDPLoss(sent, received uint64) float64 {
	if sent == 0 || received >= sent {
		return 0
	}
	return float64(sent-received) / float64(sent)
}
