package config

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/crypto"
)

// bruteOverlap is the definition anyOverlap must agree with.
func bruteOverlap(peers []Peer) bool {
	for i := range peers {
		for j := 0; j < i; j++ {
			for _, a := range peers[i].AllowedIPs {
				for _, b := range peers[j].AllowedIPs {
					if a.Overlaps(b) {
						return true
					}
				}
			}
		}
	}
	return false
}

func TestAnyOverlapAgreesWithPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randPrefix := func() netip.Prefix {
		if r.IntN(4) == 0 {
			var b [16]byte
			b[0], b[1], b[15] = 0xfd, byte(r.IntN(4)), byte(r.IntN(8))
			return netip.PrefixFrom(netip.AddrFrom16(b), 120+r.IntN(9)).Masked()
		}
		a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(16))})
		return netip.PrefixFrom(a, 22+r.IntN(11)).Masked()
	}
	found := 0
	for n := 0; n < 5000; n++ {
		peers := make([]Peer, 1+r.IntN(5))
		for i := range peers {
			for range 1 + r.IntN(3) {
				peers[i].AllowedIPs = append(peers[i].AllowedIPs, randPrefix())
			}
		}
		want := bruteOverlap(peers)
		if got := anyOverlap(peers); got != want {
			t.Fatalf("anyOverlap = %v, pairs say %v, for %v", got, want, peers)
		}
		if want {
			found++
		}
	}
	if found < 500 || found > 4500 {
		t.Fatalf("%d of 5000 random sets overlap: the test does not exercise both answers", found)
	}
}

// manyPeersYAML is a server file with n peers of one /32 each.
func manyPeersYAML(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nprivate_key: \"dzX6GOvAXtlXf9KUBK6b+vJp9CX3upsRvDlhNjt8DYA=\"\ntun:\n  addresses: [10.64.0.0/10]\nlisten:\n  port: 7350\npeers:\n")
	for i := 0; i < n; i++ {
		k := crypto.PublicKey{byte(i), byte(i >> 8), 1}
		fmt.Fprintf(&b, "  - name: p%06d\n    public_key: %q\n    allowed_ips: [10.64.%d.%d/32]\n", i, k.String(), i/250, 1+i%250)
	}
	return []byte(b.String())
}

// BenchmarkParse10000Peers is the parsing and validation part of a server's reload
// (scripts/bench-scale.sh measures the whole).
func BenchmarkParse10000Peers(b *testing.B) {
	data := manyPeersYAML(10000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("server.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
