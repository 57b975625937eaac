package session

import (
	"net/netip"
	"sync"
	"time"
)

// admission decides which unauthenticated TCP connections to the control port get a TLS
// handshake, the one expensive thing the server does for a stranger (an X25519 exchange
// and an Ed25519 signature per ClientHello, and a slot held until the handshake ends).
// TCP's three-way handshake has already proved that the source address is reachable
// (with SYN cookies under a SYN flood), so limits per source cannot be dodged by spoofing;
// docs/SECURITY.md "Bounded work for the unauthenticated" gives the argument and the costs.
//
// The rules, in order:
//   - A source (an IPv4 address, or an IPv6 /64) that completed a handshake with a
//     configured key within goodTTL is good: it skips the per-source limits and may use
//     any slot; if none is free it preempts the oldest handshake of an unknown source.
//     Only authentication adds a good source, so a flood cannot fill that set.
//   - Any other source has a token bucket (unknownRate per second, unknownBurst) and may
//     hold at most unknownPerSource handshakes at once.
//   - Unknown sources together hold at most slots−reserved handshakes. When that share is
//     full, a newcomer preempts the oldest unknown handshake if that one has had at least
//     preemptAge, and is refused otherwise: every admitted handshake gets that long, and
//     the rate of handshakes for strangers is bounded by share/preemptAge.
//   - The per-source table holds at most maxSources entries; a full table drops an entry
//     with nothing in progress, so the table itself cannot be flooded.
//   - Process-wide, strangers start at most globalRate handshakes per second (bucket
//     globalBurst), whatever the number of their addresses, in two buckets: one for a
//     source with an entry in the table (seen before), one for a first contact. An
//     attacker whose sources the table knows drains only the seen bucket, so a peer from
//     an address never seen (first contact after a restart, a new uplink) does not
//     compete with it. To drain the first-contact bucket as well an attacker needs
//     addresses the table does not hold: more than maxSources of them, cycled (each
//     admitted first contact evicts an idle entry, so its address is a first contact
//     again later). A refused first contact makes no entry and evicts none.
//
// All times come from the caller (tests pass their own clock).
type admission struct {
	cfg admitConfig

	mu       sync.Mutex
	sources  map[netip.Prefix]*sourceState
	good     map[netip.Prefix]time.Time // source → last completed handshake
	unknown  []*ticket                  // unknown sources' handshakes in progress, oldest first
	nGood    int                        // good sources' handshakes in progress
	seen     bucket                     // strangers' new handshakes, sources in the table
	first    bucket                     // strangers' new handshakes, first contacts
	counters *NodeCounters
}

// bucket is a token bucket; rate 0 means no limit.
type bucket struct {
	tokens float64
	at     time.Time
}

