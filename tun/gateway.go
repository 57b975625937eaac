package tun

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// A server with a gateway forwards its peers' traffic on to other networks: it turns on
// the kernel's forwarding sysctls and, in an nftables table of its own, masquerades the
// peers' addresses behind the egress interface's, refuses connections opened from
// outside towards masqueraded peers, and clamps the TCP MSS of connections through the
// tunnel to its MTU. This file is the pure half: the plan, the nft script it becomes and
// the parsing of what nft lists; gateway_apply.go runs them.
//
// The table is "inet bondtun_DEVICE": one per instance, found by its device name like the
// instance's routes, and created and deleted whole in one nft transaction. Its comment
// records the sysctl values from before the gateway ("saved net.ipv4.ip_forward=0"), so
// the state lives in the network namespace it belongs to and survives a crash: whoever
// removes the table ([Gateway.Down], [GatewayCleanup] from `down` or the next `up`)
// restores them. A gateway started while another bondtun gateway's table holds saved
// values copies those rather than reading the values that gateway set, and a gateway
// that goes while another that saved the same sysctl remains leaves the sysctl to it: the
// last one restores the values from before the first. The mechanism is shared with the
// reverse-path marks' table (statetable.go).

// GatewayTablePrefix starts the name of every bondtun gateway's nftables table.
const GatewayTablePrefix = "bondtun_"

// The forwarding sysctls, as sysctl(8) names them.
const (
	SysctlForwardIPv4 = "net.ipv4.ip_forward"
	SysctlForwardIPv6 = "net.ipv6.conf.all.forwarding"
)

// GatewayPlan is what a server's gateway sets up.
type GatewayPlan struct {
	Device string // the tunnel device (its real name)
	MTU    int    // the tunnel's MTU, to clamp the MSS of TCP connections through it
	// Out are the egress interfaces; empty means every interface but Device.
	Out []string
	// Forward turns on forwarding per family; NAT masquerades the peers of that family
	// (it implies Forward).
	Forward4, Forward6 bool
	NAT4, NAT6         bool
	// Peers are the peers' allowed_ips: the sources masqueraded.
	Peers []netip.Prefix
}

// GatewayTable is the name of the nftables table (family inet) of the gateway on device.
func GatewayTable(device string) string { return GatewayTablePrefix + device }

// Validate reports the first problem that would stop [Gateway.Up], without touching
// the host. Names go into an nft script, so only interface-name characters are allowed.
func (g GatewayPlan) Validate() error {
	if !nftSafeName(g.Device) {
		return fmt.Errorf("tun: gateway: bad device name %q", g.Device)
	}
	for _, o := range g.Out {
		if !nftSafeName(o) || o == g.Device {
			return fmt.Errorf("tun: gateway: bad egress interface %q", o)
		}
	}
	if !g.Forward4 && !g.Forward6 {
		return fmt.Errorf("tun: gateway: forwards no family")
	}
	if g.NAT4 && !g.Forward4 || g.NAT6 && !g.Forward6 {
		return fmt.Errorf("tun: gateway: NAT of a family that is not forwarded")
	}
	if g.MTU < 0 || g.MTU > 65535 {
		return fmt.Errorf("tun: gateway: MTU %d out of range", g.MTU)
	}
	for _, p := range g.Peers {
		if !p.IsValid() {
			return fmt.Errorf("tun: gateway: invalid peer prefix %v", p)
		}
	}
	return nil
}

// nftSafeName: an interface name (1..15 of A-Z a-z 0-9 _ . -), safe in an nft string.
func nftSafeName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == ""
}

// Sysctls returns the forwarding sysctls the plan turns on.
func (g GatewayPlan) Sysctls() []string {
	var out []string
	if g.Forward4 {
		out = append(out, SysctlForwardIPv4)
	}
	if g.Forward6 {
		out = append(out, SysctlForwardIPv6)
	}
	return out
}

// peers returns the masqueraded peer prefixes of one family, masked and sorted.
func (g GatewayPlan) peers(v4 bool) []string {
	var out []string
	for _, p := range g.Peers {
		if p.Addr().Is4() == v4 {
			out = append(out, p.Masked().String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Script is the nft script (for nft -f -) that replaces the gateway's table in one
// transaction; saved goes into its comment. The same plan and saved values give the same
// text.
func (g GatewayPlan) Script(saved map[string]string) string {
	var b strings.Builder
	t := GatewayTable(g.Device)
	dev := strconv.Quote(g.Device)
	// "add" then "delete" then the table: in one transaction, whether or not it existed.
	fmt.Fprintf(&b, "add table inet %s\ndelete table inet %s\ntable inet %s {\n", t, t, t)
	fmt.Fprintf(&b, "\tcomment %q\n", gatewayKind.comment(g.Device, saved))
	out := "oifname != " + dev
	in := "iifname != " + dev
	if len(g.Out) > 0 {
		var q []string
		for _, o := range g.Out {
			q = append(q, strconv.Quote(o))
		}
		set := "{ " + strings.Join(q, ", ") + " }"
		out, in = "oifname "+set, "iifname "+set
	}
	type fam struct {
		on, nat     bool
		name, ip    string
		set, addr   string
		headerBytes int
	}
	fams := []fam{
		{g.Forward4, g.NAT4, "ipv4", "ip", "peers4", "ipv4_addr", 40},
		{g.Forward6, g.NAT6, "ipv6", "ip6", "peers6", "ipv6_addr", 60},
	}
	for _, f := range fams {
		if ps := g.peers(f.name == "ipv4"); f.nat && len(ps) > 0 {
			fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\telements = { %s }\n\t}\n", f.set, f.addr, strings.Join(ps, ", "))
		}
	}
	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n")
	const syn = "tcp flags & (syn | rst) == syn"
	fmt.Fprintf(&b, "\t\toifname %s %s tcp option maxseg size set rt mtu\n", dev, syn)
	for _, f := range fams {
		if f.on && g.MTU > f.headerBytes {
			mss := g.MTU - f.headerBytes
			fmt.Fprintf(&b, "\t\tiifname %s meta nfproto %s %s tcp option maxseg size > %d tcp option maxseg size set %d\n", dev, f.name, syn, mss, mss)
		}
	}
	for _, f := range fams {
		if f.nat {
			fmt.Fprintf(&b, "\t\t%s oifname %s meta nfproto %s ct state != { established, related } drop\n", in, dev, f.name)
		}
	}
	b.WriteString("\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	for _, f := range fams {
		if f.nat && len(g.peers(f.name == "ipv4")) > 0 {
			fmt.Fprintf(&b, "\t\t%s saddr @%s %s masquerade\n", f.ip, f.set, out)
		}
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}
