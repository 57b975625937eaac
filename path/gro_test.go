package path

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestNextSegment(t *testing.T) {
	b := make([]byte, 10)
	for i := range b {
		b[i] = byte(i)
	}
	cases := []struct {
		seg  int
		want []int // segment lengths
	}{
		{0, []int{10}},
		{-1, []int{10}},
		{3, []int{3, 3, 3, 1}},
		{5, []int{5, 5}},
		{10, []int{10}},
		{64, []int{10}},
	}
	for _, c := range cases {
		var got []int
		off := 0
		for rest := b; len(rest) > 0; {
			var seg []byte
			seg, rest = NextSegment(rest, c.seg)
			if len(seg) == 0 || seg[0] != byte(off) {
				t.Fatalf("segSize %d: segment at %d starts with %v", c.seg, off, seg)
			}
			if cap(seg) != len(seg) && len(rest) > 0 {
				t.Fatalf("segSize %d: segment capacity %d reaches into the next one", c.seg, cap(seg))
			}
			off += len(seg)
			got = append(got, len(seg))
		}
		if len(got) != len(c.want) {
			t.Fatalf("segSize %d: segments %v, want %v", c.seg, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("segSize %d: segments %v, want %v", c.seg, got, c.want)
			}
		}
	}
}

// cmsg builds one control message as the kernel lays it out, padded to the next one.
func cmsg(level, typ int32, data []byte) []byte {
	b := alignedBytes(unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = level
	h.Type = typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// alignedBytes returns n zero bytes on an 8-byte boundary, as a cmsghdr needs.
func alignedBytes(n int) []byte {
	words := make([]uint64, (n+7)/8+1)
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)[:n]
}

func le32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func le16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }

func groSeeds() [][]byte {
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	return [][]byte{
		nil,
		cmsg(unix.SOL_UDP, unix.UDP_GRO, le32(1400)),
		cmsg(unix.SOL_UDP, unix.UDP_GRO, le16(1200)),
		cat(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16)), cmsg(unix.SOL_UDP, unix.UDP_GRO, le32(1000))),
		cat(cmsg(unix.SOL_IP, unix.IP_TOS, []byte{1}), cmsg(unix.SOL_UDP, unix.UDP_GRO, le32(9))),
		cmsg(unix.SOL_UDP, unix.UDP_SEGMENT, le16(1400)),
		cmsg(unix.SOL_UDP, unix.UDP_GRO, le32(0xffffffff)),
		cmsg(unix.SOL_UDP, unix.UDP_GRO, nil),
		cmsg(unix.SOL_UDP, unix.UDP_GRO, le32(1400))[:10],
		make([]byte, 40),
	}
}

func TestParseGROCmsg(t *testing.T) {
	want := []int{0, 1400, 1200, 1000, 9, 0, 0, 0, 0, 0}
	for i, b := range groSeeds() {
		if got := parseGROCmsg(b); got != want[i] {
			t.Errorf("seed %d (%x): got %d, want %d", i, b, got, want[i])
		}
		if got := referenceGROCmsg(b); got != want[i] {
			t.Errorf("seed %d (%x): reference got %d, want %d", i, b, got, want[i])
		}
	}
	// A length field that runs past the buffer.
	b := cmsg(unix.SOL_UDP, unix.UDP_GRO, le32(1400))
	(*unix.Cmsghdr)(unsafe.Pointer(&b[0])).SetLen(len(b) + 1)
	if got := parseGROCmsg(b); got != 0 {
		t.Fatalf("overlong cmsg: got %d, want 0", got)
	}
}

// referenceGROCmsg parses b with x/sys/unix, for comparison with the hand-written parser.
func referenceGROCmsg(in []byte) int {
	// ParseOneSocketControlMessage casts b to a *Cmsghdr: give it an aligned copy.
	b := alignedBytes(len(in))
	copy(b, in)
	for len(b) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(b)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO {
			var v int64
			switch {
			case len(data) >= 4:
				v = int64(int32(binary.NativeEndian.Uint32(data)))
			case len(data) >= 2:
				v = int64(binary.NativeEndian.Uint16(data))
			}
			if v < 0 || v > 0xffff {
				return 0
			}
			return int(v)
		}
		b = rest
	}
	return 0
}

func FuzzParseGROCmsg(f *testing.F) {
	for _, s := range groSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := parseGROCmsg(b)
		if got < 0 || got > 0xffff {
			t.Fatalf("segment size %d out of range", got)
		}
		if want := referenceGROCmsg(b); got != want {
			t.Fatalf("parseGROCmsg(%x) = %d, x/sys/unix says %d", b, got, want)
		}
	})
}

