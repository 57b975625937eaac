package perf

import (
	"bytes"
	"testing"
)

func TestStreamRandomAccess(t *testing.T) {
	s := NewStream(7, 1)
	whole := make([]byte, 100)
	s.Fill(whole, 0)
	tests := []struct {
		name   string
		off, n int
	}{
		{"aligned word", 8, 8},
		{"unaligned head", 3, 20},
		{"short unaligned", 5, 2},
		{"short aligned", 16, 3},
		{"unaligned tail", 8, 13},
		{"empty", 40, 0},
		{"whole", 0, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			part := make([]byte, tc.n)
			s.Fill(part, uint64(tc.off))
			if want := whole[tc.off : tc.off+tc.n]; !bytes.Equal(part, want) {
				t.Fatalf("Fill(off=%d) = %x, want %x", tc.off, part, want)
			}
			if k := s.Verify(part, uint64(tc.off)); k != -1 {
				t.Fatalf("Verify of a correct chunk = %d, want -1", k)
			}
		})
	}
}

func TestStreamVerifyDetectsFlip(t *testing.T) {
	s := NewStream(0xBEEF, 3)
	tests := []struct {
		name    string
		off     uint64
		n, flip int
		mask    byte
	}{
		{"first byte", 0, 64, 0, 0x01},
		{"last byte", 0, 64, 63, 0x80},
		{"middle of word", 0, 64, 29, 0x10},
		{"unaligned head", 5, 64, 1, 0xFF},
		{"unaligned tail", 5, 61, 60, 0x02},
		{"large offset", 1 << 40, 4096, 4000, 0x40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, tc.n)
			s.Fill(b, tc.off)
			b[tc.flip] ^= tc.mask
			if k := s.Verify(b, tc.off); k != tc.flip {
				t.Fatalf("Verify = %d, want %d", k, tc.flip)
			}
		})
	}
}

func TestStreamsDiffer(t *testing.T) {
	tests := []struct {
		name string
		a, b Stream
	}{
		{"other flow", NewStream(1, 0), NewStream(1, 1)},
		{"other test", NewStream(1, 0), NewStream(2, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, 64)
			tc.a.Fill(b, 0)
			if tc.b.Verify(b, 0) == -1 {
				t.Fatal("two different streams produced the same bytes")
			}
		})
	}
}

func TestStreamAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	s := NewStream(1, 2)
	b := make([]byte, 1500)
	if n := testing.AllocsPerRun(100, func() {
		s.Fill(b, 3)
		s.Verify(b, 3)
	}); n != 0 {
		t.Fatalf("Fill+Verify allocate %v times per run, want 0", n)
	}
}

func BenchmarkStreamFill(b *testing.B) {
	s := NewStream(1, 2)
	buf := make([]byte, 128<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for i := 0; b.Loop(); i++ {
		s.Fill(buf, uint64(i*len(buf)))
	}
}

func BenchmarkStreamVerify(b *testing.B) {
	s := NewStream(1, 2)
	buf := make([]byte, 128<<10)
	s.Fill(buf, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if s.Verify(buf, 0) != -1 {
			b.Fatal("mismatch")
		}
	}
}
