package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/path"
)

// waitNewSession sends packets from the client until its session is not old any more
// and a new one is established, then checks a ping crosses the new one both ways.
func waitNewSession(t *testing.T, tp *testPair, old *Session) *Session {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var seq uint32
	for {
		if s := tp.client.Session(); s != nil && s != old {
			waitFor(t, "new session on the server", func() bool {
				ss := tp.server.Sessions()
				return len(ss) == 1 && ss[0].remote == s.local && ss[0].local == s.remote
			})
			// The new session's paths validate first, and the data sent so far may still
			// be arriving: ping every 100 ms and skip everything else until a ping shows.
			ping := tuntest.Ping(serverInner, clientInner)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			timeout := time.After(5 * time.Second)
			tp.clientTUN.Outbound <- ping
			for {
				select {
				case got := <-tp.fromServerTUN:
					if bytes.Equal(got, ping) {
						return s
					}
				case <-tick.C:
					tp.clientTUN.Outbound <- ping
				case <-timeout:
					t.Fatalf("no ping through the new session\nclient: %+v", tp.client.Snapshot())
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the session was not replaced")
		}
		seq++
		tp.clientTUN.Outbound <- udpPacket(clientInner, serverInner, seq, 200)
		time.Sleep(time.Millisecond)
	}
}

// TestKeyLimitEndsSession: a key that reaches its confidentiality limit (made small
// here) before a key update could happen (the overlap, made an hour, keeps the first
// update from being confirmed) ends the session without a panic, on either side, and the
// client opens a new session with new keys, which carries traffic.
func TestKeyLimitEndsSession(t *testing.T) {
	small := crypto.Limits{Seal: 400}
	stuck := rekeyConfig{overlapFloor: time.Hour}
	for name, lim := range map[string][2]crypto.Limits{
		"client keys": {small, {}},
		"server keys": {{}, small},
	} {
		t.Run(name, func(t *testing.T) {
			tp := newTestPairWith(t, &testPair{clientLimits: lim[0], serverLimits: lim[1], clientRekey: stuck, serverRekey: stuck})
			old := tp.client.Session()
			oldServer := tp.server.Sessions()[0]
			waitNewSession(t, tp, old)
			ended := old
			if lim[1] != (crypto.Limits{}) {
				ended = oldServer // it sealed PROBE_ACKs and FEEDBACK until it ran out
			}
			select {
			case <-ended.keysDone:
			default:
				t.Fatal("the session with the small limit did not record why it ended")
			}
			g := ended.keys.cur.Load()
			if !errors.Is(ended.keysErr, crypto.ErrKeyExhausted) || g.seal.Sealed() != small.Seal || g.gen != 0 {
				t.Fatalf("ended with %v after %d seals of generation %d, want ErrKeyExhausted after %d of generation 0", ended.keysErr, g.seal.Sealed(), g.gen, small.Seal)
			}
		})
	}
}

// TestPacketNumberExhaustionEndsSession: a path whose packet numbers run out (set near
// 2^48 here) ends the session cleanly instead of panicking, and a new session follows.
func TestPacketNumberExhaustionEndsSession(t *testing.T) {
	tp := newTestPair(t)
	old := tp.client.Session()
	for _, p := range old.pathList() {
		p.mu.Lock()
		p.pn = framing.MaxPacketNumber
		p.mu.Unlock()
	}
	waitNewSession(t, tp, old)
	if !errors.Is(old.keysErr, crypto.ErrPacketNumberExhausted) {
		t.Fatalf("old session ended with %v, want ErrPacketNumberExhausted", old.keysErr)
	}
	for _, p := range old.pathList() {
		p.mu.Lock()
		pn := p.pn
		p.mu.Unlock()
		if pn > framing.MaxPacketNumber+1 {
			t.Fatalf("path %s went on to packet number %d", p.name, pn)
		}
	}
}

// TestIntegrityLimitEndsSession: once the server's receive key saw its integrity limit of
// forgeries (made small here), it ends the session, and the client opens a new one.
func TestIntegrityLimitEndsSession(t *testing.T) {
	const limit = 8
	tp := newTestPairLimits(t, crypto.Limits{}, crypto.Limits{FailedOpen: limit})
	old := tp.client.Session()
	srv := tp.server.Sessions()[0]
	conn, err := path.Listen(path.ListenOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	forged := make([]byte, 64)
	forged[0] = byte(framing.TypeData)
	forged[1] = srv.pathList()[0].id
	binary.BigEndian.PutUint16(forged[2:4], srv.local)
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(tp.server.Port()))
	for i := range limit {
		// Fresh packet numbers: one the path's replay window has seen is rejected before
		// the open, and never counts as a failed open.
		binary.BigEndian.PutUint32(forged[6:10], uint32(1<<30+i))
		if _, err := conn.WriteBatch([][]byte{forged}, dst); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the server session to end", func() bool {
		select {
		case <-srv.keysDone:
			return true
		default:
			return false
		}
	})
	if fails := srv.keys.cur.Load().open.FailedOpens(); !errors.Is(srv.keysErr, crypto.ErrIntegrityLimit) || fails != limit {
		t.Fatalf("ended with %v after %d failed opens, want ErrIntegrityLimit after %d", srv.keysErr, fails, limit)
	}
	waitNewSession(t, tp, old)
}
