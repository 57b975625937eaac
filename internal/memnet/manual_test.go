package memnet

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bondtun/bondtun/path"
)

// TestManualSettle: on a manual network a datagram arrives only once the clock passed its
// link's delay and Settle ran, and Settle returns only when the reader dealt with it (here,
// echoed it back, which is then on the return link).
func TestManualSettle(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	n := NewManual(1, clock)
	defer n.Close()
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	n.SetLink(a, b, LinkConfig{Delay: 10 * time.Millisecond})
	n.SetLink(b, a, LinkConfig{Delay: 10 * time.Millisecond})
	ta, err := n.ListenPacket(path.ListenOptions{Addr: netip.AddrPortFrom(a, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := n.ListenPacket(path.ListenOptions{Addr: netip.AddrPortFrom(b, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var echoed, got []time.Time // when b echoed, when a got the echo (the clock's time)
	var wg sync.WaitGroup
	reader := func(tr path.Transport, echo bool) {
		defer wg.Done()
		bufs, sizes, from := [][]byte{make([]byte, 64)}, []int{0}, []netip.AddrPort{{}}
		for {
			if _, err := tr.ReadBatch(bufs, sizes, from); err != nil {
				return
			}
			if echo {
				echoed = append(echoed, clock())
				tr.WriteBatch(bufs[:1], from[0])
			} else {
				got = append(got, clock())
			}
		}
	}
	wg.Add(2)
	go reader(ta, false)
	go reader(tb, true)
	ta.WriteBatch([][]byte{[]byte("ping")}, tb.LocalAddr())
	for range 25 {
		if err := n.Settle(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		advance(time.Millisecond)
	}
	n.Close()
	wg.Wait()
	start := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	if len(echoed) != 1 || echoed[0].Sub(start) != 10*time.Millisecond {
		t.Errorf("b got the datagram at %v, want once at +10ms", echoed)
	}
	if len(got) != 1 || got[0].Sub(start) != 20*time.Millisecond {
		t.Errorf("a got the echo at %v, want once at +20ms", got)
	}
}
