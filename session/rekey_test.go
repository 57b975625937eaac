package session

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
)

// gen is the current key generation of s.
func gen(s *Session) uint64 { return s.keys.cur.Load().gen }

// checkNoKeyLoss fails if a datagram of s failed to open or s dropped one for lack of a
// key, or s ended for its keys.
func checkNoKeyLoss(t *testing.T, side string, s *Session) {
	t.Helper()
	c := s.Counters()
	if n := c.RxAuthFail.Load(); n != 0 {
		t.Errorf("%s: %d datagrams failed to open", side, n)
	}
	if n := c.TxDropped.Load(); n != 0 {
		t.Errorf("%s: %d packets dropped on sending", side, n)
	}
	select {
	case <-s.keysDone:
		t.Errorf("%s: the session ended: %v", side, s.keysErr)
	default:
	}
}

// TestRekeyByPacketLimit: with a small confidentiality limit, a flow of packets makes the
// keys update several times (at half the limit), each end following the other, and every
// packet arrives, in order, in the same session: no datagram fails to open, none is
// dropped, the session never reaches the limit. (A packet that a loaded test machine
// delays past the reorder deadline is dropped as late, as without key updates.)
func TestRekeyByPacketLimit(t *testing.T) {
	lim := crypto.Limits{Seal: 2000}
	fast := rekeyConfig{overlapFloor: 20 * time.Millisecond}
	tp := newTestPairWith(t, &testPair{clientLimits: lim, serverLimits: lim, clientRekey: fast, serverRekey: fast})
	cs, ss := tp.client.Session(), tp.server.Sessions()[0]
	const n, burst = 6000, 8
	go func() {
		// 8 packets a millisecond at most: the limit cannot be reached while an update
		// waits for its confirmation (about 2 × 20 ms).
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := uint32(0); i < n; i++ {
			if i%burst == 0 {
				<-tick.C
			}
			tp.clientTUN.Outbound <- udpPacket(clientInner, serverInner, i, 600)
		}
	}()
	next, skipped := 0, 0
	for next < n {
		select {
		case p := <-tp.fromServerTUN:
			seq := int(binary.BigEndian.Uint32(p[28:32]))
			if seq < next {
				t.Fatalf("packet %d arrived after %d (generation %d)\nserver: %+v", seq, next-1, gen(ss), tp.server.Snapshot())
			}
			skipped += seq - next
			next = seq + 1
		case <-time.After(5 * time.Second):
			t.Fatalf("stalled at packet %d (client generation %d, server %d)\nserver: %+v", next, gen(cs), gen(ss), tp.server.Snapshot())
		}
	}
	if tp.client.Session() != cs || len(tp.server.Sessions()) != 1 || tp.server.Sessions()[0] != ss {
		t.Fatal("the session was replaced")
	}
	if g := gen(cs); g < 3 {
		t.Fatalf("only %d key updates for %d datagrams with a limit of %d", g, n, lim.Seal)
	}
	waitFor(t, "the server's generation", func() bool { return gen(ss) == gen(cs) })
	// A packet the test machine delayed past the reorder deadline arrives, opens, and is
	// dropped as late (as in TestFlowArrivesInOrder); none may be missing for another reason.
	ss.rxMu.Lock()
	late := ss.reorder.Stats().Late
	ss.rxMu.Unlock()
	if uint64(skipped) > late {
		t.Fatalf("%d packets missing, %d of them not late\nserver: %+v", skipped, uint64(skipped)-late, tp.server.Snapshot())
	}
	checkNoKeyLoss(t, "client", cs)
	checkNoKeyLoss(t, "server", ss)
	t.Logf("generation %d; client updates %d, server %d; previous-key datagrams at the server %d",
		gen(cs), cs.Counters().KeyUpdates.Load(), ss.Counters().KeyUpdates.Load(), ss.Counters().RxPrevKey.Load())
}

