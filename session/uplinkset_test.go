package session

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/framing"
)

// pathsOf returns the infos of the paths of s whose name starts with uplink's name.
func pathsOf(s *Session, uplink string) []PathInfo {
	var out []PathInfo
	for _, p := range s.Paths() {
		if strings.HasPrefix(p.Name, uplink+"→") {
			out = append(out, p)
		}
	}
	return out
}

// exchange sends n packets each way, one at a time, each arriving before the next goes.
func exchange(t *testing.T, tp *testPair, n int) {
	t.Helper()
	for i := range uint32(n) {
		tp.clientTUN.Outbound <- udpPacket(clientInner, serverInner, i, 1000)
		recvPacket(t, tp.fromServerTUN)
		tp.serverTUN.Outbound <- udpPacket(serverInner, clientInner, i, 1000)
		recvPacket(t, tp.fromClientTUN)
	}
}

// TestAddAndRemoveUplinkMidSession adds a third uplink to a running session, then removes
// it, then adds it back: the session is never replaced, the other uplinks' paths keep
// their counters, the new uplink's paths are added on both sides (UPLINKS) and carry data
// both ways when the others are disabled, and a removed uplink's paths leave Paths and
// carry nothing.
func TestAddAndRemoveUplinkMidSession(t *testing.T) {
	tp := newTestPair(t)
	cs, ss := tp.client.Session(), tp.server.Sessions()[0]
	if !cs.uplinksCap || !ss.uplinksCap {
		t.Fatal("CapUplinks not negotiated")
	}
	exchange(t, tp, 50)
	aBefore := pathsOf(cs, "a")[0].TxPackets

	if err := tp.client.AddUplink(UplinkConfig{Name: "a", Source: netip.MustParseAddr("127.0.0.4")}); err == nil {
		t.Fatal("AddUplink accepted a second uplink a")
	}
	if err := tp.client.AddUplink(UplinkConfig{Name: "c", Source: netip.MustParseAddr("127.0.0.3")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "uplink c's path up on both sides", func() bool {
		c, sc := pathsOf(cs, "c"), pathsOf(ss, "c")
		return len(c) == 1 && c[0].State == "up" && len(sc) == 1 && sc[0].State == "up"
	})
	// Only c: every packet goes over it, both ways.
	for _, u := range []string{"a", "b"} {
		if err := tp.client.SetTier(u, framing.TierDisabled); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the server sees a and b disabled", func() bool {
		return pathsOf(ss, "a")[0].Tier == "disabled" && pathsOf(ss, "b")[0].Tier == "disabled"
	})
	cTx, cRx := pathsOf(cs, "c")[0].TxPackets, pathsOf(cs, "c")[0].RxPackets
	exchange(t, tp, 100)
	if c := pathsOf(cs, "c")[0]; c.TxPackets-cTx < 100 || c.RxPackets-cRx < 100 {
		t.Fatalf("uplink c sent %d and received %d datagrams of 100 each way", c.TxPackets-cTx, c.RxPackets-cRx)
	}
	for _, u := range []string{"a", "b"} {
		if err := tp.client.SetTier(u, framing.TierPrimary); err != nil {
			t.Fatal(err)
		}
	}

	if err := tp.client.RemoveUplink("c"); err != nil {
		t.Fatal(err)
	}
	if len(pathsOf(cs, "c")) != 0 {
		t.Fatal("a removed uplink's path is still listed")
	}
	if err := tp.client.SetTier("c", framing.TierPrimary); err == nil {
		t.Fatal("SetTier accepted a removed uplink")
	}
	waitFor(t, "the server sees c disabled", func() bool { return pathsOf(ss, "c")[0].Tier == "disabled" })
	srvC := pathsOf(ss, "c")[0].RxPackets
	exchange(t, tp, 100)
	if got := pathsOf(ss, "c")[0].RxPackets - srvC; got > 5 {
		t.Fatalf("the removed uplink c still carried %d datagrams to the server", got)
	}
	if a := pathsOf(cs, "a")[0].TxPackets; a < aBefore {
		t.Fatalf("uplink a's counters went back from %d to %d: its path was replaced", aBefore, a)
	}

	// Back under its name: the same slot, its paths again.
	if err := tp.client.AddUplink(UplinkConfig{Name: "c", Source: netip.MustParseAddr("127.0.0.3")}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("client c: %+v", pathsOf(cs, "c"))
			t.Logf("server c: %+v", pathsOf(ss, "c"))
		}
	}()
	waitFor(t, "uplink c back and validated", func() bool {
		c := pathsOf(cs, "c")
		return len(c) == 1 && c[0].State == "up" && pathsOf(ss, "c")[0].Tier == "primary"
	})
	exchange(t, tp, 50)
	if tp.client.Session() != cs || len(tp.server.Sessions()) != 1 || tp.server.Sessions()[0] != ss {
		t.Fatal("the session was replaced")
	}
	if err := tp.client.RemoveUplink("nope"); err == nil {
		t.Fatal("RemoveUplink accepted an unknown uplink")
	}
	// c alone: the control channel, on a, moves to it, and the data follows.
	for _, u := range []string{"a", "b"} {
		if err := tp.client.RemoveUplink(u); err != nil {
			t.Fatal(err)
		}
	}
	exchange(t, tp, 50)
	waitFor(t, "the control channel on c", func() bool { return cs.ctrlUplink.Load() == 2 })
	if tp.client.Session() != cs {
		t.Fatal("the session was replaced")
	}
}

// TestUplinkSlots: a new uplink takes its own name's removed slot, else one the session has
// no paths of, else a new one, and never more than 16.
func TestUplinkSlots(t *testing.T) {
	c := &Client{}
	for i := range 3 {
		c.cfg.Uplinks = append(c.cfg.Uplinks, UplinkConfig{Name: string(rune('a' + i))})
	}
	c.retired[1] = true
	if got, err := c.freeSlotLocked("b"); err != nil || got != 1 {
		t.Fatalf("b: slot %d, %v; want its own, 1", got, err)
	}
	if got, err := c.freeSlotLocked("x"); err != nil || got != 1 {
		t.Fatalf("x: slot %d, %v; want the removed one without a session, 1", got, err)
	}
	c.helloIDs = 1 << 1
	if got, err := c.freeSlotLocked("x"); err != nil || got != 3 {
		t.Fatalf("x: slot %d, %v; want a new one, 3 (a HELLO in flight lists 1)", got, err)
	}
	c.helloIDs = 0
	if _, err := c.freeSlotLocked("a"); err == nil {
		t.Fatal("a slot for an uplink that exists")
	}
	s := &Session{}
	empty := []*Path{{id: 0x10}}
	s.paths.Store(&empty)
	c.sess = s
	if got, err := c.freeSlotLocked("x"); err != nil || got != 3 {
		t.Fatalf("x: slot %d, %v; want a new one, 3 (the session still has 1's paths)", got, err)
	}
	for len(c.cfg.Uplinks) < 16 {
		c.cfg.Uplinks = append(c.cfg.Uplinks, UplinkConfig{Name: "n"})
	}
	if _, err := c.freeSlotLocked("x"); err == nil {
		t.Fatal("a 17th slot")
	}
}
