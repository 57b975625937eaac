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
	cfg.globalRate = 0 // a thousand sources in one instant: TestAdmitGlobalCap's business
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

// TestAdmitGlobalCap: strangers start at most globalBurst handshakes at once and
// globalRate per second after that, however many addresses they have, in two buckets:
// sources seen before and first contacts. A flood from seen sources leaves a first
// contact (a peer at a new address) its bucket, and a good source passes both.
func TestAdmitGlobalCap(t *testing.T) {
	cfg := defaultAdmit
	ad := newAdmission(cfg, &NodeCounters{})
	burst, rate := int(cfg.globalBurst), cfg.globalRate
	// First contacts: the burst, then nothing in the same instant.
	for i := range burst {
		tk := ad.admit(admitT0, addrN(i), func() {})
		if tk == nil {
			t.Fatalf("first contact %d of the burst %d refused", i, burst)
		}
		ad.done(admitT0, tk, false)
	}
	if ad.admit(admitT0, addrN(burst), func() {}) != nil {
		t.Fatalf("a first contact past the burst of %d was admitted", burst)
	}
	if _, ok := ad.sources[sourceKey(addrN(burst))]; ok {
		t.Fatal("a refused first contact left an entry: it would count as seen next time")
	}
	// 512 sources, each admitted once (100 a second, under the cap), are then seen. They
	// flood for 10 s at 2 per second each (their own limit): 1024 a second offered, at
	// most burst + rate × 10 s admitted.
	const sources = 512
	start := admitT0.Add(time.Second)
	for i := range sources {
		now := start.Add(time.Duration(i) * 10 * time.Millisecond)
		tk := ad.admit(now, addrN(1000+i), func() {})
		if tk == nil {
			t.Fatalf("source %d refused at 100 first contacts a second", i)
		}
		ad.done(now, tk, false)
	}
	start = start.Add(10 * time.Second)
	admitted := 0
	var now time.Time
	for ms := 0; ms < 10_000; ms += 10 {
		now = start.Add(time.Duration(ms) * time.Millisecond)
		for j := range 10 { // 10 attempts each 10 ms, round robin over the sources
			a := addrN(1000 + (ms/10*10+j)%sources)
			if tk := ad.admit(now, a, func() {}); tk != nil {
				admitted++
				ad.done(now, tk, false)
			}
		}
	}
	if bound := burst + int(rate*10) + 1; admitted > bound {
		t.Fatalf("%d strangers' handshakes admitted in 10 s, bound %d (burst %d + %v/s)", admitted, bound, burst, rate)
	}
	if admitted < int(rate*10)/2 {
		t.Fatalf("only %d admitted in 10 s with %v/s allowed: the cap is far below its figure", admitted, rate)
	}
	// During that flood a peer at an address never seen gets the first contacts' bucket.
	peer := netip.MustParseAddr("203.0.113.7")
	if ad.admit(now, peer, func() {}) == nil {
		t.Fatal("a first contact was refused while only seen sources flooded")
	}
	// And a good source needs no token at all: drain both buckets, then connect.
	good := netip.MustParseAddr("203.0.113.8")
	tk := ad.admit(now, good, func() {})
	if tk == nil {
		t.Fatal("first contact refused")
	}
	ad.done(now, tk, true)
	for i := range 2 * burst {
		if tk := ad.admit(now, netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), func() {}); tk != nil {
			ad.done(now, tk, false)
		}
	}
	if ad.admit(now, netip.MustParseAddr("198.18.0.1"), func() {}) != nil {
		t.Fatal("the first contacts' bucket was not drained")
	}
	if tk := ad.admit(now, good, func() {}); tk == nil || !tk.good {
		t.Fatal("a good source was refused with the strangers' buckets empty")
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

// TestAdmitRefusedFirstContactEvictsNothing: with the per-source table full and the
// first-contact bucket drained, first contacts from ever new addresses are refused without
// touching the table: none of its entries is evicted (each eviction makes that address a
// first contact again, which an attacker with more addresses than the table holds can use
// to keep draining the first-contact bucket).
func TestAdmitRefusedFirstContactEvictsNothing(t *testing.T) {
	cfg := defaultAdmit
	cfg.maxSources, cfg.globalBurst, cfg.globalRate = 4, 4, 1
	ad := newAdmission(cfg, &NodeCounters{})
	for i := range cfg.maxSources { // the table full, the bucket drained
		tk := ad.admit(admitT0, addrN(i), func() {})
		if tk == nil {
			t.Fatalf("first contact %d refused", i)
		}
		ad.done(admitT0, tk, false)
	}
	for i := range 100 {
		if ad.admit(admitT0, addrN(1000+i), func() {}) != nil {
			t.Fatalf("first contact %d admitted with the bucket drained", i)
		}
	}
	for i := range cfg.maxSources {
		if _, ok := ad.sources[sourceKey(addrN(i))]; !ok {
			t.Errorf("source %d evicted by refused first contacts", i)
		}
	}
	if len(ad.sources) != cfg.maxSources {
		t.Errorf("table holds %d entries, want %d", len(ad.sources), cfg.maxSources)
	}
}
