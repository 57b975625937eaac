package session

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bondtun/bondtun/crypto"
)

// idleSessions is one server holding n established sessions, one client each (one uplink),
// all in this process over loopback.
type idleSessions struct {
	server  *Server
	clients []*Client
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	tuns    []*memTUN
}

func startIdleSessions(tb testing.TB, n int) *idleSessions {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	is := &idleSessions{cancel: cancel}
	serverKey := newKey(tb)
	keys := make([]crypto.PrivateKey, n)
	var peers []PeerConfig
	for i := range keys {
		keys[i] = newKey(tb)
		inner := netip.AddrFrom4([4]byte{10, 78, byte(i >> 8), byte(i)})
		peers = append(peers, PeerConfig{Name: fmt.Sprint("c", i), Key: keys[i].Public(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(inner, 32)}})
	}
	stun := newMemTUN(serverInner, clientInner, 100, 64)
	is.tuns = append(is.tuns, stun)
	sv, err := NewServer(ServerConfig{Identity: serverKey, Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Peers: peers}, stun)
	if err != nil {
		tb.Fatal(err)
	}
	is.server = sv
	is.wg.Add(1)
	go func() { defer is.wg.Done(); sv.Run(ctx) }()
	for i := range keys {
		ctun := newMemTUN(clientInner, serverInner, 100, 64)
		is.tuns = append(is.tuns, ctun)
		c, err := NewClient(ClientConfig{
			Identity: keys[i], ServerName: "server", ServerKey: serverKey.Public(),
			Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sv.Port())),
			Uplinks:    []UplinkConfig{{Name: "a", Source: netip.MustParseAddr("127.0.0.1")}},
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
		}, ctun)
		if err != nil {
			tb.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			tb.Fatal(err)
		}
		is.clients = append(is.clients, c)
		is.wg.Add(1)
		go func() { defer is.wg.Done(); c.Run(ctx) }()
	}
	tb.Cleanup(is.stop)
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range is.clients {
		for {
			if s := c.Session(); s != nil && len(s.Paths()) == 1 && s.Paths()[0].Usable {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatal("paths did not come up")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return is
}

func (is *idleSessions) stop() {
	is.cancel()
	is.wg.Wait()
	for _, t := range is.tuns {
		t.Close()
	}
}

// sessions lists every session of the process: the server's and the clients'.
func (is *idleSessions) sessions() []*Session {
	out := is.server.Sessions()
	for _, c := range is.clients {
		if s := c.Session(); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// counts sums, over every session, the timer's runs and the datagrams sent.
func (is *idleSessions) counts() (runs, datagrams uint64) {
	for _, s := range is.sessions() {
		if e := s.timer.Load(); e != nil {
			runs += e.Runs()
		}
		for _, p := range s.pathList() {
			p.mu.Lock()
			datagrams += p.pn
			p.mu.Unlock()
		}
	}
	return runs, datagrams
}

// BenchmarkIdleWakeups holds 200 established idle sessions in this process (a server's 200
// sessions and their 200 clients', one path each) and reports how often the timers ran
// (wakeups of the timer queue's callbacks) and how many datagrams were sent, per second,
// in all and per pair of sessions, over 2 s. Run it with -benchtime=1x.
func BenchmarkIdleWakeups(b *testing.B) {
	const n, window = 200, 2 * time.Second
	is := startIdleSessions(b, n)
	time.Sleep(time.Second) // handshakes' and validations' traffic settles
	for b.Loop() {
		r0, d0 := is.counts()
		start := time.Now()
		time.Sleep(window)
		r1, d1 := is.counts()
		secs := time.Since(start).Seconds()
		b.ReportMetric(float64(r1-r0)/secs/n, "wakeups/s/pair")
		b.ReportMetric(float64(r1-r0)/secs, "wakeups/s")
		b.ReportMetric(float64(d1-d0)/secs/n, "datagrams/s/pair")
	}
}
