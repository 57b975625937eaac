package session

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/bondtun/bondtun/crypto"
)

// reloadPeer is one client of the reload test: its key, inner address and, once
// connected, its client and TUN.
type reloadPeer struct {
	name   string
	key    crypto.PrivateKey
	inner  netip.Addr
	cfg    PeerConfig
	source netip.Addr // its uplink's address; zero: 127.0.0.1

	client *Client
	tun    *tuntest.ChannelTUN
	from   chan []byte // packets the client wrote to its TUN
	cancel context.CancelFunc
	done   chan struct{}
}

func newReloadPeer(t *testing.T, name string, last byte) *reloadPeer {
	p := &reloadPeer{name: name, key: newKey(t), inner: netip.AddrFrom4([4]byte{10, 77, 0, last})}
	p.cfg = PeerConfig{Name: name, Key: p.key.Public(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(p.inner, 32)}}
	return p
}

// connect makes p's client (one uplink, so one path: nothing is reordered, so nothing
// may be lost), connects it and runs it until the test ends.
func (p *reloadPeer) connect(t *testing.T, sv *Server, serverPub crypto.PublicKey) error {
	t.Helper()
	p.tun = tuntest.NewChannelTUN()
	p.from = drain(p.tun.Inbound)
	src := p.source
	if !src.IsValid() {
		src = netip.MustParseAddr("127.0.0.1")
	}
	c, err := NewClient(ClientConfig{
		Identity:   p.key,
		ServerName: "server",
		ServerKey:  serverPub,
		Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sv.Port())),
		Uplinks:    []UplinkConfig{{Name: "a", Source: src}},
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
	}, p.tun.TUN())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Connect(ctx); err != nil {
		cancel()
		c.Close()
		p.tun.TUN().Close()
		return err
	}
	p.client, p.cancel, p.done = c, cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		p.tun.TUN().Close()
	})
	waitFor(t, p.name+"'s path validated", func() bool {
		s := c.Session()
		return s != nil && len(s.Paths()) == 1 && s.Paths()[0].Validated
	})
	// The server's side of the path too: until it is usable, the server drops what it is
	// given to send to p (TxDropped: no path).
	waitFor(t, p.name+"'s path usable at the server", func() bool {
		s := serverSession(sv, p.key.Public())
		return s != nil && len(s.Paths()) == 1 && s.Paths()[0].Usable
	})
	return nil
}

func serverSession(sv *Server, key crypto.PublicKey) *Session {
	if ps := sv.peers.Load().byKey[key]; ps != nil {
		return ps.sess.Load()
	}
	return nil
}