// TestRekeyByTime: with a short interval on the client, the keys update again and again
// while pings cross both ways, the server following; every ping arrives.
func TestRekeyByTime(t *testing.T) {
	tp := newTestPairWith(t, &testPair{
		clientRekey: rekeyConfig{interval: 100 * time.Millisecond, overlapFloor: 20 * time.Millisecond},
		serverRekey: rekeyConfig{overlapFloor: 20 * time.Millisecond},
	})
	cs, ss := tp.client.Session(), tp.server.Sessions()[0]
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; gen(cs) < 4 || gen(ss) < 4; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("generations %d and %d after %d pings", gen(cs), gen(ss), i)
		}
		pingBothWays(t, tp)
	}
	if n := ss.Counters().KeyUpdates.Load(); n < 4 {
		t.Fatalf("the server followed %d updates", n)
	}
	checkNoKeyLoss(t, "client", cs)
	checkNoKeyLoss(t, "server", ss)
}

// pingBothWays sends a ping each way and fails, showing both ends, if one does not arrive.
func pingBothWays(t *testing.T, tp *testPair) {
	t.Helper()
	for _, dir := range []struct {
		in   chan<- []byte
		out  <-chan []byte
		ping []byte
	}{
		{tp.clientTUN.Outbound, tp.fromServerTUN, tuntest.Ping(serverInner, clientInner)},
		{tp.serverTUN.Outbound, tp.fromClientTUN, tuntest.Ping(clientInner, serverInner)},
	} {
		dir.in <- dir.ping
		select {
		case got := <-dir.out:
			if !bytes.Equal(got, dir.ping) {
				t.Fatalf("got % x, want % x", got, dir.ping)
			}
		case <-time.After(5 * time.Second):
			cs, ss := tp.client.Session(), tp.server.Sessions()[0]
			t.Fatalf("a ping did not arrive; generations %d and %d\nclient: %+v\nserver: %+v", gen(cs), gen(ss), tp.client.Snapshot(), tp.server.Snapshot())
		}
	}
}

// startKeyUpdate makes s start a key update as its timer would once the last one is
// confirmed, and returns the generation it left.
func startKeyUpdate(t *testing.T, s *Session) *keyGen {
	t.Helper()
	g := s.keys.cur.Load()
	waitFor(t, "the current generation confirmed", func() bool { return s.keys.ackedGen.Load() > g.gen })
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if s.keys.cur.Load() != g {
		t.Fatal("the keys changed meanwhile")
	}
	if err := s.keys.switchLocked(time.Now(), g, false); err != nil {
		t.Fatal(err)
	}
	return g
}

// sealWith builds a control datagram with no frames that c seals on p with the send key
// of generation g, under a packet number taken from p, and sends it as c would.
func sealWith(t *testing.T, c *Session, p *Path, g *keyGen, tamper bool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	pn := p.pn
	p.pn++
	b := make([]byte, framing.PayloadOffset, framing.PayloadOffset+framing.TagLen)
	hdr := framing.Header{Type: framing.TypeControl, KeyPhase: g.phase, PathID: p.id, Receiver: c.remote, PacketNumber: pn}
	hdr.Put(b)
	inner := framing.InnerHeader{SendTime: framing.Timestamp(time.Now(), c.epoch)}
	inner.Put(b[framing.HeaderLen:])
	sealed, err := g.seal.Seal(b[framing.HeaderLen:framing.HeaderLen], b[framing.HeaderLen:], b[:framing.HeaderLen], p.id, pn)
	if err != nil {
		t.Fatal(err)
	}
	d := b[:framing.HeaderLen+len(sealed)]
	if tamper {
		d[len(d)-1] ^= 1
	}
	if _, err := p.transport().WriteBatch([][]byte{d}, p.remote); err != nil {
		t.Fatal(err)
	}
}

