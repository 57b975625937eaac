package netmon

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

// consumer applies events the way a user of Monitor would.
type consumer struct {
	up    map[string]bool
	addrs map[key]bool
}

func newConsumer() *consumer { return &consumer{up: map[string]bool{}, addrs: map[key]bool{}} }

// apply returns an error for an event that tells the consumer nothing new.
func (c *consumer) apply(ev Event) error {
	k := key{name: ev.Interface, addr: ev.Addr}
	switch ev.Kind {
	case LinkUp, LinkDown:
		up := ev.Kind == LinkUp
		if c.up[k.name] == up {
			return fmt.Errorf("redundant %v", ev)
		}
		c.up[k.name] = up
	case AddrAdded, AddrRemoved:
		has := ev.Kind == AddrAdded
		if c.addrs[k] == has {
			return fmt.Errorf("redundant %v", ev)
		}
		c.addrs[k] = has
	default:
		return fmt.Errorf("bad kind %v", ev)
	}
	return nil
}

// drainAll delivers every pending event to c.
func drainAll(t testing.TB, s *state, c *consumer) []Event {
	t.Helper()
	var evs []Event
	for {
		ev, ok := s.next()
		if !ok {
			return evs
		}
		s.commit(ev)
		if err := c.apply(ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
}

// checkAgrees fails unless c's picture equals s's view.
func checkAgrees(t testing.TB, s *state, c *consumer) {
	t.Helper()
	for name, up := range c.up {
		if up != s.isUp(name) {
			t.Fatalf("%s: consumer up=%v, view %v", name, up, s.isUp(name))
		}
	}
	for k, has := range c.addrs {
		if got := slices.Contains(s.appendAddrs(nil, k.name), k.addr); got != has {
			t.Fatalf("%s %v: consumer has=%v, view %v", k.name, k.addr, has, got)
		}
	}
	for name, i := range s.names {
		l := s.links[i]
		if l.up && !c.up[name] {
			t.Fatalf("%s up in view, not told", name)
		}
		for _, p := range l.addrs {
			if !c.addrs[key{name, p}] {
				t.Fatalf("%s %v in view, not told", name, p)
			}
		}
	}
}

func TestStateScenarios(t *testing.T) {
	p1 := netip.MustParsePrefix("10.0.0.2/24")
	p2 := netip.MustParsePrefix("10.0.0.3/24")
	tests := []struct {
		name string
		ops  func(s *state)
		want []Event
	}{
		{"link up and address", func(s *state) {
			s.setLink(2, "eth0", true)
			s.addAddr(2, p1)
		}, []Event{{LinkUp, "eth0", 2, netip.Prefix{}}, {AddrAdded, "eth0", 2, p1}}},
		{"appears down: nothing to tell", func(s *state) {
			s.setLink(2, "eth0", false)
		}, nil},
		{"address added and removed while the consumer was busy", func(s *state) {
			s.setLink(2, "eth0", true)
			s.addAddr(2, p1)
			s.delAddr(2, p1)
		}, []Event{{LinkUp, "eth0", 2, netip.Prefix{}}}},
		{"flap collapses", func(s *state) {
			s.setLink(2, "eth0", true)
			s.setLink(2, "eth0", false)
			s.setLink(2, "eth0", true)
			s.setLink(2, "eth0", false)
		}, nil},
		{"address before its link", func(s *state) {
			s.addAddr(3, p1)
			s.setLink(3, "wwan0", true)
		}, []Event{{LinkUp, "wwan0", 3, netip.Prefix{}}, {AddrAdded, "wwan0", 3, p1}}},
		{"renumbering", func(s *state) {
			s.setLink(2, "eth0", true)
			s.addAddr(2, p1)
			s.addAddr(2, p2)
			s.delAddr(2, p1)
		}, []Event{{LinkUp, "eth0", 2, netip.Prefix{}}, {AddrAdded, "eth0", 2, p2}}},
		{"delete unknown is ignored", func(s *state) {
			s.delAddr(9, p1)
			s.delLink(9)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newState()
			tt.ops(s)
			c := newConsumer()
			got := drainAll(t, s, c)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("events\n got %v\nwant %v", got, tt.want)
			}
			checkAgrees(t, s, c)
		})
	}
}

func TestStateRenameAndDelete(t *testing.T) {
	p1 := netip.MustParsePrefix("192.0.2.1/24")
	s := newState()
	s.setLink(4, "eth0", true)
	s.addAddr(4, p1)
	c := newConsumer()
	drainAll(t, s, c)

	s.setLink(4, "uplink0", true)
	got := drainAll(t, s, c)
	want := []Event{
		{LinkDown, "eth0", 0, netip.Prefix{}}, {AddrRemoved, "eth0", 0, p1},
		{LinkUp, "uplink0", 4, netip.Prefix{}}, {AddrAdded, "uplink0", 4, p1},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rename events\n got %v\nwant %v", got, want)
	}
	s.delLink(4)
	got = drainAll(t, s, c)
	want = []Event{{LinkDown, "uplink0", 0, netip.Prefix{}}, {AddrRemoved, "uplink0", 0, p1}}
	if !slices.Equal(got, want) {
		t.Fatalf("delete events\n got %v\nwant %v", got, want)
	}
	checkAgrees(t, s, c)
}

// TestStateQueueBounded: a stalled consumer and many short-lived addresses
// must not grow the queue without bound.
func TestStateQueueBounded(t *testing.T) {
	s := newState()
	s.setLink(2, "eth0", true)
	for i := range 100000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		s.addAddr(2, p)
		s.delAddr(2, p)
	}
	if len(s.queue)-s.head > 200 {
		t.Fatalf("queue holds %d keys", len(s.queue))
	}
	c := newConsumer()
	if got := drainAll(t, s, c); len(got) != 1 {
		t.Fatalf("events %v, want one LinkUp", got)
	}
}

