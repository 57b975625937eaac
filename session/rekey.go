package session

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
)

// Key update (docs/PROTOCOL.md §1 "Key update", docs/DECISIONS.md): QUIC's design (RFC
// 9001 §6). The data keys of a session come in generations; the header's key phase bit is
// the generation's low bit. Each end holds the next generation's keys before anyone
// switches. An end starts an update by sealing with the next keys; an end that opens a
// datagram with the next keys switches its own sending too. The previous receive key is
// kept for an overlap after the first datagram of the new generation arrived, and the key
// phase alone picks the key: the other phase means the previous generation during the
// overlap and the next one after it. So an end starts an update only when the peer has
// reported (FEEDBACK) a datagram of the current generation and twice the overlap has passed
// since: by then the peer's overlap is over and it opens the other phase with the next key.

// keyGen is one generation of a session's data keys, with what the receive path needs to
// pick a key without a lock. It is immutable once published in keyState.cur.
type keyGen struct {
	gen      uint64
	phase    bool         // the key phase bit of this generation: gen&1 == 1
	seal     *crypto.AEAD // this generation's keys
	open     *crypto.AEAD
	prevOpen *crypto.AEAD // the previous generation's receive key during the overlap; else nil
	// The next generation's receive key, ready before the peer switches; nil without key
	// update. Its send key is made at the switch (switchLocked), which only this end's
	// timer or receive path starts under keyState.mu: an idle session holds one key less.
	nextOpen *crypto.AEAD
	// heard: a datagram of this generation arrived. prevUntil (unix ns) ends the overlap:
	// the other phase opens with prevOpen before it, with nextOpen after it. It is
	// math.MaxInt64 until heard (the peer may still be sending the previous generation).
	heard     bool
	prevUntil int64
	started   time.Time // when this end switched to the generation
}

// Which key of a keyGen opened a datagram.
const (
	keyCur = iota
	keyPrev
	keyNext
)

// openFor returns the receive key for a datagram with key phase phase that arrived at
// now (unix ns), and which one it is; nil if there is none (no key update).
func (g *keyGen) openFor(phase bool, now int64) (*crypto.AEAD, int) {
	if phase == g.phase {
		return g.open, keyCur
	}
	if g.prevOpen != nil && now < g.prevUntil {
		return g.prevOpen, keyPrev
	}
	return g.nextOpen, keyNext
}

// openDatagram opens the datagram b (header hdr) in place with the key its phase picks in
// the current generation, which it returns with the key used. It takes no lock.
//
// The other phase during the overlap is the previous generation's, unless the peer already
// started the next update, which it may if its estimate of the overlap is shorter than
// ours (another path's SRTT): a datagram that does not open with the previous key is then
// tried with the next one. A failed open in place destroys the ciphertext, so that case
// keeps a copy; it happens only in the overlap after an update.
func (s *Session) openDatagram(now time.Time, hdr framing.Header, b []byte) ([]byte, *keyGen, int, error) {
	g := s.keys.cur.Load()
	key, which := g.openFor(hdr.KeyPhase, now.UnixNano())
	if key == nil {
		return nil, g, which, crypto.ErrOpen // the other phase, and the peer cannot update keys
	}
	ct, aad := b[framing.HeaderLen:], b[:framing.HeaderLen]
	if which != keyPrev || g.nextOpen == nil {
		plain, err := key.Open(ct[:0], ct, aad, hdr.PathID, hdr.PacketNumber)
		return plain, g, which, err
	}
	save := getBuf()
	n := copy(save.data[:], ct)
	plain, err := key.Open(ct[:0], ct, aad, hdr.PathID, hdr.PacketNumber)
	if err != nil && !errors.Is(err, crypto.ErrIntegrityLimit) {
		copy(ct, save.data[:n])
		plain, err = g.nextOpen.Open(ct[:0], ct, aad, hdr.PathID, hdr.PacketNumber)
		which = keyNext
	}
	putBuf(save)
	return plain, g, which, err
}

// rekeyConfig holds what tests (and the debug knob) change of the key update policy.
type rekeyConfig struct {
	interval     time.Duration // 0: rekeyInterval (or BONDTUN_DEBUG_REKEY_INTERVAL)
	overlapFloor time.Duration // 0: rekeyOverlapFloor
}

