package session

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

var admitT0 = time.Unix(1_000_000, 0)

func addrN(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
}

func TestAdmitPerSourceRateAndConcurrency(t *testing.T) {
	ad := newAdmission(defaultAdmit, &NodeCounters{})
	a := addrN(1)
	now := admitT0
	// Two at once, no more, however many tokens are left.
	t1, t2 := ad.admit(now, a, func() {}), ad.admit(now, a, func() {})
	if t1 == nil || t2 == nil {
		t.Fatal("the first two handshakes of a source were refused")
	}
	if ad.admit(now, a, func() {}) != nil {
		t.Fatalf("a third concurrent handshake from one source was admitted (cap %d)", defaultAdmit.unknownPerSource)
	}
	ad.done(now, t1, false)
	ad.done(now, t2, false)
	// The burst of 4 is used up after two more; the bucket then refills at 2 per second.
	for i := range 2 {
		tk := ad.admit(now, a, func() {})
		if tk == nil {
			t.Fatalf("handshake %d of the burst refused", 3+i)
		}
		ad.done(now, tk, false)
	}
	if ad.admit(now, a, func() {}) != nil {
		t.Fatal("a fifth handshake in the same instant was admitted (burst 4)")
	}
	if ad.admit(now.Add(250*time.Millisecond), a, func() {}) != nil {
		t.Fatal("admitted after 250 ms (half a token at 2/s)")
	}
	if ad.admit(now.Add(500*time.Millisecond), a, func() {}) == nil {
		t.Fatal("refused after 500 ms (one token at 2/s)")
	}
	if got := ad.counters.HandshakesRefused.Load(); got != 3 {
		t.Fatalf("refusals counted %d, want 3", got)
	}
}

// TestAdmitSharePreemptsOldest: unknown sources share slots−reserved handshakes; a
// newcomer preempts the oldest only once it has had preemptAge, and good sources get a
// slot even then.
func TestAdmitSharePreemptsOldest(t *testing.T) {
	ad := newAdmission(defaultAdmit, &NodeCounters{})
	share := defaultAdmit.slots - defaultAdmit.reserved
	aborted := map[int]bool{}
	for i := range share {
		if ad.admit(admitT0, addrN(i), func() { aborted[i] = true }) == nil {
			t.Fatalf("handshake %d of %d refused", i, share)
		}
	}
	young := admitT0.Add(defaultAdmit.preemptAge - time.Millisecond)
	if ad.admit(young, addrN(share), func() {}) != nil {
		t.Fatal("a newcomer preempted a handshake younger than preemptAge")
	}
	old := admitT0.Add(defaultAdmit.preemptAge)
	if ad.admit(old, addrN(share), func() {}) == nil {
		t.Fatal("a newcomer was refused although the oldest handshake had had preemptAge")
	}
	if !aborted[0] || len(aborted) != 1 {
		t.Fatalf("aborted %v, want the oldest (0) only", aborted)
	}
	if _, unknown := ad.inProgress(); unknown != share {
		t.Fatalf("%d unknown handshakes in progress, want %d", unknown, share)
	}

	// A source that completed a handshake gets a slot whatever strangers hold.
	good := netip.MustParseAddr("203.0.113.9")
	tk := ad.admit(old, good, func() {})
	if tk == nil || tk.good {
		t.Fatal("an unknown source's first handshake must go through the unknown share")
	}
	ad.done(old, tk, true)
	for i := range defaultAdmit.slots {
		if ad.admit(old, good, func() {}) == nil {
			t.Fatalf("good source's handshake %d refused; slots %d", i, defaultAdmit.slots)
		}
	}
	if g, u := ad.inProgress(); g+u != defaultAdmit.slots || g != defaultAdmit.slots {
		t.Fatalf("in progress: %d good, %d unknown; want all %d slots good", g, u, defaultAdmit.slots)
	}
	if ad.admit(old, good, func() {}) != nil {
		t.Fatal("admitted past every slot")
	}
}

// TestAdmitTableBounded: the per-source table never grows past maxSources, a full table
// still admits new sources by forgetting idle ones, and refuses only when every entry has
// a handshake in progress.
func TestAdmitTableBounded(t *testing.T) {
	cfg := defaultAdmit
	cfg.maxSources = 32
	ad := newAdmission(cfg, &NodeCounters{})
	for i := range 1000 {
		tk := ad.admit(admitT0, addrN(i), func() {})
		if tk == nil {
			t.Fatalf("source %d refused with a table of idle entries", i)
		}
		ad.done(admitT0, tk, false)
		if len(ad.sources) > cfg.maxSources {
			t.Fatalf("table has %d entries, bound %d", len(ad.sources), cfg.maxSources)
		}
	}
	cfg.maxSources = 4
	ad = newAdmission(cfg, &NodeCounters{})
	for i := range 4 {
		if ad.admit(admitT0, addrN(i), func() {}) == nil {
			t.Fatalf("source %d refused", i)
		}
	}
	if ad.admit(admitT0, addrN(4), func() {}) != nil {
		t.Fatal("admitted with every table entry busy")
	}
}

func TestAdmitGoodSetBounded(t *testing.T) {
	cfg := defaultAdmit
	cfg.maxGood = 8
	ad := newAdmission(cfg, &NodeCounters{})
	for i := range 20 {
		now := admitT0.Add(time.Duration(i) * time.Second)
		tk := ad.admit(now, addrN(i), func() {})
		if tk == nil {
			t.Fatalf("source %d refused", i)
		}
		ad.done(now, tk, true)
	}
	if len(ad.good) != cfg.maxGood {
		t.Fatalf("%d good sources remembered, want the bound %d", len(ad.good), cfg.maxGood)
	}
	for i := 12; i < 20; i++ {
		if _, ok := ad.good[sourceKey(addrN(i))]; !ok {
			t.Fatalf("recent good source %d forgotten; the oldest must go first", i)
		}
	}
	// And goodness expires.
	late := admitT0.Add(cfg.goodTTL + time.Hour)
	if tk := ad.admit(late, addrN(19), func() {}); tk == nil || tk.good {
		t.Fatalf("ticket %+v: a source good a day ago must count as unknown", tk)
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":               "192.0.2.7/32",
		"::ffff:192.0.2.7":        "192.0.2.7/32",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9999": "2001:db8:1:2::/64",
	} {
		if got := sourceKey(netip.MustParseAddr(in)); fmt.Sprint(got) != want {
			t.Errorf("sourceKey(%s) = %s, want %s", in, got, want)
		}
	}
}