// TestReloadAddsAndRemovesPeersWhileAThirdTransfers is issue 14's reload test in process:
// while peer a moves packets both ways, SetPeers drops peer b and adds peer c. a's session
// on the server is the same object afterwards, with the same path, its counters carry on,
// and every packet arrives, in order; b's session ends (BYE) and its key is refused; c
// connects at once and is routed to.
func TestReloadAddsAndRemovesPeersWhileAThirdTransfers(t *testing.T) {
	serverKey := newKey(t)
	a, b, c := newReloadPeer(t, "a", 2), newReloadPeer(t, "b", 3), newReloadPeer(t, "c", 4)
	stun := tuntest.NewChannelTUN()
	fromServer := drain(stun.Inbound)
	sv, err := NewServer(ServerConfig{
		Identity:  serverKey,
		Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Peers:     []PeerConfig{a.cfg, b.cfg},
	}, stun.TUN())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sv.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		stun.TUN().Close()
	})
	for _, p := range []*reloadPeer{a, b} {
		if err := p.connect(t, sv, serverKey.Public()); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
	}
	waitFor(t, "a's and b's sessions on the server", func() bool {
		return serverSession(sv, a.key.Public()) != nil && serverSession(sv, b.key.Public()) != nil
	})
	aSess := serverSession(sv, a.key.Public())
	aPaths := aSess.pathList()
	serverIP := netip.MustParseAddr("10.77.0.1")

	// a's transfer: up to 16 packets in flight each way; every one must arrive, in order.
	// It stops once the reload is done and 500 more packets went through.
	const window, after = transferWindow, 500
	reloaded := make(chan struct{})
	res := windowedTransfer(a, stun, fromServer, serverIP, reloaded, after, nil)
	waitFor(t, "a's transfer under way", func() bool { return aSess.Counters().RxPackets.Load() > 100 })
	rxBefore := aSess.Counters().RxPackets.Load()

	ch, err := sv.SetPeers([]PeerConfig{a.cfg, c.cfg})
	if err != nil {
		t.Fatal(err)
	}
	close(reloaded)
	if !slices.Equal(ch.Added, []string{"c"}) || !slices.Equal(ch.Removed, []string{"b"}) ||
		!slices.Equal(ch.Ended, []string{"b"}) || len(ch.Changed) != 0 {
		t.Fatalf("changes %+v, want c added, b removed and ended", ch)
	}
	// c can connect at once (and is routed to, below: the server's TUN output is a's
	// transfer's until it ends).
	if err := c.connect(t, sv, serverKey.Public()); err != nil {
		t.Fatalf("added peer c: %v", err)
	}

	r := <-res
	if r.err != "" {
		t.Fatalf("a's transfer: %s after %d up, %d down", r.err, r.up, r.down)
	}
	if got := serverSession(sv, a.key.Public()); got != aSess {
		t.Fatal("a's session was replaced by the reload")
	}
	if !slices.Equal(aSess.pathList(), aPaths) {
		t.Fatal("a's paths changed in the reload")
	}
	// After the reload the transfer read `after` packets more, but up to window of them
	// were already received (counted in rxBefore) and only waiting to be read.
	if rx := aSess.Counters().RxPackets.Load(); rx < rxBefore+after-window {
		t.Fatalf("a's counters did not carry on: %d received before the reload, %d now", rxBefore, rx)
	}
	t.Logf("a: %d packets up, %d down, none lost; session and path unchanged", r.up, r.down)
	for range window { // the transfer's last window, in flight when it stopped reading
		recvPacket(t, fromServer)
		recvPacket(t, a.from)
	}
	ping := udpPacket(c.inner, serverIP, 1, 100)
	c.tun.Outbound <- ping
	if got := recvPacket(t, fromServer); string(got) != string(ping) {
		t.Fatalf("the server got % x from c, want c's packet", got)
	}
	pong := udpPacket(serverIP, c.inner, 2, 100)
	stun.Outbound <- pong
	if got := recvPacket(t, c.from); string(got) != string(pong) {
		t.Fatalf("c got % x, want the server's packet", got)
	}

	// b: its session ended with BYE, and its key is refused now.
	waitFor(t, "b's session ended on both sides", func() bool {
		return serverSession(sv, b.key.Public()) == nil && b.client.Session() == nil
	})
	again := newReloadPeer(t, "b-again", 3)
	again.key, again.cfg = b.key, b.cfg
	if err := again.connect(t, sv, serverKey.Public()); err == nil {
		t.Fatal("b's key was accepted after the reload removed it")
	}
}

