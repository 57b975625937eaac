package perf

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestUDPRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    UDPPacket
		size int
	}{
		{"data padded", UDPPacket{Kind: UDPData, Test: 9, Seq: 1 << 40}, 200},
		{"data minimal", UDPPacket{Kind: UDPData, Test: 1, Seq: 0}, UDPHeaderLen},
		{"fin", UDPPacket{Kind: UDPFin, Test: 0xFFFFFFFF, Seq: 1000}, UDPHeaderLen},
		{"report", UDPPacket{Kind: UDPReport, Test: 5, Seq: 10, Received: 9, Reordered: 2, Bytes: 1800, Span: time.Second}, UDPReportLen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, tc.size)
			n, err := PutUDP(b, &tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if tc.p.Kind != UDPData && n != tc.size {
				t.Fatalf("encoded %d bytes, want %d", n, tc.size)
			}
			got, err := ParseUDP(b)
			if err != nil || got != tc.p {
				t.Fatalf("ParseUDP = %+v, %v; want %+v", got, err, tc.p)
			}
			for k := range UDPHeaderLen {
				if _, err := ParseUDP(b[:k]); !errors.Is(err, ErrShort) {
					t.Fatalf("%d-byte prefix: err = %v, want ErrShort", k, err)
				}
			}
		})
	}
}

func TestUDPRejects(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"bad magic", []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrUDP},
		{"bad kind", []byte{UDPMagic, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrUDP},
		{"reserved set", []byte{UDPMagic, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrUDP},
		{"long fin", append([]byte{UDPMagic, 2}, make([]byte, 15)...), ErrUDP},
		{"short report", append([]byte{UDPMagic, 3}, make([]byte, 14)...), ErrUDP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseUDP(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestUDPCounter(t *testing.T) {
	tests := []struct {
		name          string
		seqs          []uint64
		sent          uint64
		wantReordered uint64
		wantLoss      float64
	}{
		{"in order", []uint64{0, 1, 2, 3}, 4, 0, 0},
		{"gap is loss", []uint64{0, 1, 3}, 4, 0, 0.25},
		{"tail loss", []uint64{0, 1}, 4, 0, 0.5},
		{"swap", []uint64{0, 2, 1, 3}, 4, 1, 0},
		{"late by many", []uint64{1, 2, 3, 0}, 4, 1, 0},
		{"nothing arrived", nil, 4, 0, 1},
		{"nothing sent", nil, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c UDPCounter
			for i, s := range tc.seqs {
				c.Observe(s, 100, time.Duration(i+1)*ms)
			}
			if c.Reordered != tc.wantReordered || c.Received != uint64(len(tc.seqs)) || c.Bytes != 100*uint64(len(tc.seqs)) {
				t.Fatalf("counter = %+v, want %d reordered", c, tc.wantReordered)
			}
			if got := UDPLoss(tc.sent, c.Received); got != tc.wantLoss {
				t.Fatalf("loss = %v, want %v", got, tc.wantLoss)
			}
			if n := len(tc.seqs); n > 0 && c.Span() != time.Duration(n-1)*ms {
				t.Fatalf("span = %v, want %v", c.Span(), time.Duration(n-1)*ms)
			}
		})
	}
}

func TestUDPAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	b := make([]byte, 200)
	var c UDPCounter
	seq := uint64(0)
	if n := testing.AllocsPerRun(1000, func() {
		seq++
		p := UDPPacket{Kind: UDPData, Test: 1, Seq: seq}
		PutUDP(b, &p)
		q, _ := ParseUDP(b)
		c.Observe(q.Seq, len(b), time.Duration(seq))
	}); n != 0 {
		t.Fatalf("put+parse+observe allocate %v times, want 0", n)
	}
}

func BenchmarkUDPParseObserve(b *testing.B) {
	buf := make([]byte, 200)
	var c UDPCounter
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		seq++
		p := UDPPacket{Kind: UDPData, Test: 1, Seq: seq}
		PutUDP(buf, &p)
		q, err := ParseUDP(buf)
		if err != nil {
			b.Fatal(err)
		}
		c.Observe(q.Seq, len(buf), time.Duration(seq))
	}
}

func FuzzUDP(f *testing.F) {
	for _, p := range []UDPPacket{
		{Kind: UDPData, Test: 1, Seq: 2},
		{Kind: UDPFin, Test: 1, Seq: 3},
		{Kind: UDPReport, Test: 1, Seq: 3, Received: 2, Reordered: 1, Bytes: 400, Span: ms},
	} {
		b := make([]byte, UDPReportLen)
		n, _ := PutUDP(b, &p)
		f.Add(b[:n])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseUDP(b)
		if err != nil {
			return
		}
		out := bytes.Clone(b)
		n, err := PutUDP(out, &p)
		if err != nil {
			t.Fatalf("parsed datagram does not encode: %v", err)
		}
		if !bytes.Equal(out[:n], b[:n]) {
			t.Fatalf("round trip differs: % x vs % x", out[:n], b[:n])
		}
	})
}