// TestPreviousKeyOverlap: after the client updated its keys and the server followed, a
// datagram the client seals with the previous key is accepted during the server's overlap
// (counted in RxPrevKey) and rejected after it (RxAuthFail: the other phase then means the
// next key). A forged datagram of either phase changes nothing, and the session goes on.
func TestPreviousKeyOverlap(t *testing.T) {
	for _, tt := range []struct {
		name    string
		overlap time.Duration
		inside  bool
	}{
		{"inside", time.Minute, true},
		{"outside", 50 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := rekeyConfig{interval: time.Hour, overlapFloor: tt.overlap}
			tp := newTestPairWith(t, &testPair{clientRekey: cfg, serverRekey: cfg})
			cs, ss := tp.client.Session(), tp.server.Sessions()[0]
			p := cs.pathList()[0]

			// A forged datagram with the next phase must not make the server switch.
			g0 := ss.keys.cur.Load()
			sealWith(t, cs, p, cs.keys.cur.Load(), true)
			nextPhase := *cs.keys.cur.Load()
			secret := cs.keys.sendSecret // a copy: the client's own next key stays to come
			nextSeal, err := nextPhase.seal.Next(secret.Next())
			if err != nil {
				t.Fatal(err)
			}
			nextPhase.phase, nextPhase.seal = !nextPhase.phase, nextSeal
			sealWith(t, cs, p, &nextPhase, true)
			waitFor(t, "two forgeries rejected", func() bool { return ss.Counters().RxAuthFail.Load() == 2 })
			if ss.keys.cur.Load() != g0 {
				t.Fatal("a forged datagram changed the server's keys")
			}

			old := startKeyUpdate(t, cs)
			pingBothWays(t, tp)
			waitFor(t, "the server following", func() bool { g := ss.keys.cur.Load(); return g.gen == 1 && g.heard })
			if !tt.inside {
				until := ss.keys.cur.Load().prevUntil
				waitFor(t, "the overlap's end", func() bool { return time.Now().UnixNano() > until+int64(10*time.Millisecond) })
			}
			g1 := ss.keys.cur.Load()
			fails := ss.Counters().RxAuthFail.Load()
			sealWith(t, cs, p, old, true) // forged, previous phase
			sealWith(t, cs, p, old, false)
			if tt.inside {
				waitFor(t, "the previous key's datagram accepted", func() bool { return ss.Counters().RxPrevKey.Load() == 1 })
				waitFor(t, "the forgery rejected", func() bool { return ss.Counters().RxAuthFail.Load() == fails+1 })
			} else {
				waitFor(t, "both rejected", func() bool { return ss.Counters().RxAuthFail.Load() == fails+2 })
				if n := ss.Counters().RxPrevKey.Load(); n != 0 {
					t.Fatalf("%d datagrams opened with the previous key after the overlap", n)
				}
			}
			if g := ss.keys.cur.Load(); g.gen != 1 || (tt.inside && g != g1) {
				t.Fatalf("the server's keys changed: generation %d", g.gen)
			}
			pingBothWays(t, tp)
		})
	}
}

// TestNextUpdateDuringOverlap: a peer that starts the next update while this end still
// keeps the previous key (its overlap estimate was shorter) is followed without loss: the
// datagram of the other phase that does not open with the previous key opens with the next.
func TestNextUpdateDuringOverlap(t *testing.T) {
	tp := newTestPairWith(t, &testPair{
		clientRekey: rekeyConfig{interval: time.Hour, overlapFloor: 10 * time.Millisecond},
		serverRekey: rekeyConfig{interval: time.Hour, overlapFloor: time.Minute},
	})
	cs, ss := tp.client.Session(), tp.server.Sessions()[0]
	for want := uint64(1); want <= 3; want++ {
		startKeyUpdate(t, cs)
		pingBothWays(t, tp)
		waitFor(t, "the server following", func() bool { return gen(ss) == want })
		if g := ss.keys.cur.Load(); g.prevOpen == nil || time.Now().UnixNano() >= g.prevUntil {
			t.Fatal("the server is not in its overlap")
		}
	}
	checkNoKeyLoss(t, "client", cs)
	checkNoKeyLoss(t, "server", ss)
}

