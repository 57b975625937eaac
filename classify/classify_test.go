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
