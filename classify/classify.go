// Package classify reads the few fields of an inner IP packet that bondtun needs to route and
// stripe it: its addresses, and the lane (a hash of the flow's 5-tuple) that keeps one flow's
// packets in order at the receiver while other flows go on. It is pure and never allocates.
package classify

import (
	"encoding/binary"
	"net/netip"
)

// Protocol numbers with ports at the start of their header.
const (
	protoTCP     = 6
	protoUDP     = 17
	protoSCTP    = 132
	protoUDPLite = 136
)

// Version returns the IP version of pkt (4 or 6), or 0 if pkt is not a plausible IP packet.
func Version(pkt []byte) int {
	if len(pkt) >= 20 && pkt[0]>>4 == 4 {
		return 4
	}
	if len(pkt) >= 40 && pkt[0]>>4 == 6 {
		return 6
	}
	return 0
}

// Src returns the source address of an IP packet, or the zero Addr.
func Src(pkt []byte) netip.Addr {
	switch Version(pkt) {
	case 4:
		return netip.AddrFrom4([4]byte(pkt[12:16]))
	case 6:
		return netip.AddrFrom16([16]byte(pkt[8:24]))
	}
	return netip.Addr{}
}

// Dst returns the destination address of an IP packet, or the zero Addr.
func Dst(pkt []byte) netip.Addr {
	switch Version(pkt) {
	case 4:
		return netip.AddrFrom4([4]byte(pkt[16:20]))
	case 6:
		return netip.AddrFrom16([16]byte(pkt[24:40]))
	}
	return netip.Addr{}
}

// Lane maps the packet's flow (addresses, protocol, ports) to one of 256 lanes. Packets of
// one flow always get the same lane. Fragments and unknown protocols hash on addresses and
// protocol only, so all their pieces share a lane.
func Lane(pkt []byte) uint8 { return LaneOf(FlowHash(pkt)) }

// LaneOf folds a FlowHash into a lane.
func LaneOf(h uint64) uint8 { return uint8(h ^ h>>8 ^ h>>16 ^ h>>24 ^ h>>32) }

// FlowHash hashes the packet's flow (addresses, protocol and, for protocols with ports, the
// ports): packets of one flow get the same value, and different flows almost never do. It is
// 0 for a packet that is not IP.
func FlowHash(pkt []byte) uint64 {
	var h uint64 = 14695981039346656037 // FNV-1a offset basis
	mix := func(b []byte) {
		for _, c := range b {
			h ^= uint64(c)
			h *= 1099511628211
		}
	}
	var proto byte
	var l4 []byte
	switch Version(pkt) {
	case 4:
		ihl := int(pkt[0]&0x0f) * 4
		proto = pkt[9]
		mix(pkt[12:20])
		fragmented := binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0
		if ihl >= 20 && len(pkt) >= ihl+4 && !fragmented {
			l4 = pkt[ihl:]
		}
	case 6:
		proto = pkt[6]
		mix(pkt[8:40])
		if len(pkt) >= 44 {
			l4 = pkt[40:]
		}
	default:
		return 0
	}
	h ^= uint64(proto)
	h *= 1099511628211
	switch proto {
	case protoTCP, protoUDP, protoSCTP, protoUDPLite:
		if l4 != nil {
			mix(l4[:4])
		}
	}
	return h
}

// TCPSegment returns the sequence space a TCP segment carrying data occupies: its
// sequence number and the one after its last byte (SYN and FIN count one each, as in TCP).
// ok is false for anything else: not TCP, a fragment, an IPv6 packet with extension headers,
// a truncated header, or a segment that occupies no sequence space (a pure ACK).
func TCPSegment(pkt []byte) (seq, end uint32, ok bool) {
	var l4 []byte
	switch Version(pkt) {
	case 4:
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:4]))
		if pkt[9] != protoTCP || ihl < 20 || total < ihl || total > len(pkt) ||
			binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 {
			return 0, 0, false
		}
		l4 = pkt[ihl:total]
	case 6:
		total := 40 + int(binary.BigEndian.Uint16(pkt[4:6]))
		if pkt[6] != protoTCP || total > len(pkt) {
			return 0, 0, false
		}
		l4 = pkt[40:total]
	default:
		return 0, 0, false
	}
	if len(l4) < 20 {
		return 0, 0, false
	}
	off := int(l4[12]>>4) * 4
	if off < 20 || off > len(l4) {
		return 0, 0, false
	}
	n := uint32(len(l4) - off)
	flags := l4[13]
	if flags&0x02 != 0 { // SYN
		n++
	}
	if flags&0x01 != 0 { // FIN
		n++
	}
	if n == 0 {
		return 0, 0, false
	}
	seq = binary.BigEndian.Uint32(l4[4:8])
	return seq, seq + n, true
}
