package classify

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

func ipv4Packet(src, dst string, proto byte, sport, dport uint16) []byte {
	p := make([]byte, 40)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], 40)
	p[8] = 64
	p[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[20:22], sport)
	binary.BigEndian.PutUint16(p[22:24], dport)
	return p
}

func ipv6Packet(src, dst string, proto byte, sport, dport uint16) []byte {
	p := make([]byte, 60)
	p[0] = 0x60
	p[6] = proto
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(p[8:24], s[:])
	copy(p[24:40], d[:])
	binary.BigEndian.PutUint16(p[40:42], sport)
	binary.BigEndian.PutUint16(p[42:44], dport)
	return p
}

func TestAddresses(t *testing.T) {
	tests := []struct {
		name     string
		pkt      []byte
		src, dst string
	}{
		{"ipv4", ipv4Packet("10.0.0.1", "10.0.0.2", protoTCP, 1, 2), "10.0.0.1", "10.0.0.2"},
		{"ipv6", ipv6Packet("fd00::1", "fd00::2", protoUDP, 1, 2), "fd00::1", "fd00::2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Src(tt.pkt); got != netip.MustParseAddr(tt.src) {
				t.Errorf("Src = %v, want %s", got, tt.src)
			}
			if got := Dst(tt.pkt); got != netip.MustParseAddr(tt.dst) {
				t.Errorf("Dst = %v, want %s", got, tt.dst)
			}
		})
	}
}

func TestNotIP(t *testing.T) {
	for _, pkt := range [][]byte{nil, {0x45}, make([]byte, 19), append([]byte{0x60}, make([]byte, 30)...), append([]byte{0x15}, make([]byte, 50)...)} {
		if Version(pkt) != 0 || Src(pkt).IsValid() || Dst(pkt).IsValid() || Lane(pkt) != 0 {
			t.Errorf("packet % x taken for IP", pkt)
		}
	}
}

func TestLaneIsPerFlow(t *testing.T) {
	a := ipv4Packet("10.0.0.1", "10.0.0.2", protoTCP, 40000, 80)
	a2 := ipv4Packet("10.0.0.1", "10.0.0.2", protoTCP, 40000, 80)
	a2 = append(a2, 1, 2, 3) // same flow, other payload
	if Lane(a) != Lane(a2) {
		t.Fatal("one flow got two lanes")
	}
	// Many distinct flows should spread over many lanes.
	seen := map[uint8]bool{}
	for port := uint16(1000); port < 1400; port++ {
		seen[Lane(ipv4Packet("10.0.0.1", "10.0.0.2", protoTCP, port, 80))] = true
		seen[Lane(ipv6Packet("fd00::1", "fd00::2", protoUDP, port, 53))] = true
	}
	if len(seen) < 200 {
		t.Fatalf("800 flows landed in only %d lanes", len(seen))
	}
}

func TestFragmentsShareLane(t *testing.T) {
	first := ipv4Packet("10.0.0.1", "10.0.0.2", protoUDP, 5000, 53)
	binary.BigEndian.PutUint16(first[6:8], 0x2000) // more fragments
	later := ipv4Packet("10.0.0.1", "10.0.0.2", protoUDP, 0xdead, 0xbeef)
	binary.BigEndian.PutUint16(later[6:8], 0x0010) // offset 128, ports are payload bytes
	if Lane(first) != Lane(later) {
		t.Fatal("fragments of one datagram got different lanes")
	}
}