// TestReloadChangesAllowedIPsInPlace: a peer whose allowed_ips a reload changes keeps its
// session; packets from its new address are accepted and routed to it, from the old one
// dropped.
func TestReloadChangesAllowedIPsInPlace(t *testing.T) {
	tp := newTestPair(t)
	s := tp.server.Sessions()[0]
	moved := netip.MustParseAddr("10.77.0.9")
	ch, err := tp.server.SetPeers([]PeerConfig{{Name: "renamed", Key: tp.clientKey.Public(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(moved, 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Changed, []string{"renamed"}) || len(ch.Added)+len(ch.Removed)+len(ch.Ended) != 0 {
		t.Fatalf("changes %+v, want only renamed changed", ch)
	}
	if got := tp.server.Sessions(); len(got) != 1 || got[0] != s {
		t.Fatal("the changed peer's session was replaced")
	}
	if got := tp.server.Snapshot().Sessions[0].Peer; got != "renamed" {
		t.Fatalf("status names the peer %q, want the new name", got)
	}
	old := udpPacket(clientInner, serverInner, 1, 100)
	tp.clientTUN.Outbound <- old
	good := udpPacket(moved, serverInner, 2, 100)
	tp.clientTUN.Outbound <- good
	if got := recvPacket(t, tp.fromServerTUN); string(got) != string(good) {
		t.Fatalf("server got % x, want only the packet from the new address", got)
	}
	back := udpPacket(serverInner, moved, 3, 100)
	tp.serverTUN.Outbound <- back
	if got := recvPacket(t, tp.fromClientTUN); string(got) != string(back) {
		t.Fatalf("client got % x, want the packet routed to the new address", got)
	}
}

func TestSetPeersRefusesDuplicateKey(t *testing.T) {
	tp := newTestPair(t)
	pc := PeerConfig{Name: "x", Key: tp.clientKey.Public(), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.2/32")}}
	if _, err := tp.server.SetPeers([]PeerConfig{pc, pc}); err == nil {
		t.Fatal("a duplicate key was accepted")
	}
	if got := tp.server.Peers(); len(got) != 1 || got[0].Name != "client" {
		t.Fatalf("peers after a refused SetPeers: %+v", got)
	}
}

func TestPeerTableRoute(t *testing.T) {
	k := func(b byte) crypto.PublicKey { return crypto.PublicKey{b} }
	tab, err := buildPeerTable([]PeerConfig{
		{Name: "net", Key: k(1), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{Name: "sub", Key: k(2), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
		{Name: "host", Key: k(3), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("fd00::1/128")}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dst, want string }{
		{"10.1.2.3", "host"}, {"fd00::1", "host"}, {"10.1.2.4", "sub"}, {"10.9.9.9", "net"}, {"11.0.0.1", ""},
	} {
		got := ""
		if ps := tab.route(netip.MustParseAddr(tc.dst)); ps != nil {
			got = ps.name()
		}
		if got != tc.want {
			t.Errorf("route(%s) = %q, want %q", tc.dst, got, tc.want)
		}
	}
	dst := netip.MustParseAddr("10.1.2.4")
	if n := testing.AllocsPerRun(100, func() { tab.route(dst) }); n != 0 {
		t.Errorf("route allocates %.0f times per packet", n)
	}
}

// TestClientSetServer: a client's reload that points it at another server (another key
// and address) ends the session with the first server (BYE) and opens one with the
// second, without the client's Run ending.
func TestClientSetServer(t *testing.T) {
	tp := newTestPair(t)
	first := tp.client.Session()
	otherKey := newKey(t)
	otherTUN := tuntest.NewChannelTUN()
	fromOther := drain(otherTUN.Inbound)
	other, err := NewServer(ServerConfig{
		Identity:  otherKey,
		Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Peers:     []PeerConfig{{Name: "client", Key: tp.clientKey.Public(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(clientInner, 32)}}},
	}, otherTUN.TUN())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		other.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		otherTUN.TUN().Close()
	})

	tp.client.SetServer(ServerTarget{
		Name:       "other",
		Key:        otherKey.Public(),
		Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(other.Port())),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
	})
	waitFor(t, "a session with the other server", func() bool {
		s := tp.client.Session()
		return s != nil && s != first && len(other.Sessions()) == 1
	})
	waitFor(t, "the first server's session ended", func() bool { return len(tp.server.Sessions()) == 0 })
	waitFor(t, "a validated path to the other server", func() bool {
		for _, p := range tp.client.Session().Paths() {
			if p.Validated {
				return true
			}
		}
		return false
	})
	ping := tuntest.Ping(serverInner, clientInner)
	tp.clientTUN.Outbound <- ping
	if got := recvPacket(t, fromOther); string(got) != string(ping) {
		t.Fatalf("the other server got % x, want the client's packet", got)
	}
}

// transferWindow is how many packets windowedTransfer keeps in flight each way.
const transferWindow = 16

// transferResult is what windowedTransfer's transfer did: packets received up (at the
// server) and down (at the peer), and why it stopped early ("" if it did not).
type transferResult struct {
	up, down int
	err      string
}

// windowedTransfer moves numbered 200-byte packets both ways between peer p and the server
// (its TUN serverTUN, whose output is fromServer, at inner address serverIP), at most 16 in
// flight each way, each checked to arrive in order within 5 s. It stops after after more
// packets went each way once stop is closed, and sends its result. moved (if not nil) counts
// the packets received, both ways.
func windowedTransfer(p *reloadPeer, serverTUN *tuntest.ChannelTUN, fromServer chan []byte, serverIP netip.Addr, stop <-chan struct{}, after int, moved *atomic.Int64) <-chan transferResult {
	const window = transferWindow
	res := make(chan transferResult, 1)
	go func() {
		var r transferResult
		defer func() { res <- r }()
		countAfter := -1
		for seq := uint32(0); countAfter < after; seq++ {
			p.tun.Outbound <- udpPacket(p.inner, serverIP, seq, 200)
			serverTUN.Outbound <- udpPacket(serverIP, p.inner, seq, 200)
			if seq < window {
				continue
			}
			want := seq - window
			for _, dir := range []struct {
				ch chan []byte
				n  *int
			}{{fromServer, &r.up}, {p.from, &r.down}} {
				select {
				case pkt := <-dir.ch:
					if got := binary.BigEndian.Uint32(pkt[28:32]); got != want {
						r.err = fmt.Sprintf("packet %d arrived, want %d (out of order or lost)", got, want)
						return
					}
					*dir.n++
					if moved != nil {
						moved.Add(1)
					}
				case <-time.After(5 * time.Second):
					r.err = fmt.Sprintf("transfer stalled at packet %d", want)
					return
				}
			}
			select {
			case <-stop:
				countAfter++
			default:
			}
		}
	}()
	return res
}
