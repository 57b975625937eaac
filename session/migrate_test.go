package session

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bondtun/bondtun/framing"
)

// sealedControl returns a genuine control datagram with no frames that the client would
// send on its path id, without sending it: what an on-path attacker could capture.
func sealedControl(t *testing.T, s *Session, id uint8) []byte {
	t.Helper()
	p := s.pathByID(id)
	if p == nil {
		t.Fatalf("client has no path %#x", id)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b := make([]byte, framing.Overhead)
	ih := framing.InnerHeader{SendTime: framing.Timestamp(time.Now(), s.epoch)}
	ih.Put(b[framing.HeaderLen:])
	dgram, _, err := s.sealLocked(p, framing.TypeControl, b, b[framing.HeaderLen:framing.PayloadOffset])
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), dgram...)
}

// TestSpoofedSourceDoesNotMovePath: an authenticated datagram of the client's, captured
// and sent first from another address that never answers, starts a validation but does
// not move the path, and that address receives at most 3× what it sent. The same datagram
// replayed, and a forged one, from other addresses start nothing. Traffic goes on.
func TestSpoofedSourceDoesNotMovePath(t *testing.T) {
	tp := newTestPair(t)
	srv := tp.server.Sessions()[0]
	const id = 0x10 // uplink b (1), server address 0
	sp := srv.pathByID(id)
	waitFor(t, "server learns path b's address", func() bool {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		return sp.remote.IsValid()
	})
	sp.mu.Lock()
	genuine := sp.remote
	sp.mu.Unlock()
	server := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: tp.server.Port()}
	listen := func(ip byte) *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, ip)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	attacker, other := listen(5), listen(6)

	dgram := sealedControl(t, tp.client.Session(), id)
	forged := append([]byte(nil), sealedControl(t, tp.client.Session(), id)...)
	forged[len(forged)-1] ^= 1
	c := srv.Counters()
	replays, authFails := c.RxReplay.Load(), c.RxAuthFail.Load()
	for _, send := range []struct {
		from *net.UDPConn
		b    []byte
	}{{attacker, dgram}, {attacker, dgram}, {other, dgram}, {other, forged}} {
		if _, err := send.from.WriteToUDP(send.b, server); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the replays and the forgery rejected", func() bool {
		return c.RxReplay.Load()-replays == 2 && c.RxAuthFail.Load()-authFails == 1
	})

	// Everything the attacker's address receives until the validation gives up.
	got := 0
	deadline := time.Now().Add(pathChallengeTries*pathChallengeRetry + 2*time.Second)
	buf := make([]byte, 2048)
	for c.PathValidationsFailed.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the validation of the attacker's address never ended")
		}
		attacker.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _, err := attacker.ReadFromUDP(buf); err == nil {
			got += n
		}
	}
	if got == 0 || got > pathAmplification*len(dgram) {
		t.Fatalf("the unvalidated address received %d bytes after sending %d; want 1..%d (a challenge, within the cap)", got, len(dgram), pathAmplification*len(dgram))
	}
	if c.PathChallenges.Load() != 1 || c.PathMoves.Load() != 0 {
		t.Fatalf("%d challenges, %d moves; want 1 challenge and no move", c.PathChallenges.Load(), c.PathMoves.Load())
	}
	for _, p := range srv.Paths() {
		if strings.HasPrefix(p.Name, "b→") && p.Remote != genuine {
			t.Fatalf("path b moved to %v (genuine %v)", p.Remote, genuine)
		}
	}
	for i := uint32(0); i < 20; i++ {
		tp.serverTUN.Outbound <- udpPacket(serverInner, clientInner, i, 1000)
		recvPacket(t, tp.fromClientTUN)
	}
}