func TestLaneAllocatesNothing(t *testing.T) {
	p := ipv4Packet("10.0.0.1", "10.0.0.2", protoTCP, 40000, 80)
	if n := testing.AllocsPerRun(100, func() { _ = Lane(p); _ = Dst(p) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

func FuzzLane(f *testing.F) {
	f.Add(ipv4Packet("10.0.0.1", "10.0.0.2", protoTCP, 1, 2))
	f.Add(ipv6Packet("fd00::1", "fd00::2", protoUDP, 1, 2))
	f.Add([]byte{0x4f, 0, 0, 0})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		l := Lane(pkt)
		if Version(pkt) == 0 && (l != 0 || Src(pkt).IsValid()) {
			t.Fatal("non-IP packet classified")
		}
		if Lane(pkt) != l {
			t.Fatal("Lane is not deterministic")
		}
	})
}

// tcpPacket is an IPv4 (v6 false) or IPv6 TCP segment with the given flags and payload length.
func tcpPacket(v6 bool, seq uint32, flags byte, payload int) []byte {
	var p []byte
	if v6 {
		p = ipv6Packet("fd00::1", "fd00::2", protoTCP, 1000, 80)[:40]
		p = append(p, make([]byte, 20+payload)...)
		binary.BigEndian.PutUint16(p[4:6], uint16(20+payload))
	} else {
		p = ipv4Packet("10.0.0.1", "10.0.0.2", protoTCP, 1000, 80)[:20]
		p = append(p, make([]byte, 20+payload)...)
		binary.BigEndian.PutUint16(p[2:4], uint16(40+payload))
	}
	l4 := p[len(p)-20-payload:]
	binary.BigEndian.PutUint16(l4[0:2], 1000)
	binary.BigEndian.PutUint16(l4[2:4], 80)
	binary.BigEndian.PutUint32(l4[4:8], seq)
	l4[12] = 5 << 4
	l4[13] = flags
	return p
}

func TestTCPSegment(t *testing.T) {
	const ack, syn, fin = 0x10, 0x02, 0x01
	frag := tcpPacket(false, 7, ack, 100)
	frag[6] = 0x20 // more fragments
	truncated := tcpPacket(false, 7, ack, 100)
	truncated = truncated[:len(truncated)-1] // shorter than its total length
	badOffset := tcpPacket(true, 7, ack, 10)
	badOffset[40+12] = 15 << 4 // 60-byte header in a 30-byte segment
	tests := []struct {
		name     string
		pkt      []byte
		seq, end uint32
		ok       bool
	}{
		{"ipv4 data", tcpPacket(false, 1000, ack, 1388), 1000, 2388, true},
		{"ipv6 data", tcpPacket(true, 1000, ack, 1368), 1000, 2368, true},
		{"wraps", tcpPacket(false, 0xffffff00, ack, 0x200), 0xffffff00, 0x100, true},
		{"pure ack", tcpPacket(false, 5, ack, 0), 0, 0, false},
		{"syn", tcpPacket(false, 5, syn, 0), 5, 6, true},
		{"fin with data", tcpPacket(true, 5, fin|ack, 10), 5, 16, true},
		{"udp", ipv4Packet("10.0.0.1", "10.0.0.2", protoUDP, 1, 2), 0, 0, false},
		{"fragment", frag, 0, 0, false},
		{"truncated", truncated, 0, 0, false},
		{"data offset past the end", badOffset, 0, 0, false},
		{"not ip", []byte{0x45, 0}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, end, ok := TCPSegment(tt.pkt)
			if ok != tt.ok || seq != tt.seq || end != tt.end {
				t.Errorf("TCPSegment = %d, %d, %v; want %d, %d, %v", seq, end, ok, tt.seq, tt.end, tt.ok)
			}
		})
	}
}

func TestFlowHash(t *testing.T) {
	a := tcpPacket(false, 1, 0x10, 10)
	b := tcpPacket(false, 99, 0x10, 500)
	if FlowHash(a) != FlowHash(b) || Lane(a) != LaneOf(FlowHash(b)) {
		t.Error("two segments of one flow hash differently")
	}
	c := ipv4Packet("10.0.0.1", "10.0.0.2", protoTCP, 1001, 80)
	if FlowHash(a) == FlowHash(c) {
		t.Error("two flows hash alike")
	}
	if FlowHash([]byte{1, 2, 3}) != 0 {
		t.Error("non-IP packet hashed")
	}
}

func FuzzTCPSegment(f *testing.F) {
	f.Add(tcpPacket(false, 1000, 0x10, 100))
	f.Add(tcpPacket(true, 1000, 0x12, 0))
	f.Add(ipv4Packet("10.0.0.1", "10.0.0.2", protoUDP, 1, 2))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		seq, end, ok := TCPSegment(pkt)
		if !ok {
			if seq != 0 || end != 0 {
				t.Fatal("values without ok")
			}
			return
		}
		if Version(pkt) == 0 {
			t.Fatal("non-IP packet taken for TCP")
		}
		if n := end - seq; n == 0 || int(n) > len(pkt) {
			t.Fatalf("segment of %d sequence numbers in a %d-byte packet", n, len(pkt))
		}
	})
}
