package session

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"

	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// TestResolveEndpointAtConnect checks the ResolveEndpoint hook: it is asked at every
// connect, a failure fails that connect as a network fault (not a rejection), and its
// answer is where the client connects.
func TestResolveEndpointAtConnect(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tp := &testPair{cancel: cancel}
	tp.clientKey = newKey(t)
	startServer(t, ctx, tp, tp.clientKey.Public())
	defer tp.wg.Wait()
	defer cancel()
	real := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(tp.server.Port()))
	errNoHost := errors.New("lookup vpn.example: no such host")
	var calls atomic.Int32
	ct := tuntest.NewChannelTUN()
	defer ct.TUN().Close()
	c, err := NewClient(ClientConfig{
		Identity:  tp.clientKey,
		ServerKey: tp.serverKey.Public(),
		Uplinks:   []UplinkConfig{{Name: "a", Source: netip.MustParseAddr("127.0.0.1")}},
		ResolveEndpoint: func(context.Context) (netip.AddrPort, error) {
			if calls.Add(1) == 1 {
				return netip.AddrPort{}, errNoHost
			}
			return real, nil
		},
	}, ct.TUN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.closeSockets()
	if err := c.Connect(ctx); !errors.Is(err, errNoHost) || errors.Is(err, ErrRejected) {
		t.Fatalf("first Connect = %v, want the resolver's error, not a rejection", err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("second Connect: %v", err)
	}
	if calls.Load() != 2 {
		t.Errorf("ResolveEndpoint called %d times, want once per connect (2)", calls.Load())
	}
	if s := c.Session(); s == nil {
		t.Fatal("no session after a connect to the resolved endpoint")
	} else {
		c.endSession(s, true)
	}
}