func TestReadBatchGROTruncated(t *testing.T) {
	a, b := gsoPair(t)
	if !b.EnableGRO() {
		t.Skip("kernel refuses UDP_GRO")
	}
	want := datagrams(repeatSize(10, 1000)...)
	if _, err := a.WriteBatch(want, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := b.uc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{make([]byte, 2500)}
	msgs := make([]Msg, 1)
	n, err := b.ReadBatchGRO(bufs, msgs)
	if err != nil || n != 1 {
		t.Fatalf("ReadBatchGRO = %d, %v", n, err)
	}
	m := msgs[0]
	if !m.Truncated || m.N != 2500 || m.SegSize != 1000 {
		t.Fatalf("got %+v, want a truncated message of 2500 bytes with segment size 1000", m)
	}
}

func TestGSOGROAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	a, b := gsoPair(t)
	if !b.EnableGRO() {
		t.Skip("kernel refuses UDP_GRO")
	}
	out := make([][]byte, 32)
	for i := range out {
		out[i] = make([]byte, 1400)
	}
	out[31] = out[31][:700]
	bufs := [][]byte{make([]byte, GROBufferSize), make([]byte, GROBufferSize)}
	msgs := make([]Msg, len(bufs))
	dst := b.LocalAddr()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := a.WriteBatch(out, dst); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(out); {
			n, err := b.ReadBatchGRO(bufs, msgs)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range msgs[:n] {
				for rest := bufs[i][:m.N]; len(rest) > 0; got++ {
					_, rest = NextSegment(rest, m.SegSize)
				}
			}
		}
	})
	if !a.GSO() {
		t.Fatal("GSO turned off on loopback")
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per GSO/GRO round trip, want 0", allocs)
	}
}

// BenchmarkGSOGRO moves batches of 64 datagrams of 1400 bytes over loopback: sent with plain
// sendmmsg or as GSO trains, received with plain recvmmsg or with GRO. Both ends run in the
// benchmark's goroutine (loopback delivers during the send), so ns/op is the cost of both.
func BenchmarkGSOGRO(b *testing.B) {
	for _, bc := range []struct {
		name     string
		gso, gro bool
	}{
		{"send=plain/recv=plain", false, false},
		{"send=gso/recv=plain", true, false},
		{"send=plain/recv=gro", false, true},
		{"send=gso/recv=gro", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) { benchGSOGRO(b, bc.gso, bc.gro) })
	}
}

func benchGSOGRO(b *testing.B, gso, gro bool) {
	const batch, size = 64, 1400
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	x, err := Listen(ListenOptions{Addr: lo})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	y, err := Listen(ListenOptions{Addr: lo})
	if err != nil {
		b.Fatal(err)
	}
	defer y.Close()
	if gso && !x.GSO() {
		b.Skip("kernel refuses UDP_SEGMENT")
	}
	if !gso {
		x.DisableGSO()
	}
	if gro && !y.EnableGRO() {
		b.Skip("kernel refuses UDP_GRO")
	}
	// A lost datagram ends the benchmark with an error instead of a hang.
	if err := y.uc.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		b.Fatal(err)
	}
	out := make([][]byte, batch)
	for i := range out {
		out[i] = make([]byte, size)
	}
	// Plain receive: one 2 KiB buffer per datagram, the whole batch in one recvmmsg if it is
	// there. GRO: 8 buffers of 64 KiB, room for 8 trains.
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	if gro {
		bufs = bufs[:8]
		for i := range bufs {
			bufs[i] = make([]byte, GROBufferSize)
		}
	}
	sizes := make([]int, len(bufs))
	from := make([]netip.AddrPort, len(bufs))
	msgs := make([]Msg, len(bufs))
	dst := y.LocalAddr()
	b.ReportAllocs()
	b.SetBytes(batch * size)
	for b.Loop() {
		if _, err := x.WriteBatch(out, dst); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < batch; {
			if !gro {
				n, err := y.ReadBatch(bufs, sizes, from)
				if err != nil {
					b.Fatal(err)
				}
				got += n
				continue
			}
			n, err := y.ReadBatchGRO(bufs, msgs)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range msgs[:n] {
				got++
				if m.SegSize > 0 {
					got += (m.N - 1) / m.SegSize
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/datagram")
}
