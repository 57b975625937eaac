package path

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// datagrams returns len(sizes) datagrams; each starts with its index (2 bytes, when there is
// room) and is filled with a byte derived from it, so order and content can be checked.
func datagrams(sizes ...int) [][]byte {
	out := make([][]byte, len(sizes))
	for i, n := range sizes {
		b := bytes.Repeat([]byte{byte(i*7 + 1)}, n)
		if n >= 2 {
			binary.BigEndian.PutUint16(b, uint16(i))
		}
		out[i] = b
	}
	return out
}

func repeatSize(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

// receiveAll reads len(want) datagrams from c, with ReadBatchGRO if gro, else ReadBatch, and
// checks contents, order and source. It returns how many messages were coalesced (SegSize > 0).
func receiveAll(t *testing.T, c *Conn, gro bool, want [][]byte, from netip.AddrPort) int {
	t.Helper()
	if err := c.uc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	coalesced := 0
	if gro {
		bufs := make([][]byte, 8)
		for i := range bufs {
			bufs[i] = make([]byte, GROBufferSize)
		}
		msgs := make([]Msg, len(bufs))
		for len(got) < len(want) {
			n, err := c.ReadBatchGRO(bufs, msgs)
			if err != nil {
				t.Fatalf("after %d of %d datagrams: %v", len(got), len(want), err)
			}
			for i, m := range msgs[:n] {
				if m.Truncated {
					t.Fatalf("message %d truncated", i)
				}
				if m.From != from {
					t.Fatalf("message from %v, want %v", m.From, from)
				}
				if m.SegSize > 0 {
					coalesced++
				}
				if m.N == 0 {
					got = append(got, []byte{})
				}
				for rest := bufs[i][:m.N]; len(rest) > 0; {
					var seg []byte
					seg, rest = NextSegment(rest, m.SegSize)
					got = append(got, bytes.Clone(seg))
				}
			}
		}
	} else {
		bufs := make([][]byte, 8)
		for i := range bufs {
			bufs[i] = make([]byte, 2048)
		}
		sizes := make([]int, len(bufs))
		froms := make([]netip.AddrPort, len(bufs))
		for len(got) < len(want) {
			n, err := c.ReadBatch(bufs, sizes, froms)
			if err != nil {
				t.Fatalf("after %d of %d datagrams: %v", len(got), len(want), err)
			}
			for i := 0; i < n; i++ {
				if sizes[i] < 0 {
					t.Fatalf("datagram %d truncated", len(got))
				}
				if froms[i] != from {
					t.Fatalf("datagram from %v, want %v", froms[i], from)
				}
				got = append(got, bytes.Clone(bufs[i][:sizes[i]]))
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d datagrams, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("datagram %d: got %d bytes %x…, want %d bytes %x…", i, len(got[i]), head(got[i]), len(want[i]), head(want[i]))
		}
	}
	return coalesced
}

func head(b []byte) []byte { return b[:min(len(b), 4)] }

func gsoPair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	a, b := loopbackPair(t)
	if !a.GSO() {
		t.Skip("kernel refuses UDP_SEGMENT")
	}
	return a, b
}

// roundTrip sends want from a to b in one WriteBatch and checks that b gets exactly want, with
// GRO on the receiver and without. It returns the coalesced count of the GRO run.
func roundTrip(t *testing.T, want [][]byte) int {
	coalesced := 0
	for _, gro := range []bool{false, true} {
		t.Run(fmt.Sprintf("gro=%v", gro), func(t *testing.T) {
			a, b := gsoPair(t)
			if gro && !b.EnableGRO() {
				t.Skip("kernel refuses UDP_GRO")
			}
			sent, err := a.WriteBatch(want, b.LocalAddr())
			if err != nil || sent != len(want) {
				t.Fatalf("WriteBatch = %d, %v; want %d", sent, err, len(want))
			}
			if !a.GSO() {
				t.Fatal("GSO turned off by a send error on loopback")
			}
			c := receiveAll(t, b, gro, want, a.LocalAddr())
			if gro {
				coalesced = c
			}
		})
	}
	return coalesced
}

func TestGSOTrainRoundTrip(t *testing.T) {
	roundTrip(t, datagrams(append(repeatSize(40, 1200), 500)...))
}

func TestGSOMixedSizesRoundTrip(t *testing.T) {
	sizes := []int{100, 100, 100, 50, 100, 100, 200, 200, 0, 300, 300, 300, 300, 10, 1, 1, 1400, 1400, 1399, 1400}
	roundTrip(t, datagrams(sizes...))
}

func TestGSOTrainBoundaryRoundTrip(t *testing.T) {
	// 65 equal datagrams: one train of 64, then one alone.
	roundTrip(t, datagrams(repeatSize(65, 1000)...))
}

func TestGROCoalescesGSOTrains(t *testing.T) {
	if c := roundTrip(t, datagrams(repeatSize(40, 1200)...)); c == 0 {
		t.Fatal("no coalesced message (SegSize > 0) received from a GSO train")
	}
}

func TestTrainLen(t *testing.T) {
	cases := []struct {
		name  string
		sizes []int
		want  int
	}{
		{"empty", nil, 0},
		{"one", []int{100}, 1},
		{"equal", []int{100, 100, 100}, 3},
		{"short tail ends", []int{100, 100, 50, 50}, 3},
		{"longer breaks", []int{100, 100, 200}, 2},
		{"shorter first", []int{50, 100}, 1},
		{"zero first", []int{0, 0, 0}, 1},
		{"zero breaks", []int{100, 0, 100}, 1},
		{"segments cap", repeatSize(70, 100), MaxGSOSegments},
		{"bytes cap", repeatSize(50, 1400), MaxGSOBytes / 1400},
		{"bytes cap with tail", append(repeatSize(46, 1400), 1200), 46},
		{"bytes cap with fitting tail", append(repeatSize(46, 1400), 1100), 47},
		{"max datagram alone", []int{MaxGSOBytes, MaxGSOBytes}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := trainLen(datagrams(c.sizes...)); got != c.want {
				t.Fatalf("trainLen(%v) = %d, want %d", c.sizes, got, c.want)
			}
		})
	}
}

