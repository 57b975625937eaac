package framing

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func newRand(t testing.TB) *rand.Rand {
	t.Helper()
	return rand.New(rand.NewPCG(0xb0d7, uint64(len(t.Name()))))
}

func randHeader(r *rand.Rand) Header {
	return Header{
		Type:         MsgType(1 + r.IntN(2)),
		KeyPhase:     r.IntN(2) == 1,
		PathID:       uint8(r.Uint32()),
		Receiver:     uint16(r.Uint32()),
		PacketNumber: r.Uint64() & MaxPacketNumber,
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	r := newRand(t)
	buf := make([]byte, MinDatagramLen)
	for range 1000 {
		want := randHeader(r)
		want.Put(buf)
		got, err := ParseHeader(buf)
		if err != nil || got != want {
			t.Fatalf("ParseHeader(Put(%+v)) = %+v, %v", want, got, err)
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	valid := func() []byte {
		b := make([]byte, MinDatagramLen)
		h := Header{Type: TypeData, PathID: 1, PacketNumber: 7}
		h.Put(b)
		return b
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"valid", func(b []byte) []byte { return b }, nil},
		{"empty", func(b []byte) []byte { return b[:0] }, ErrShort},
		{"one byte short of overhead", func(b []byte) []byte { return b[:MinDatagramLen-1] }, ErrShort},
		{"header only", func(b []byte) []byte { return b[:HeaderLen] }, ErrShort},
		{"type 0", func(b []byte) []byte { b[0] = 0; return b }, ErrBadType},
		{"type 3", func(b []byte) []byte { b[0] = 3; return b }, ErrBadType},
		{"type 15 with key phase", func(b []byte) []byte { b[0] = 0x8f; return b }, ErrBadType},
		{"reserved bit 4", func(b []byte) []byte { b[0] |= 0x10; return b }, ErrReserved},
		{"reserved bit 6", func(b []byte) []byte { b[0] |= 0x40; return b }, ErrReserved},
		{"control with key phase", func(b []byte) []byte { b[0] = 0x82; return b }, nil},
		{"long datagram", func(b []byte) []byte { return append(b, make([]byte, 1400)...) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHeader(tt.mutate(valid()))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHeaderEveryPrefixFails(t *testing.T) {
	b := make([]byte, MinDatagramLen)
	h := Header{Type: TypeControl, PathID: 0x10, Receiver: 9, PacketNumber: 1}
	h.Put(b)
	for n := range len(b) {
		if _, err := ParseHeader(b[:n]); !errors.Is(err, ErrShort) {
			t.Errorf("ParseHeader of %d-byte prefix: err = %v, want ErrShort", n, err)
		}
	}
}

func TestHeaderPutPanics(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		buf  int
	}{
		{"short buffer", Header{Type: TypeData}, HeaderLen - 1},
		{"packet number over 48 bits", Header{Type: TypeData, PacketNumber: MaxPacketNumber + 1}, HeaderLen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Put did not panic")
				}
			}()
			tt.h.Put(make([]byte, tt.buf))
		})
	}
}

func TestInnerHeaderRoundTrip(t *testing.T) {
	r := newRand(t)
	buf := make([]byte, InnerHeaderLen)
	for range 1000 {
		want := InnerHeader{Lane: uint8(r.Uint32()), LaneSeq: r.Uint32() & MaxLaneSeq, SendTime: uint16(r.Uint32())}
		want.Put(buf)
		got, err := ParseInnerHeader(buf)
		if err != nil || got != want {
			t.Fatalf("ParseInnerHeader(Put(%+v)) = %+v, %v", want, got, err)
		}
	}
	for n := range InnerHeaderLen {
		if _, err := ParseInnerHeader(buf[:n]); !errors.Is(err, ErrShort) {
			t.Errorf("%d-byte prefix: err = %v, want ErrShort", n, err)
		}
	}
}

func TestInnerHeaderMasksLaneSeq(t *testing.T) {
	buf := make([]byte, InnerHeaderLen)
	h := InnerHeader{Lane: 1, LaneSeq: 1<<24 | 5}
	h.Put(buf)
	if got, _ := ParseInnerHeader(buf); got.LaneSeq != 5 || got.Lane != 1 {
		t.Errorf("got %+v, want lane 1 seq 5", got)
	}
}

func TestExtendSeq24(t *testing.T) {
	const win = 1 << 24
	tests := []struct {
		name      string
		largest   uint64
		truncated uint32
		want      uint64
	}{
		{"first packet", 0, 0, 0},
		{"next", 0, 1, 1},
		{"same", 41, 41, 41},
		{"reordered behind", 100, 95, 95},
		{"jump ahead in window", 100, 100 + win/2, 100 + win/2},
		{"more than half window ahead at start stays (no lower epoch)", 0, win/2 + 2, win/2 + 2},
		{"wrap forward", win - 2, 1, win + 1},
		{"wrap forward exactly to zero", win - 1, 0, win},
		{"late packet before wrap", win + 3, win - 5, win - 5},
		{"far epoch forward", 5*win + 10, 11, 5*win + 11},
		{"far epoch late from previous epoch", 5*win + 10, win - 1, 5*win - 1},
		{"QUIC RFC 9000 A.3 example", 0xa82f30ea, 0x9b32 | 0x2f0000, 0xa82f9b32},
		{"tie: candidate exactly half window below expected goes up", win, 1, win + 1},
		{"candidate exactly half window above expected stays", 3 * win, win/2 + 1, 3*win + win/2 + 1},
		{"candidate just over half window above expected goes down", 3 * win, win/2 + 2, 2*win + win/2 + 2},
		{"near max does not overflow", ^uint64(0) - 5, uint32((^uint64(0) - 3) & (win - 1)), ^uint64(0) - 3},
		{"high bits of truncated ignored", 10, 1<<24 | 11, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExtendSeq24(tt.largest, tt.truncated); got != tt.want {
				t.Errorf("ExtendSeq24(%#x, %#x) = %#x, want %#x", tt.largest, tt.truncated, got, tt.want)
			}
		})
	}
}

// TestExtendSeq24Random checks the decoding contract: any sequence within half a window
// of largest+1 is recovered from its low 24 bits.
func TestExtendSeq24Random(t *testing.T) {
	r := newRand(t)
	for range 10000 {
		largest := r.Uint64N(1 << 50)
		seq := largest + 1 - 1<<23 + 1 + r.Uint64N(1<<24-1)
		if got := ExtendSeq24(largest, uint32(seq)&MaxLaneSeq); got != seq {
			t.Fatalf("ExtendSeq24(%#x, low24(%#x)) = %#x", largest, seq, got)
		}
	}
}

func TestTimestamp(t *testing.T) {
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		d    time.Duration
		want uint16
	}{
		{"epoch", 0, 0},
		{"below one unit", 99 * time.Microsecond, 0},
		{"one unit", 100 * time.Microsecond, 1},
		{"one second", time.Second, 10000},
		{"last before wrap", TimeWrap - TimeUnit, 0xffff},
		{"wrap", TimeWrap, 0},
		{"after wrap", TimeWrap + 250*time.Microsecond, 2},
		{"one hour", time.Hour, uint16(36_000_000 % 65536)},
		{"just before epoch floors", -time.Microsecond, 0xffff},
		{"one unit before epoch", -TimeUnit, 0xffff},
		{"150us before epoch", -150 * time.Microsecond, 0xfffe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Timestamp(epoch.Add(tt.d), epoch); got != tt.want {
				t.Errorf("Timestamp(epoch%+v) = %#x, want %#x", tt.d, got, tt.want)
			}
		})
	}
}