// take takes a token at now if there is one.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if rate == 0 {
		return true
	}
	if b.at.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.at).Seconds(); d > 0 {
		b.tokens = min(burst, b.tokens+d*rate)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// available reports whether take would succeed at now, taking nothing.
func (b *bucket) available(now time.Time, rate, burst float64) bool {
	if rate == 0 || b.at.IsZero() {
		return true
	}
	return b.tokens+max(now.Sub(b.at).Seconds(), 0)*rate >= 1
}

type admitConfig struct {
	slots            int           // handshakes in progress at once, for everyone
	reserved         int           // of those, kept for good sources
	unknownPerSource int           // handshakes in progress per unknown source
	unknownRate      float64       // new handshakes per second per unknown source
	unknownBurst     float64       // bucket depth
	preemptAge       time.Duration // an unknown handshake younger than this is never preempted
	maxSources       int           // per-source table entries
	maxGood          int           // good sources remembered
	goodTTL          time.Duration // how long a completed handshake makes its source good
	globalRate       float64       // strangers' new handshakes per second, per bucket (seen, first); 0: none
	globalBurst      float64       // depth of each of the two buckets
}

// defaultAdmit is the server's policy (docs/DECISIONS.md "Security" gives the reasons).
var defaultAdmit = admitConfig{
	slots:            64,
	reserved:         16,
	unknownPerSource: 2,
	unknownRate:      2,
	unknownBurst:     4,
	preemptAge:       250 * time.Millisecond,
	maxSources:       4096,
	maxGood:          1024,
	goodTTL:          24 * time.Hour,
	globalRate:       128,
	globalBurst:      64,
}

type sourceState struct {
	tokens float64
	at     time.Time // of the last refill
	active int       // handshakes in progress
}

// ticket is one admitted handshake. Its owner calls done when the handshake ends, and
// abort closes the connection if a newcomer preempts it.
type ticket struct {
	src       netip.Prefix
	good      bool
	start     time.Time
	abort     func()
	finished  bool
	preempted bool
}

func newAdmission(cfg admitConfig, nc *NodeCounters) *admission {
	return &admission{cfg: cfg, sources: map[netip.Prefix]*sourceState{}, good: map[netip.Prefix]time.Time{}, counters: nc}
}

// sourceKey is the unit the limits count by: one IPv4 address, or one IPv6 /64 (the
// least a site or a mobile subscriber is given, RFC 6177).
func sourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// admit decides about a connection from addr at now. abort must close the connection; it
// is called (with the admission's lock held, so it must not block) if the handshake is
// preempted. It returns nil when the connection is refused.
func (ad *admission) admit(now time.Time, addr netip.Addr, abort func()) *ticket {
	key := sourceKey(addr)
	ad.mu.Lock()
	defer ad.mu.Unlock()
	if at, ok := ad.good[key]; ok && now.Sub(at) < ad.cfg.goodTTL {
		if ad.nGood+len(ad.unknown) >= ad.cfg.slots {
			if len(ad.unknown) == 0 {
				ad.counters.HandshakesRefused.Add(1)
				return nil
			}
			ad.preemptOldestLocked()
		}
		ad.nGood++
		return &ticket{src: key, good: true, start: now, abort: abort}
	}
	_, seen := ad.sources[key]
	if !seen && (ad.fullLocked(now) == fullRefuse || !ad.first.available(now, ad.cfg.globalRate, ad.cfg.globalBurst)) {
		// A first contact that would be refused makes no entry, so it evicts none: an
		// attacker cycling through more addresses than the table holds would otherwise
		// turn every refused attempt into an eviction, and keep its own addresses first
		// contacts.
		ad.counters.HandshakesRefused.Add(1)
		return nil
	}
	st := ad.sourceLocked(now, key)
	if st == nil {
		ad.counters.HandshakesRefused.Add(1)
		return nil // the table is full of sources with handshakes in progress
	}
	st.tokens = min(ad.cfg.unknownBurst, st.tokens+now.Sub(st.at).Seconds()*ad.cfg.unknownRate)
	st.at = now
	// A refused first contact leaves no entry: the source is still a first contact when
	// it tries again, and only admitted handshakes make a source seen.
	refuse := func() *ticket {
		if !seen {
			delete(ad.sources, key)
		}
		ad.counters.HandshakesRefused.Add(1)
		return nil
	}
	if st.tokens < 1 || st.active >= ad.cfg.unknownPerSource {
		return refuse()
	}
	full := ad.fullLocked(now)
	if full == fullRefuse {
		return refuse()
	}
	if !ad.globalLocked(now, seen) {
		return refuse()
	}
	if full == fullPreempt {
		ad.preemptOldestLocked()
	}
	st.tokens--
	st.active++
	t := &ticket{src: key, start: now, abort: abort}
	ad.unknown = append(ad.unknown, t)
	return t
}

// What a stranger's new handshake finds when the unknown sources' share of the slots is
// full: nothing (room), a handshake old enough to preempt, or none (refused).
const (
	fullRoom = iota
	fullPreempt
	fullRefuse
)

// fullLocked says whether a stranger's new handshake at now finds room, must preempt the
// oldest unknown handshake, or is refused. ad.mu must be held.
func (ad *admission) fullLocked(now time.Time) int {
	if len(ad.unknown) < ad.cfg.slots-ad.cfg.reserved && ad.nGood+len(ad.unknown) < ad.cfg.slots {
		return fullRoom
	}
	if len(ad.unknown) == 0 || now.Sub(ad.unknown[0].start) < ad.cfg.preemptAge {
		return fullRefuse
	}
	return fullPreempt
}

// globalLocked takes a token of the process-wide bucket for a stranger's new handshake
// (seen: its source had an entry in the table). ad.mu must be held.
func (ad *admission) globalLocked(now time.Time, seen bool) bool {
	b := &ad.first
	if seen {
		b = &ad.seen
	}
	return b.take(now, ad.cfg.globalRate, ad.cfg.globalBurst)
}

// preemptOldestLocked ends the oldest unknown handshake. ad.mu must be held.
func (ad *admission) preemptOldestLocked() {
	t := ad.unknown[0]
	t.preempted = true
	ad.counters.HandshakesPreempted.Add(1)
	ad.finishLocked(t)
	t.abort()
}

// sourceLocked returns key's entry, making one (and room for it) if needed; nil when
// every entry has a handshake in progress. ad.mu must be held.
func (ad *admission) sourceLocked(now time.Time, key netip.Prefix) *sourceState {
	if st, ok := ad.sources[key]; ok {
		return st
	}
	if len(ad.sources) >= ad.cfg.maxSources {
		// Drop an entry with nothing in progress, preferring one whose bucket has refilled
		// (forgetting it changes nothing). Map iteration starts at a random entry; at most
		// slots entries are busy, so a short look finds an idle one.
		var victim netip.Prefix
		found := false
		looked := 0
		for k, st := range ad.sources {
			if st.active == 0 {
				victim, found = k, true
				if st.tokens+now.Sub(st.at).Seconds()*ad.cfg.unknownRate >= ad.cfg.unknownBurst {
					break
				}
			}
			if looked++; looked >= 2*ad.cfg.slots+8 && found {
				break
			}
		}
		if !found {
			return nil
		}
		delete(ad.sources, victim)
	}
	st := &sourceState{tokens: ad.cfg.unknownBurst, at: now}
	ad.sources[key] = st
	return st
}

// done ends t's handshake; authenticated says whether it proved a configured key, which
// makes its source good. It may be called after a preemption (it then does nothing but
// the bookkeeping of authenticated).
func (ad *admission) done(now time.Time, t *ticket, authenticated bool) {
	ad.mu.Lock()
	defer ad.mu.Unlock()
	ad.finishLocked(t)
	if !authenticated {
		return
	}
	if _, ok := ad.good[t.src]; !ok && len(ad.good) >= ad.cfg.maxGood {
		var oldest netip.Prefix
		var at time.Time
		for k, v := range ad.good {
			if at.IsZero() || v.Before(at) {
				oldest, at = k, v
			}
		}
		delete(ad.good, oldest)
	}
	ad.good[t.src] = now
}

// finishLocked releases t's slot once. ad.mu must be held.
func (ad *admission) finishLocked(t *ticket) {
	if t.finished {
		return
	}
	t.finished = true
	if t.good {
		ad.nGood--
		return
	}
	if i := indexOf(ad.unknown, t); i >= 0 {
		ad.unknown = append(ad.unknown[:i], ad.unknown[i+1:]...)
	}
	if st, ok := ad.sources[t.src]; ok {
		st.active--
	}
}

func indexOf(ts []*ticket, t *ticket) int {
	for i, x := range ts {
		if x == t {
			return i
		}
	}
	return -1
}

// inProgress reports the handshakes in progress, of good and of unknown sources (tests).
func (ad *admission) inProgress() (good, unknown int) {
	ad.mu.Lock()
	defer ad.mu.Unlock()
	return ad.nGood, len(ad.unknown)
}
