package netmon

import (
	"net"
	"net/netip"
	"testing"
)

func TestIPNetPrefix(t *testing.T) {
	tests := []struct {
		n    net.IPNet
		want string // "" for not ok
	}{
		{net.IPNet{IP: net.ParseIP("10.1.2.3"), Mask: net.CIDRMask(24, 32)}, "10.1.2.3/24"},
		{net.IPNet{IP: net.ParseIP("10.1.2.3").To4(), Mask: net.CIDRMask(32, 32)}, "10.1.2.3/32"},
		{net.IPNet{IP: net.ParseIP("10.1.2.3"), Mask: net.CIDRMask(120, 128)}, "10.1.2.3/24"},
		{net.IPNet{IP: net.ParseIP("2001:db8::1"), Mask: net.CIDRMask(64, 128)}, "2001:db8::1/64"},
		{net.IPNet{IP: net.ParseIP("2001:db8::1"), Mask: net.CIDRMask(24, 32)}, ""},
		{net.IPNet{IP: net.IP{1, 2, 3}, Mask: net.CIDRMask(24, 32)}, ""},
		{net.IPNet{IP: net.ParseIP("10.1.2.3"), Mask: net.IPMask{255, 0, 255, 0}}, ""},
	}
	for _, tt := range tests {
		p, ok := ipNetPrefix(tt.n)
		if tt.want == "" {
			if ok {
				t.Errorf("%v: got %v, want not ok", tt.n, p)
			}
			continue
		}
		if !ok || p != netip.MustParsePrefix(tt.want) {
			t.Errorf("%v: got %v %v, want %s", tt.n, p, ok, tt.want)
		}
	}
}

// FuzzIPNetPrefix: any bytes from netlink convert to a valid prefix or are
// rejected, never panic.
func FuzzIPNetPrefix(f *testing.F) {
	f.Add([]byte{10, 1, 2, 3}, []byte{255, 255, 255, 0})
	f.Add([]byte(net.ParseIP("2001:db8::1").To16()), []byte(net.CIDRMask(64, 128)))
	f.Add([]byte(net.ParseIP("10.0.0.1").To16()), []byte(net.CIDRMask(120, 128)))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, ip, mask []byte) {
		p, ok := ipNetPrefix(net.IPNet{IP: ip, Mask: mask})
		if !ok {
			return
		}
		if !p.IsValid() || p.Bits() > p.Addr().BitLen() || p.Addr().Is4In6() {
			t.Fatalf("bad prefix %v from %x/%x", p, ip, mask)
		}
	})
}
