package metrics

import (
	"context"
	"crypto/rand"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/session"
)

var (
	clientInner = netip.MustParseAddr("10.77.0.2")
	serverInner = netip.MustParseAddr("10.77.0.1")
)

// pair is a real server and client over loopback with fake TUNs: the client's uplink
// "a" is a primary, "b" a backup.
type pair struct {
	server               *session.Server
	client               *session.Client
	serverTUN, clientTUN *tuntest.ChannelTUN
	fromServerTUN        chan []byte // packets the server wrote to its TUN
}

func newKey(t *testing.T) crypto.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newPair starts the pair and returns once both client paths answer.
func newPair(t *testing.T) *pair {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	serverKey, clientKey := newKey(t), newKey(t)
	p := &pair{serverTUN: tuntest.NewChannelTUN(), clientTUN: tuntest.NewChannelTUN(), fromServerTUN: make(chan []byte, 1024)}
	go func() {
		for b := range p.serverTUN.Inbound {
			select {
			case p.fromServerTUN <- b:
			default:
			}
		}
	}()
	go func() {
		for range p.clientTUN.Inbound {
		}
	}()
	sv, err := session.NewServer(session.ServerConfig{
		Identity:  serverKey,
		Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Peers:     []session.PeerConfig{{Name: "client", Key: clientKey.Public(), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.2/32")}}},
	}, p.serverTUN.TUN())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.server = sv
	wg.Add(1)
	go func() { defer wg.Done(); sv.Run(ctx) }()
	c, err := session.NewClient(session.ClientConfig{
		Identity:   clientKey,
		ServerName: "server",
		ServerKey:  serverKey.Public(),
		Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sv.Port())),
		Uplinks: []session.UplinkConfig{
			{Name: "a", Source: netip.MustParseAddr("127.0.0.1")},
			{Name: "b", Source: netip.MustParseAddr("127.0.0.2"), Backup: true},
		},
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
	}, p.clientTUN.TUN())
	if err != nil {
		cancel()
		wg.Wait()
		t.Fatal(err)
	}
	p.client = c
	if err := c.Connect(ctx); err != nil {
		cancel()
		wg.Wait()
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		p.clientTUN.TUN().Close()
		p.serverTUN.TUN().Close()
	})
	waitUntil(t, "both client paths up", func() bool {
		s := c.Session()
		if s == nil {
			return false
		}
		n := 0
		for _, pi := range s.Paths() {
			if pi.State == "up" {
				n++
			}
		}
		return n == 2
	})
	return p
}

// pings sends n pings from the client to the server and waits for all of them.
func (p *pair) pings(t *testing.T, n int) {
	t.Helper()
	for range n {
		p.clientTUN.Outbound <- tuntest.Ping(serverInner, clientInner)
	}
	for range n {
		select {
		case <-p.fromServerTUN:
		case <-time.After(5 * time.Second):
			t.Fatal("a ping did not arrive")
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
