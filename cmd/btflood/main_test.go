package main

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func udp4(port int, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[9] = 17
	binary.BigEndian.PutUint16(p[22:], uint16(port))
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	return p
}

func TestUDPPayload(t *testing.T) {
	want := []byte("datagram")
	if got, ok := udpPayload(udp4(7350, want), 7350); !ok || !bytes.Equal(got, want) {
		t.Fatalf("payload %q, %v; want %q", got, ok, want)
	}
	padded := append(udp4(7350, want), 0, 0, 0, 0) // Ethernet padding after the datagram
	if got, ok := udpPayload(padded, 7350); !ok || !bytes.Equal(got, want) {
		t.Fatalf("padded: payload %q, %v; want %q", got, ok, want)
	}
	for name, pkt := range map[string][]byte{
		"other port": udp4(7351, want),
		"tcp":        func() []byte { p := udp4(7350, want); p[9] = 6; return p }(),
		"short":      udp4(7350, want)[:27],
		"bad ihl":    func() []byte { p := udp4(7350, want); p[0] = 0x41; return p }(),
		"udp length": func() []byte { p := udp4(7350, want); p[25] = 200; return p }(),
	} {
		if _, ok := udpPayload(pkt, 7350); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzUDPPayload(f *testing.F) {
	f.Fuzz(func(t *testing.T, pkt []byte) {
		p, ok := udpPayload(pkt, 7350)
		if ok && (len(p) > len(pkt)-28) {
			t.Fatalf("payload of %d bytes from a %d-byte packet", len(p), len(pkt))
		}
	})
}

func TestSourceRange(t *testing.T) {
	got, err := sourceRange("10.101.0.254-10.101.1.1")
	if err != nil || len(got) != 4 || got[0] != netip.MustParseAddr("10.101.0.254") || got[3] != netip.MustParseAddr("10.101.1.1") {
		t.Fatalf("range = %v, %v", got, err)
	}
	for _, bad := range []string{"10.0.0.1", "10.0.0.2-10.0.0.1", "x-10.0.0.1"} {
		if _, err := sourceRange(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