// Key update policy.
const (
	// rekeyInterval: a generation's keys are updated after this long. A few minutes bounds
	// what one key protects and how long a key taken from memory decrypts the traffic that
	// follows, at the cost of a few HKDF calls per update.
	rekeyInterval = 120 * time.Second
	// rekeyPackets: a generation's keys are updated after sealing this many datagrams (or
	// half the key's confidentiality limit, if lower: tests set small ones). 2^22 is half
	// AES-256-GCM's limit of 2^23 (RFC 9001 §6.6); the other half, ≈ 47 s at 1 Gbit/s of
	// 1400-byte datagrams, is the margin for the previous update's confirmation.
	rekeyPackets = 1 << 22
	// rekeyOverlapFloor and rekeyOverlapMax bound the overlap, 3 × the largest path SRTT
	// (RFC 9001 §6.5 keeps old keys for 3 × PTO): datagrams sealed with the previous key
	// arrive within a path's delay, and 200 ms covers the reorder of short paths.
	rekeyOverlapFloor = 200 * time.Millisecond
	rekeyOverlapMax   = 10 * time.Second
	// rekeyOverlapEvery is how often the timer recomputes the overlap from the paths.
	rekeyOverlapEvery = 100 * time.Millisecond
)

// debugRekeyInterval is BONDTUN_DEBUG_REKEY_INTERVAL (a Go duration, e.g. "1s"), a debug
// knob that replaces rekeyInterval in every session of the process (docs/STATUS.md); 0
// if unset or not a positive duration.
var debugRekeyInterval = sync.OnceValue(func() time.Duration {
	d, err := time.ParseDuration(os.Getenv("BONDTUN_DEBUG_REKEY_INTERVAL"))
	if err != nil || d <= 0 {
		return 0
	}
	return d
})

// keyState is a session's data keys and their update.
type keyState struct {
	cur      atomic.Pointer[keyGen]
	enabled  bool // both ends announced CapKeyUpdate
	interval time.Duration
	floor    time.Duration
	softSeal uint64        // datagrams after which the send key is updated
	overlap  atomic.Int64  // ns, kept up to date by tickKeys
	ackedGen atomic.Uint64 // 1 + the newest generation the peer reported a datagram of

	// mu serializes changes of cur; it is a leaf: nothing else is locked while it is held.
	mu         sync.Mutex
	ackedAt    time.Time // when ackedGen last grew
	sendSecret crypto.UpdateSecret
	recvSecret crypto.UpdateSecret

	lastOverlap time.Time // the timer callback's
}

// init sets up generation 0 from the exported keys and, if update is set, the key update
// secrets from export, with generation 1 ready.
func (ks *keyState) init(p sessionParams) error {
	seal, err := crypto.NewAEADWithLimits(p.cipher, p.send, p.limits)
	if err != nil {
		return err
	}
	open, err := crypto.NewAEADWithLimits(p.cipher, p.recv, p.limits)
	if err != nil {
		return err
	}
	ks.interval = p.rekey.interval
	if ks.interval <= 0 {
		ks.interval = rekeyInterval
		if d := debugRekeyInterval(); d > 0 {
			ks.interval = d
			if p.log != nil {
				p.log.Warn("debug: BONDTUN_DEBUG_REKEY_INTERVAL sets the key update interval", "interval", d)
			}
		}
	}
	ks.floor = p.rekey.overlapFloor
	if ks.floor <= 0 {
		ks.floor = rekeyOverlapFloor
	}
	ks.softSeal = min(rekeyPackets, seal.Limits().Seal/2)
	ks.overlap.Store(int64(ks.floor))
	g := &keyGen{seal: seal, open: open, started: p.clock()}
	if p.keyUpdate && p.exporter != nil {
		if ks.sendSecret, ks.recvSecret, err = crypto.DeriveUpdateSecrets(p.exporter, !p.isServer); err != nil {
			return err
		}
		if g.nextOpen, err = open.Next(ks.recvSecret.Next()); err != nil {
			return err
		}
		ks.enabled = true
	}
	ks.cur.Store(g)
	return nil
}

// switchLocked makes g's next generation current (this end starts the update, or follows
// the peer's when heard is set) and prepares the receive key of the one after it. ks.mu
// must be held.
func (ks *keyState) switchLocked(now time.Time, g *keyGen, heard bool) error {
	seal, err := g.seal.Next(ks.sendSecret.Next())
	if err != nil {
		return err
	}
	nextOpen, err := g.nextOpen.Next(ks.recvSecret.Next())
	if err != nil {
		return err
	}
	n := &keyGen{
		gen: g.gen + 1, phase: !g.phase, started: now,
		seal: seal, open: g.nextOpen, prevOpen: g.open, nextOpen: nextOpen,
		heard: heard, prevUntil: math.MaxInt64,
	}
	if heard {
		n.prevUntil = now.UnixNano() + ks.overlap.Load()
	}
	ks.cur.Store(n)
	return nil
}

// replaceLocked publishes a copy of g changed by f, if g is still current. ks.mu must be
// held.
func (ks *keyState) replaceLocked(g *keyGen, f func(*keyGen)) {
	if ks.cur.Load() != g {
		return
	}
	n := *g
	f(&n)
	ks.cur.Store(&n)
}

