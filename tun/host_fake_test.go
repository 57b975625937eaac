package tun_test

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/bondtun/bondtun/tun/tuntest"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newHostFake returns a fake host with the TUN device bt0 and two uplinks,
// up0 and up1, plus the host's own default route, which bondtun must never
// touch.
func newHostFake() *tuntest.Netlink {
	f := tuntest.New()
	f.AddLink("bt0", 1420)
	up0 := f.AddLink("up0", 1500)
	f.AddLink("up1", 1500)
	f.SetLinkUp("up0")
	f.SetLinkUp("up1")
	f.AddRoute(netlink.Route{LinkIndex: up0, Gw: net.ParseIP("10.100.1.1").To4(),
		Dst: mustIPNet("0.0.0.0/0"), Protocol: unix.RTPROT_DHCP})
	return f
}

func mustIPNet(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// hostNet is like mustIPNet but keeps the host part, as an address does.
func hostNet(s string) *net.IPNet {
	p := netip.MustParsePrefix(s)
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

var (
	ip  = netip.MustParseAddr
	pfx = netip.MustParsePrefix
)

// stripMTU drops MTU values from a dump: Up sets the device MTU and Down
// deliberately leaves it.
func stripMTU(dump string) string {
	var out []string
	for _, line := range strings.Split(dump, "\n") {
		if i := strings.Index(line, " mtu "); i >= 0 {
			if j := strings.Index(line[i+5:], " "); j >= 0 {
				line = line[:i] + line[i+5+j:]
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