// TestFillTrains checks the messages built for a batch: train lengths, iovecs and the
// UDP_SEGMENT control message.
func TestFillTrains(t *testing.T) {
	st := new(batchState)
	bufs := datagrams(append(append(repeatSize(130, 1000), 1000, 700), 50)...)
	st.fillTrains(bufs, unix.SizeofSockaddrInet4)
	// MaxBatch = 128 datagrams per call: 64 + 64.
	checkTrains(t, st, bufs, []int{64, 64})
	st.fillTrains(bufs[128:], unix.SizeofSockaddrInet4)
	// 2 + 1 of 1000, then 700 ends the train; 50 goes alone.
	checkTrains(t, st, bufs[128:], []int{4, 1})
}

func checkTrains(t *testing.T, st *batchState, bufs [][]byte, want []int) {
	t.Helper()
	if st.n != len(want) {
		t.Fatalf("%d messages, want %d", st.n, len(want))
	}
	first := 0
	for j, w := range want {
		h := &st.msgs[j].Hdr
		if int(h.Iovlen) != w {
			t.Fatalf("message %d has %d iovecs, want %d", j, h.Iovlen, w)
		}
		if h.Iov != &st.iovs[first] || st.iovs[first].Base != &bufs[first][0] {
			t.Fatalf("message %d does not point at datagram %d", j, first)
		}
		if w == 1 {
			if h.Controllen != 0 {
				t.Fatalf("message %d: a single datagram carries a control message", j)
			}
		} else {
			ctrl := st.ctrl[j].bytes()[:h.Controllen]
			hdr, data, _, err := unix.ParseOneSocketControlMessage(ctrl)
			if err != nil || hdr.Level != unix.SOL_UDP || hdr.Type != unix.UDP_SEGMENT || len(data) != 2 {
				t.Fatalf("message %d: bad control message %+v %x %v", j, hdr, data, err)
			}
			if seg := binary.NativeEndian.Uint16(data); int(seg) != len(bufs[first]) {
				t.Fatalf("message %d: segment size %d, want %d", j, seg, len(bufs[first]))
			}
		}
		first += w
	}
	st.done = st.n
	if got := st.sentDatagrams(); got != first {
		t.Fatalf("sentDatagrams = %d, want %d", got, first)
	}
}

func TestRetryWithoutGSO(t *testing.T) {
	a, _ := gsoPair(t)
	st := &a.tx
	st.fillTrains(datagrams(100, 100), unix.SizeofSockaddrInet4)
	if !a.retryWithoutGSO(st, unix.EINVAL) || !a.GSO() {
		t.Fatal("EINVAL on a train: want a retry, GSO kept for later calls")
	}
	if a.retryWithoutGSO(st, unix.ECONNREFUSED) {
		t.Fatal("ECONNREFUSED: want no retry")
	}
	if !a.retryWithoutGSO(st, unix.EIO) || a.GSO() {
		t.Fatal("EIO on a train: want a retry and GSO off")
	}
	st.fillTrains(datagrams(100, 50, 100), unix.SizeofSockaddrInet4)
	st.fillPlain(datagrams(100, 100), unix.SizeofSockaddrInet4)
	if a.retryWithoutGSO(st, unix.EIO) {
		t.Fatal("EIO on a plain datagram: want no retry")
	}
}

func TestDisableGSOSendsPlain(t *testing.T) {
	a, b := gsoPair(t)
	a.DisableGSO()
	if a.GSO() {
		t.Fatal("GSO() after DisableGSO")
	}
	if !b.EnableGRO() {
		t.Skip("kernel refuses UDP_GRO")
	}
	want := datagrams(repeatSize(20, 1200)...)
	if n, err := a.WriteBatch(want, b.LocalAddr()); err != nil || n != len(want) {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	if c := receiveAll(t, b, true, want, a.LocalAddr()); c != 0 {
		t.Fatalf("%d coalesced messages without GSO on loopback, want 0", c)
	}
}

func TestGSORoundTripIPv6(t *testing.T) {
	lo := netip.MustParseAddrPort("[::1]:0")
	a, err := Listen(ListenOptions{Addr: lo})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer a.Close()
	b, err := Listen(ListenOptions{Addr: lo})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !a.GSO() {
		t.Skip("kernel refuses UDP_SEGMENT")
	}
	gro := b.EnableGRO()
	want := datagrams(append(repeatSize(30, 1300), 7)...)
	if n, err := a.WriteBatch(want, b.LocalAddr()); err != nil || n != len(want) {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	if c := receiveAll(t, b, gro, want, a.LocalAddr()); gro && c == 0 {
		t.Fatal("no coalesced message over IPv6 loopback")
	}
}
