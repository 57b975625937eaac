package session

import (
	"net/netip"
	"testing"

	"github.com/bondtun/bondtun/crypto"
)

// BenchmarkSetPeers10000 is a server's share of a reload of 10 000 peers in which one
// peer's allowed_ips changed (scripts/bench-scale.sh measures the whole reload).
func BenchmarkSetPeers10000(b *testing.B) {
	peers := make([]PeerConfig, 10000)
	for i := range peers {
		var k crypto.PublicKey
		k[0], k[1], k[2] = byte(i), byte(i>>8), 1
		a := netip.AddrFrom4([4]byte{10, 64, byte(i / 250), byte(1 + i%250)})
		peers[i] = PeerConfig{Name: "p", Key: k, AllowedIPs: []netip.Prefix{netip.PrefixFrom(a, 32)}}
	}
	table, err := buildPeerTable(peers, nil)
	if err != nil {
		b.Fatal(err)
	}
	sv := &Server{}
	sv.peers.Store(table)
	moved := append([]PeerConfig(nil), peers...)
	moved[0].AllowedIPs = []netip.Prefix{netip.MustParsePrefix("10.126.0.1/32")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		next := peers
		if i%2 == 0 {
			next = moved
		}
		i++
		if ch, err := sv.SetPeers(next); err != nil || len(ch.Changed) != 1 {
			b.Fatalf("%+v, %v", ch, err)
		}
	}
}
