package path

import (
	"bytes"
	"net/netip"
	"testing"
)

func loopbackPair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	a, err := Listen(ListenOptions{Addr: lo})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Listen(ListenOptions{Addr: lo})
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestBatchRoundTrip(t *testing.T) {
	a, b := loopbackPair(t)
	const n = 40
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte(i)}, 100+i)
	}
	sent, err := a.WriteBatch(out, b.LocalAddr())
	if err != nil || sent != n {
		t.Fatalf("WriteBatch = %d, %v; want %d", sent, err, n)
	}
	bufs := make([][]byte, MaxBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, MaxBatch)
	from := make([]netip.AddrPort, MaxBatch)
	got := 0
	for got < n {
		k, err := b.ReadBatch(bufs, sizes, from)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < k; i++ {
			want := out[got+i]
			if !bytes.Equal(bufs[i][:sizes[i]], want) {
				t.Fatalf("datagram %d: got %d bytes, want %d", got+i, sizes[i], len(want))
			}
			if from[i] != a.LocalAddr() {
				t.Fatalf("datagram %d from %v, want %v", got+i, from[i], a.LocalAddr())
			}
		}
		got += k
	}
}

func TestTruncatedDatagramIsFlagged(t *testing.T) {
	a, b := loopbackPair(t)
	if _, err := a.WriteBatch([][]byte{make([]byte, 300)}, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{make([]byte, 100)}
	sizes := make([]int, 1)
	from := make([]netip.AddrPort, 1)
	if n, err := b.ReadBatch(bufs, sizes, from); err != nil || n != 1 {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
	if sizes[0] != -1 {
		t.Fatalf("size = %d, want -1 for a truncated datagram", sizes[0])
	}
}

func TestReadAfterCloseReportsClosed(t *testing.T) {
	a, _ := loopbackPair(t)
	a.Close()
	_, err := a.ReadBatch([][]byte{make([]byte, 10)}, make([]int, 1), make([]netip.AddrPort, 1))
	if !IsClosed(err) {
		t.Fatalf("err = %v, want closed", err)
	}
}

func TestBatchIOAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	a, b := loopbackPair(t)
	out := [][]byte{make([]byte, 1400), make([]byte, 1400), make([]byte, 1400), make([]byte, 1400)}
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, 8)
	from := make([]netip.AddrPort, 8)
	dst := b.LocalAddr()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := a.WriteBatch(out, dst); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(out); {
			n, err := b.ReadBatch(bufs, sizes, from)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch round trip, want 0", allocs)
	}
}

func BenchmarkWriteReadBatch(b *testing.B) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	x, _ := Listen(ListenOptions{Addr: lo})
	y, _ := Listen(ListenOptions{Addr: lo})
	defer x.Close()
	defer y.Close()
	out := make([][]byte, 32)
	for i := range out {
		out[i] = make([]byte, 1400)
	}
	bufs := make([][]byte, 32)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, 32)
	from := make([]netip.AddrPort, 32)
	b.ReportAllocs()
	b.SetBytes(int64(32 * 1400))
	for b.Loop() {
		x.WriteBatch(out, y.LocalAddr())
		for got := 0; got < len(out); {
			n, err := y.ReadBatch(bufs, sizes, from)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}