// onKeyOpened is called when a datagram opened with key which of g (not g's current key
// after g was heard: that needs nothing). The peer switched to g's next generation, or
// this is the first datagram of g, or one of the previous generation in the overlap.
func (s *Session) onKeyOpened(now time.Time, g *keyGen, which int) {
	ks := &s.keys
	if which == keyPrev {
		s.counters.RxPrevKey.Add(1)
		return
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.cur.Load() != g {
		return // another receiver got here first
	}
	if which == keyNext {
		if err := ks.switchLocked(now, g, true); err != nil {
			s.keyUpdateFailedLocked(err)
			return
		}
		s.counters.KeyUpdates.Add(1)
		s.log.Debug("keys updated by the peer", "peer", s.peerName, "generation", g.gen+1)
		return
	}
	ks.replaceLocked(g, func(n *keyGen) {
		n.heard = true
		if n.prevOpen != nil {
			n.prevUntil = now.UnixNano() + ks.overlap.Load()
		}
	})
}

// keyUpdateFailedLocked ends the session: the next keys could not be made (it does not
// happen with valid keys). ks.mu must be held.
func (s *Session) keyUpdateFailedLocked(err error) {
	s.keysUsedUp(fmt.Errorf("key update: %w", err))
}

// noteKeyAckedLocked is called with a FEEDBACK report's highest packet number for q: if it
// covers a datagram q sealed with the current generation, the peer has that generation's
// keys. q.mu must be held.
func (s *Session) noteKeyAckedLocked(now time.Time, q *Path, highest uint64) {
	ks := &s.keys
	if !ks.enabled || highest < q.genFirstPN || ks.ackedGen.Load() > q.txGen {
		return
	}
	ks.mu.Lock()
	if ks.ackedGen.Load() <= q.txGen {
		ks.ackedAt = now
		ks.ackedGen.Store(q.txGen + 1)
	}
	ks.mu.Unlock()
}

// tickKeys is the timer's key update check: it keeps the overlap up to date, ends the
// previous key's overlap, and starts an update when the current keys are old or have
// sealed rekeyPackets datagrams, as soon as the last update is confirmed. It is correct
// however often it runs (the receive path picks keys by the time itself): running late only
// delays an update, or the dropping of a previous key, by as much.
//
// It runs in the timer callback only.
func (s *Session) tickKeys(now time.Time) {
	ks := &s.keys
	if !ks.enabled {
		return
	}
	if now.Sub(ks.lastOverlap) >= rekeyOverlapEvery {
		ks.overlap.Store(int64(s.keyOverlap()))
		ks.lastOverlap = now
	}
	g := ks.cur.Load()
	overlapOver := g.heard && now.UnixNano() >= g.prevUntil
	if g.prevOpen != nil && overlapOver {
		ks.mu.Lock()
		ks.replaceLocked(g, func(n *keyGen) { n.prevOpen = nil }) // forget the previous key
		ks.mu.Unlock()
		return
	}
	if !overlapOver || (now.Sub(g.started) < ks.interval && g.seal.Sealed() < ks.softSeal) {
		return
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.cur.Load() != g || ks.ackedGen.Load() <= g.gen || now.Sub(ks.ackedAt) < 2*time.Duration(ks.overlap.Load()) {
		return // not confirmed yet: the peer may still open the other phase with our previous key
	}
	if err := ks.switchLocked(now, g, false); err != nil {
		s.keyUpdateFailedLocked(err)
		return
	}
	s.counters.KeyUpdates.Add(1)
	s.log.Debug("keys updated", "peer", s.peerName, "generation", g.gen+1, "after", now.Sub(g.started).Round(time.Millisecond), "sealed", g.seal.Sealed())
}

// keyOverlap is how long a previous receive key is kept: 3 × the largest path SRTT, within
// [floor, rekeyOverlapMax].
func (s *Session) keyOverlap() time.Duration {
	var srtt time.Duration
	for _, p := range s.pathList() {
		p.mu.Lock()
		srtt = max(srtt, p.stats.SRTT())
		p.mu.Unlock()
	}
	return min(max(3*srtt, s.keys.floor), rekeyOverlapMax)
}

// wipe clears the update secrets when the session closes.
func (ks *keyState) wipe() {
	ks.mu.Lock()
	ks.sendSecret.Wipe()
	ks.recvSecret.Wipe()
	ks.mu.Unlock()
}

// exporterOf is the TLS exporter of a control connection.
func exporterOf(c *ctrlConn) crypto.Exporter {
	cs := c.ConnectionState()
	return cs.ExportKeyingMaterial
}