// TestNoKeyUpdateWithoutCapability: a peer that did not announce CapKeyUpdate (an older
// build) never sees the other key phase: the session keeps generation 0, and a datagram
// with the other phase is rejected without an open.
func TestNoKeyUpdateWithoutCapability(t *testing.T) {
	s := bareSession(t)
	if s.keys.enabled {
		t.Fatal("key update enabled without the capability")
	}
	g := s.keys.cur.Load()
	if key, _ := g.openFor(!g.phase, time.Now().UnixNano()); key != nil {
		t.Fatal("a key for the other phase without key update")
	}
	s.tickKeys(time.Now().Add(time.Hour))
	if s.keys.cur.Load() != g {
		t.Fatal("the timer changed the keys")
	}
}

// fakeExporter is a deterministic TLS exporter for sessions without a handshake.
func fakeExporter(label string, _ []byte, n int) ([]byte, error) {
	b := make([]byte, n)
	for i := range b {
		b[i] = label[i%len(label)] + byte(i)
	}
	return b, nil
}

// TestKeyPhaseForgeriesChangeNothing: forged datagrams of either phase, before an update,
// during the overlap (where the other phase costs two opens) and after it, are counted,
// change no key state, and allocate nothing.
func TestKeyPhaseForgeriesChangeNothing(t *testing.T) {
	s, err := newSession(sessionParams{
		log: bareSession(t).log, peerName: "test", cipher: crypto.CipherChaCha20Poly1305, scheduler: "eat",
		isServer: true, keyUpdate: true, exporter: fakeExporter,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.local, s.remote = 0x1234, 0x1234
	p := &Path{id: 0x10, name: "test", remote: netip.MustParseAddrPort("192.0.2.1:7350")}
	if err := s.addPath(p); err != nil {
		t.Fatal(err)
	}
	s.deliver = discard{}
	r := &receiver{lookup: func(uint16) *Session { return s }, nc: &NodeCounters{}}
	forged := make([]byte, 200)
	hdr := framing.Header{Type: framing.TypeData, PathID: p.id, Receiver: s.local, PacketNumber: 7}
	from := netip.MustParseAddrPort("192.0.2.1:7350")
	pb := getBuf()
	defer putBuf(pb)
	try := func(stage string) {
		t.Helper()
		g := s.keys.cur.Load()
		for _, phase := range []bool{false, true} {
			hdr.KeyPhase = phase
			hdr.Put(forged)
			fails := s.counters.RxAuthFail.Load()
			run := func() {
				pb.n = copy(pb.data[:], forged)
				if r.handle(time.Now(), pb, from) {
					t.Fatal("a forged datagram was kept")
				}
			}
			if raceEnabled {
				run()
			} else if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
				t.Errorf("%s, phase %v: %.1f allocations per datagram", stage, phase, allocs)
			}
			if s.keys.cur.Load() != g || s.counters.RxAuthFail.Load() == fails {
				t.Fatalf("%s, phase %v: keys changed or the forgery was not counted", stage, phase)
			}
		}
	}
	try("generation 0")
	s.keys.mu.Lock()
	if err := s.keys.switchLocked(time.Now(), s.keys.cur.Load(), true); err != nil {
		t.Fatal(err)
	}
	s.keys.mu.Unlock()
	if g := s.keys.cur.Load(); g.prevOpen == nil || time.Now().UnixNano() >= g.prevUntil {
		t.Fatal("not in the overlap")
	}
	try("overlap")
	s.tickKeys(time.Now().Add(time.Hour)) // ends the overlap
	if s.keys.cur.Load().prevOpen != nil {
		t.Fatal("the previous key outlived its overlap")
	}
	try("after the overlap")
}