func TestTimeDelta16(t *testing.T) {
	tests := []struct {
		name           string
		later, earlier uint16
		want           time.Duration
	}{
		{"equal", 500, 500, 0},
		{"simple", 1500, 500, 100 * time.Millisecond},
		{"across wrap", 10, 0xfff6, 20 * TimeUnit},
		{"from zero to max", 0xffff, 0, TimeWrap - TimeUnit},
		{"earlier is ahead means almost a full wrap", 0, 1, TimeWrap - TimeUnit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TimeDelta16(tt.later, tt.earlier); got != tt.want {
				t.Errorf("TimeDelta16(%#x, %#x) = %v, want %v", tt.later, tt.earlier, got, tt.want)
			}
		})
	}
}

// TestTimestampDeltaAgree checks that the two halves compose: the wire difference of
// two timestamps is their real difference, floored to units, across many wraps.
func TestTimestampDeltaAgree(t *testing.T) {
	r := newRand(t)
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 1000 {
		a := epoch.Add(time.Duration(r.Int64N(int64(2*time.Hour))) - time.Hour) // any ns, either side of epoch
		gap := time.Duration(r.Int64N(int64(TimeWrap/TimeUnit))) * TimeUnit
		got := TimeDelta16(Timestamp(a.Add(gap), epoch), Timestamp(a, epoch))
		if got != gap {
			t.Fatalf("delta of timestamps %v apart = %v", gap, got)
		}
	}
}

func TestDuration16(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want uint16
	}{
		{"negative saturates at 0", -time.Second, 0},
		{"zero", 0, 0},
		{"rounds down", 199 * time.Microsecond, 1},
		{"max", (1<<16 - 1) * TimeUnit, 0xffff},
		{"over max saturates", time.Minute, 0xffff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Duration16(tt.d)
			if got != tt.want {
				t.Errorf("Duration16(%v) = %d, want %d", tt.d, got, tt.want)
			}
			if back := DurationOf16(got); back > max(tt.d, 0) && tt.d < TimeWrap {
				t.Errorf("DurationOf16(%d) = %v, more than %v", got, back, tt.d)
			}
		})
	}
}

func TestPathID(t *testing.T) {
	for up := range uint8(16) {
		for addr := range uint8(16) {
			id := PathID(up, addr)
			if u, a := SplitPathID(id); u != up || a != addr {
				t.Fatalf("SplitPathID(PathID(%d, %d)) = %d, %d", up, addr, u, a)
			}
		}
	}
	if got := PathID(2, 1); got != 0x21 {
		t.Errorf("PathID(2, 1) = %#x, want 0x21", got)
	}
}
