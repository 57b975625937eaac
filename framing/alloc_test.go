package framing

import (
	"bytes"
	"testing"
	"time"
)

// benchDatagram is a control datagram holding one of each frame, as a receiver sees it.
func benchDatagram() []byte {
	b := make([]byte, PayloadOffset, 128)
	h := Header{Type: TypeControl, PathID: 0x21, Receiver: 7, PacketNumber: 1 << 40}
	h.Put(b)
	in := InnerHeader{}
	in.Put(b[HeaderLen:])
	b = Probe{ID: 1}.Append(b)
	b = ProbeAck{ID: 1, EchoTime: 2, Delay: 3}.Append(b)
	b = Feedback{PathID: 0x21, HighestPN: 99, Packets: 5, Bytes: 6, EchoTime: 7, Delay: 8}.Append(b)
	return append(b, make([]byte, TagLen)...)
}

// parseDatagram is the receive-side hot path: header, inner header, every frame.
func parseDatagram(d []byte) (sum uint64, err error) {
	h, err := ParseHeader(d)
	if err != nil {
		return 0, err
	}
	in, err := ParseInnerHeader(d[HeaderLen:])
	if err != nil {
		return 0, err
	}
	sum = h.PacketNumber + uint64(in.SendTime)
	r := NewFrameReader(d[PayloadOffset : len(d)-TagLen])
	for t, body, ok := r.Next(); ok; t, body, ok = r.Next() {
		switch t {
		case FrameProbe:
			p, err := ParseProbe(body)
			if err != nil {
				return 0, err
			}
			sum += uint64(p.ID)
		case FrameProbeAck:
			a, err := ParseProbeAck(body)
			if err != nil {
				return 0, err
			}
			sum += uint64(a.Delay)
		case FrameFeedback:
			f, err := ParseFeedback(body)
			if err != nil {
				return 0, err
			}
			sum += f.Bytes
		}
	}
	return sum, r.Err()
}

// buildDatagram is the send-side hot path into a reused buffer.
func buildDatagram(buf []byte, pn uint64, now, epoch time.Time) []byte {
	h := Header{Type: TypeData, PathID: 0x10, Receiver: 3, PacketNumber: pn}
	h.Put(buf)
	in := InnerHeader{Lane: 4, LaneSeq: uint32(pn), SendTime: Timestamp(now, epoch)}
	in.Put(buf[HeaderLen:])
	b := Feedback{PathID: 0x10, HighestPN: pn, Packets: 1, Bytes: 2}.Append(buf[:PayloadOffset])
	b = Probe{ID: uint32(pn)}.Append(b)
	return ProbeAck{ID: 1}.Append(b)
}

func TestDataPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	d := benchDatagram()
	buf := make([]byte, 128)
	epoch := time.Unix(0, 0)
	now := epoch.Add(time.Hour)
	malformed := append(bytes.Clone(d[:len(d)-TagLen-1]), make([]byte, TagLen)...)
	tests := []struct {
		name string
		fn   func()
	}{
		{"parse datagram", func() { _, _ = parseDatagram(d) }},
		{"parse malformed datagram", func() { _, _ = parseDatagram(malformed) }},
		{"parse short datagram", func() { _, _ = ParseHeader(d[:5]) }},
		{"validate frames", func() { _ = ValidateFrames(d[PayloadOffset:]) }},
		{"build datagram", func() { _ = buildDatagram(buf, 42, now, epoch) }},
		{"extend seq and times", func() {
			_ = ExtendSeq24(1<<30, 5)
			_ = TimeDelta16(Timestamp(now, epoch), 3)
			_ = Duration16(time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
				t.Errorf("%v allocations per run, want 0", n)
			}
		})
	}
}

func BenchmarkParseDatagram(b *testing.B) {
	d := benchDatagram()
	b.ReportAllocs()
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		if _, err := parseDatagram(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHeader(b *testing.B) {
	d := benchDatagram()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHeader(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildDatagram(b *testing.B) {
	buf := make([]byte, 128)
	epoch := time.Unix(0, 0)
	now := epoch.Add(time.Hour)
	b.ReportAllocs()
	var pn uint64
	for b.Loop() {
		pn++
		_ = buildDatagram(buf, pn, now, epoch)
	}
}

func BenchmarkExtendSeq24(b *testing.B) {
	b.ReportAllocs()
	var largest uint64
	for b.Loop() {
		largest = ExtendSeq24(largest, uint32(largest+1)&MaxLaneSeq)
	}
}

func BenchmarkHelloRoundTrip(b *testing.B) {
	buf := make([]byte, 0, MaxCtrlBody)
	b.ReportAllocs()
	for b.Loop() {
		enc, err := goldenHello.Append(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParseHello(enc); err != nil {
			b.Fatal(err)
		}
	}
}