// TestStateChurnAllocs: steady churn with a keeping-up consumer reuses the
// queue and maps.
func TestStateChurnAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := newState()
	s.setLink(2, "eth0", true)
	p := netip.MustParsePrefix("10.0.0.2/24")
	churn := func() {
		s.addAddr(2, p)
		if ev, ok := s.next(); ok {
			s.commit(ev)
		}
		s.delAddr(2, p)
		if ev, ok := s.next(); ok {
			s.commit(ev)
		}
	}
	churn()
	if n := testing.AllocsPerRun(100, churn); n != 0 {
		t.Fatalf("churn allocates %v times", n)
	}
}

func TestStateReplace(t *testing.T) {
	p1 := netip.MustParsePrefix("10.0.0.2/24")
	p2 := netip.MustParsePrefix("2001:db8::2/64")
	s := newState()
	s.setLink(2, "eth0", true)
	s.addAddr(2, p1)
	s.setLink(3, "eth1", true)
	c := newConsumer()
	drainAll(t, s, c)
	// Notifications were lost: eth1 vanished, eth0 lost p1 and got p2.
	s.replace([]linkInfo{{2, "eth0", true}}, []addrInfo{{2, p2}})
	drainAll(t, s, c)
	checkAgrees(t, s, c)
	if c.up["eth1"] || c.addrs[key{"eth0", p1}] || !c.addrs[key{"eth0", p2}] {
		t.Fatalf("consumer after replace: %+v", c)
	}
}

// FuzzState drives the state with an op-encoded byte string and a consumer
// that takes events at random moments. Invariants: no event is redundant, the
// queue stays bounded, and after the last delivery the consumer agrees with
// the view.
func FuzzState(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{0x08, 0x12, 0x04, 0x13, 0x05, 0x22, 0x01, 0x0c})
	f.Add([]byte{0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x0e, 0x1e})
	names := []string{"a", "b", "c"}
	prefixes := pfx("10.0.0.1/24", "10.0.0.2/24", "2001:db8::1/64", "fe80::1/64")
	f.Fuzz(func(t *testing.T, ops []byte) {
		s := newState()
		c := newConsumer()
		for i, op := range ops {
			arg := int(op >> 3)
			idx := arg%4 + 1
			switch op & 7 {
			case 0:
				s.setLink(idx, names[(arg/4)%3], arg&16 == 0)
			case 1:
				s.delLink(idx)
			case 2:
				s.addAddr(idx, prefixes[(arg/4)%4])
			case 3:
				s.delAddr(idx, prefixes[(arg/4)%4])
			case 4, 5:
				if ev, ok := s.next(); ok {
					s.commit(ev)
					if err := c.apply(ev); err != nil {
						t.Fatalf("op %d: %v", i, err)
					}
				}
			case 6:
				var li []linkInfo
				var ai []addrInfo
				for j := range 3 {
					if arg&(1<<j) != 0 {
						li = append(li, linkInfo{j + 1, names[(j+arg)%3], arg&8 != 0})
						ai = append(ai, addrInfo{j + 1, prefixes[(j+arg)%4]})
					}
				}
				s.replace(li, ai)
			case 7:
				drainAll(t, s, c)
			}
			if n := len(s.queue) - s.head; n > s.compactAt || len(s.queue) > 2*s.compactAt+66 {
				t.Fatalf("queue %d (of %d) over bound %d", n, len(s.queue), s.compactAt)
			}
		}
		drainAll(t, s, c)
		checkAgrees(t, s, c)
	})
}
