package tun

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Strict reverse-path filtering (net.ipv4.conf.*.rp_filter=1) drops an IPv4 packet whose
// source the host would not route back out of the interface it came in by. The kernel
// routes that reverse path with the packet's firewall mark only if
// net.ipv4.conf.all.src_valid_mark (or the interface's) is 1, and with mark 0 otherwise.
// A server's tunnel may route a peer's outer address (a peer whose allowed_ips cover its
// own public address, a server routing 0.0.0.0/0 to a peer): the peer's datagrams and
// control segments then come in by an uplink while the unmarked reverse path points into
// the tunnel, and the kernel drops them before any socket sees them. The tunnel's own
// outbound traffic carries tun.fwmark and is routed as if the tunnel were not there
// (table.go); marking what comes in for the server's sockets the same way, and turning on
// src_valid_mark, makes the reverse path the same one. Because the peers open the flows,
// wg-quick's conntrack save and restore (which marks only replies to flows the host
// opened) would miss their first packets: the marks are set statelessly, by port.
//
// A client needs none of it: its path sockets and control connections are bound to the
// uplinks' source addresses, whose policy rules (from SOURCE lookup TABLE, before the
// tunnel's rules) make the reverse path of a reply the uplink it came in by.
//
// This file is the pure half: the plan and its nft script. The table is "ip
// bondtun_DEVICE" (IPv4 only: the kernel's rp_filter is IPv4's; IPv6 has no such sysctl),
// beside the gateway's "inet bondtun_DEVICE", and its comment saves the value of
// src_valid_mark from before, as the gateway's saves the forwarding sysctls
// (statetable.go).

// SysctlSrcValidMark makes the kernel's reverse-path lookup use the packet's mark.
const SysctlSrcValidMark = "net.ipv4.conf.all.src_valid_mark"

// RPFPlan is what a server sets up for strict reverse-path filtering.
type RPFPlan struct {
	Device string // the tunnel device (its real name): packets from it are not marked
	Mark   uint32 // tun.fwmark
	Port   int    // the server's control (TCP) and data (UDP) port
	// Addresses are the server's IPv4 listen addresses; empty means every local address.
	Addresses []netip.Addr
}

// RPFTable is the name of the nftables table (family ip) of the reverse-path marks of
// device: the gateway's name, in the other family.
func RPFTable(device string) string { return GatewayTable(device) }

// Validate reports the first problem that would stop [RPF.Up], without touching the host.
func (p RPFPlan) Validate() error {
	switch {
	case !nftSafeName(p.Device):
		return fmt.Errorf("tun: reverse-path marks: bad device name %q", p.Device)
	case p.Mark == 0:
		return fmt.Errorf("tun: reverse-path marks: no firewall mark")
	case p.Port < 1 || p.Port > 65535:
		return fmt.Errorf("tun: reverse-path marks: port %d out of range", p.Port)
	}
	for _, a := range p.Addresses {
		if !a.Unmap().Is4() {
			return fmt.Errorf("tun: reverse-path marks: %v is not an IPv4 address", a)
		}
	}
	return nil
}

// Script is the nft script (for nft -f -) that replaces the table in one transaction;
// saved goes into its comment. The same plan and saved values give the same text. In
// prerouting at mangle priority (before the routing decision that filters), a packet
// not from the tunnel and not marked by anyone else gets the mark when it is addressed
// to the server (a local address, or one of Addresses) and is
//   - a TCP or UDP packet to Port: the peers' control segments and datagrams;
//   - an ICMP error about a packet from Port (the quoted header's source port, 20 bytes
//     into the quoted IPv4 header of 20, which the server's own packets always have):
//     "fragmentation needed" for the control connection's path MTU discovery, from a
//     router whose address the tunnel may route too.
func (p RPFPlan) Script(saved map[string]string) string {
	var b strings.Builder
	t := RPFTable(p.Device)
	fmt.Fprintf(&b, "add table ip %s\ndelete table ip %s\ntable ip %s {\n", t, t, t)
	fmt.Fprintf(&b, "\tcomment %q\n", rpfKind.comment(p.Device, saved))
	b.WriteString("\tchain prerouting {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n")
	to := "fib daddr type local"
	if len(p.Addresses) > 0 {
		var a []string
		for _, addr := range p.Addresses {
			a = append(a, addr.Unmap().String())
		}
		slices.Sort(a)
		to = "ip daddr { " + strings.Join(slices.Compact(a), ", ") + " }"
	}
	from := "iifname != " + strconv.Quote(p.Device) + " meta mark 0"
	mark := fmt.Sprintf("meta mark set %#x", p.Mark)
	fmt.Fprintf(&b, "\t\t%s meta l4proto { tcp, udp } th dport %d %s %s\n", from, p.Port, to, mark)
	fmt.Fprintf(&b, "\t\t%s icmp type { destination-unreachable, time-exceeded, parameter-problem } @th,224,16 %d %s %s\n",
		from, p.Port, to, mark)
	b.WriteString("\t}\n}\n")
	return b.String()
}

// StrictRPF returns, sorted, the interfaces whose IPv4 reverse-path filter is strict,
// given the rp_filter values of net.ipv4.conf by name ("all", "default", "eth0", ...).
// An interface's filter is the larger of its own value and all's (so all=2 makes every
// one loose); "default" stands for the interfaces that appear later. The loopback and
// the tunnel's device are left out: the kernel does not filter the first, and the
// tunnel's routes are the reverse path of what comes out of the second. Values that are
// not numbers count as 0.
func StrictRPF(conf map[string]string, device string) []string {
	num := func(s string) int {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return 0
		}
		return n
	}
	all := num(conf["all"])
	var out []string
	for name, v := range conf {
		if name == "all" || name == "lo" || name == device {
			continue
		}
		if max(all, num(v)) == 1 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
