package session

import (
	"encoding/binary"
	"testing"

	"github.com/bondtun/bondtun/classify"
)

// tcpSegment is an IPv4 TCP segment from 10.0.0.1:sport to 10.0.0.2:80 with n payload bytes.
func tcpSegment(sport uint16, seq uint32, n int) []byte {
	p := make([]byte, 40+n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	p[9] = 6
	copy(p[12:20], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(p[20:22], sport)
	binary.BigEndian.PutUint16(p[22:24], 80)
	binary.BigEndian.PutUint32(p[24:28], seq)
	p[32] = 5 << 4
	p[33] = 0x10
	return p
}

func TestIsRetransmission(t *testing.T) {
	type seg struct {
		sport  uint16
		seq    uint32
		n      int
		resent bool
	}
	tests := []struct {
		name string
		segs []seg
	}{
		{"in order", []seg{{1, 1000, 1000, false}, {1, 2000, 1000, false}, {1, 3000, 1000, false}}},
		{"re-sent hole", []seg{{1, 1000, 1000, false}, {1, 2000, 1000, false}, {1, 3000, 1000, false}, {1, 2000, 1000, true}, {1, 4000, 1000, false}}},
		{"partly new is not a retransmission", []seg{{1, 1000, 1000, false}, {1, 1500, 1000, false}}},
		{"across the wrap", []seg{{1, 0xfffffc18, 1000, false}, {1, 0x3e8 - 1000 + 1000, 1000, false}, {1, 0xfffffc18, 1000, true}}},
		{"far behind starts over", []seg{{1, 0x80000000, 1000, false}, {1, 1000, 1000, false}, {1, 2000, 1000, false}}},
		{"pure acks are not tracked", []seg{{1, 1000, 1000, false}, {1, 1000, 0, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Session{txLanes: new(txLanes)}
			for i, g := range tt.segs {
				pkt := tcpSegment(g.sport, g.seq, g.n)
				flow := classify.FlowHash(pkt)
				if got := s.isRetransmission(pkt, flow, classify.LaneOf(flow)); got != g.resent {
					t.Fatalf("segment %d (seq %d, %d bytes): retransmission %v, want %v", i, g.seq, g.n, got, g.resent)
				}
			}
		})
	}
}

// TestIsRetransmissionSharedLane: two flows on one lane are never taken for each other.
func TestIsRetransmissionSharedLane(t *testing.T) {
	s := &Session{txLanes: new(txLanes)}
	a := tcpSegment(1, 5000, 1000)
	var b []byte
	for port := uint16(2); ; port++ {
		b = tcpSegment(port, 1000, 1000) // below a's sequence numbers
		if classify.Lane(b) == classify.Lane(a) {
			break
		}
	}
	for _, pkt := range [][]byte{a, b, a} {
		flow := classify.FlowHash(pkt)
		if s.isRetransmission(pkt, flow, classify.LaneOf(flow)) {
			t.Fatal("a segment of another flow on the same lane taken for a retransmission")
		}
	}
}
