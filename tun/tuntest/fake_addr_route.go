package tuntest

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/bondtun/bondtun/tun"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddrList implements [tun.Netlink].
func (f *Netlink) AddrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	if err := f.call(); err != nil {
		return nil, err
	}
	l, err := f.lookup(link)
	if err != nil {
		return nil, err
	}
	var out []netlink.Addr
	for _, a := range l.addrs {
		if family == netlink.FAMILY_ALL || familyOf(a.IP) == family {
			out = append(out, a)
		}
	}
	return out, nil
}

// AddrAdd implements [tun.Netlink]; an existing address gives EEXIST. Like the
// kernel, an IPv4 address on an up link brings its prefix route (proto kernel),
// and AddrDel takes it away again.
func (f *Netlink) AddrAdd(link netlink.Link, addr *netlink.Addr) error {
	if err := f.call(); err != nil {
		return err
	}
	l, err := f.lookup(link)
	if err != nil {
		return err
	}
	if slices.IndexFunc(l.addrs, func(a netlink.Addr) bool { return a.IPNet.String() == addr.IPNet.String() }) >= 0 {
		return fmt.Errorf("addr add %s: %w", addr.IPNet, unix.EEXIST)
	}
	l.addrs = append(l.addrs, *addr)
	f.addPrefixRoute(l, *addr)
	f.ops = append(f.ops, fmt.Sprintf("ip addr add %s dev %s", addr.IPNet, l.attrs.Name))
	return nil
}

// AddrDel implements [tun.Netlink]; a missing address gives EADDRNOTAVAIL.
func (f *Netlink) AddrDel(link netlink.Link, addr *netlink.Addr) error {
	if err := f.call(); err != nil {
		return err
	}
	l, err := f.lookup(link)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(l.addrs, func(a netlink.Addr) bool { return a.IPNet.String() == addr.IPNet.String() })
	if i < 0 {
		return fmt.Errorf("addr del %s: %w", addr.IPNet, unix.EADDRNOTAVAIL)
	}
	f.delPrefixRoute(l, l.addrs[i])
	l.addrs = slices.Delete(l.addrs, i, i+1)
	f.ops = append(f.ops, fmt.Sprintf("ip addr del %s dev %s", addr.IPNet, l.attrs.Name))
	return nil
}

// RouteAdd implements [tun.Netlink]. Like the kernel ("ip route add"), it
// refuses with EEXIST a route whose table, destination, TOS and metric are
// those of an existing route, whoever made it, and refuses an IPv4 route
// through a link that is down.
func (f *Netlink) RouteAdd(r *netlink.Route) error {
	if err := f.call(); err != nil {
		return err
	}
	if err := f.routeLink(r); err != nil {
		return err
	}
	if f.sameRoute(r) >= 0 {
		return fmt.Errorf("route add %s: %w", f.routeString(r), unix.EEXIST)
	}
	f.routes = append(f.routes, kernelRoute(*r))
	f.ops = append(f.ops, "ip "+v6Flag(dstIP(r))+"route add "+f.routeString(r))
	return nil
}

// routeLink checks the link a new route goes through, as the kernel does.
func (f *Netlink) routeLink(r *netlink.Route) error {
	l := f.byIndex(r.LinkIndex)
	if l == nil {
		return fmt.Errorf("route via ifindex %d: %w", r.LinkIndex, unix.ENODEV)
	}
	if l.attrs.Flags&net.FlagUp == 0 && familyOf(dstIP(r)) == netlink.FAMILY_V4 {
		return fmt.Errorf("route via %s: %w", l.attrs.Name, unix.ENETDOWN)
	}
	return nil
}

// sameRoute returns the index of the route the kernel would take for r's key
// (table, destination, TOS, metric), or -1.
func (f *Netlink) sameRoute(r *netlink.Route) int {
	k := kernelRoute(*r)
	return slices.IndexFunc(f.routes, func(x netlink.Route) bool {
		return table(x.Table) == table(k.Table) && dstString(&x) == dstString(&k) &&
			x.Tos == k.Tos && x.Priority == k.Priority
	})
}

// kernelRoute is r as the kernel keeps it: an IPv6 route added without a metric gets
// 1024 (IP6_RT_PRIO_USER), which is what a route listing then shows.
func kernelRoute(r netlink.Route) netlink.Route {
	if r.Priority == 0 && familyOf(dstIP(&r)) == netlink.FAMILY_V6 {
		r.Priority = 1024
	}
	return r
}

// RouteReplace implements [tun.Netlink]. Like the kernel, it replaces a
// route with the same table, destination, TOS and metric (whoever made it),
// and refuses an IPv4 route through a link that is down.
func (f *Netlink) RouteReplace(r *netlink.Route) error {
	if err := f.call(); err != nil {
		return err
	}
	if err := f.routeLink(r); err != nil {
		return err
	}
	i := f.sameRoute(r)
	if i >= 0 {
		f.routes[i] = kernelRoute(*r)
	} else {
		f.routes = append(f.routes, kernelRoute(*r))
	}
	f.ops = append(f.ops, "ip "+v6Flag(dstIP(r))+"route replace "+f.routeString(r))
	return nil
}

// RouteDel implements [tun.Netlink]. Like the kernel, zero fields of r
// match anything; a missing route gives ESRCH.
func (f *Netlink) RouteDel(r *netlink.Route) error {
	if err := f.call(); err != nil {
		return err
	}
	i := slices.IndexFunc(f.routes, func(x netlink.Route) bool {
		return table(x.Table) == table(r.Table) && dstString(&x) == dstString(r) &&
			(r.Protocol == 0 || r.Protocol == x.Protocol) &&
			(r.LinkIndex == 0 || r.LinkIndex == x.LinkIndex) &&
			(r.Gw == nil || r.Gw.Equal(x.Gw))
	})
	if i < 0 {
		return fmt.Errorf("route del %s: %w", f.routeString(r), unix.ESRCH)
	}
	f.routes = slices.Delete(f.routes, i, i+1)
	f.ops = append(f.ops, "ip "+v6Flag(dstIP(r))+"route del "+f.routeString(r))
	return nil
}

// RouteListFiltered implements [tun.Netlink] with the netlink package's
// filter semantics: without RT_FILTER_TABLE only the main table is listed.
func (f *Netlink) RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	if err := f.call(); err != nil {
		return nil, err
	}
	var out []netlink.Route
	for _, r := range f.routes {
		switch {
		case family != netlink.FAMILY_ALL && familyOf(dstIP(&r)) != family:
		case mask&netlink.RT_FILTER_TABLE == 0 && table(r.Table) != unix.RT_TABLE_MAIN:
		case mask&netlink.RT_FILTER_TABLE != 0 && filter.Table != 0 && table(r.Table) != table(filter.Table):
		case mask&netlink.RT_FILTER_PROTOCOL != 0 && r.Protocol != filter.Protocol:
		case mask&netlink.RT_FILTER_OIF != 0 && r.LinkIndex != filter.LinkIndex:
		default:
			r.Table = table(r.Table)
			out = append(out, r)
		}
	}
	return out, nil
}

// RuleAdd implements [tun.Netlink]; an identical rule gives EEXIST.
func (f *Netlink) RuleAdd(r *netlink.Rule) error {
	if err := f.call(); err != nil {
		return err
	}
	if slices.IndexFunc(f.rules, func(x netlink.Rule) bool {
		return ruleString(&x) == ruleString(r) && familyOf(srcIP(&x)) == familyOf(srcIP(r))
	}) >= 0 {
		return fmt.Errorf("rule add %s: %w", ruleString(r), unix.EEXIST)
	}
	f.rules = append(f.rules, *r)
	f.ops = append(f.ops, "ip "+v6Flag(srcIP(r))+"rule add "+ruleString(r))
	return nil
}

// RuleDel implements [tun.Netlink]. Like the kernel, unset fields of r
// match anything and only the first match is deleted; none gives ENOENT.
func (f *Netlink) RuleDel(r *netlink.Rule) error {
	if err := f.call(); err != nil {
		return err
	}
	i := slices.IndexFunc(f.rules, func(x netlink.Rule) bool {
		return familyOf(srcIP(&x)) == familyOf(srcIP(r)) && (r.Priority < 0 || r.Priority == x.Priority) &&
			(r.Table <= 0 || r.Table == x.Table) &&
			(r.Protocol == 0 || r.Protocol == x.Protocol) &&
			(r.Src == nil || x.Src != nil && r.Src.String() == x.Src.String()) &&
			(r.Mark == 0 || r.Mark == x.Mark && r.Invert == x.Invert) &&
			(r.SuppressPrefixlen < 0 || r.SuppressPrefixlen == x.SuppressPrefixlen)
	})
	if i < 0 {
		return fmt.Errorf("rule del %s: %w", ruleString(r), unix.ENOENT)
	}
	f.rules = slices.Delete(f.rules, i, i+1)
	f.ops = append(f.ops, "ip "+v6Flag(srcIP(r))+"rule del "+ruleString(r))
	return nil
}

// RuleList implements [tun.Netlink].
func (f *Netlink) RuleList(family int) ([]netlink.Rule, error) {
	if err := f.call(); err != nil {
		return nil, err
	}
	var out []netlink.Rule
	for _, r := range f.rules {
		if family == netlink.FAMILY_ALL || familyOf(srcIP(&r)) == family {
			out = append(out, r)
		}
	}
	return out, nil
}

// routeString renders r the way ip-route(8) would take it, after the verb.
func (f *Netlink) routeString(r *netlink.Route) string {
	var b strings.Builder
	b.WriteString(dstString(r))
	if r.Gw != nil {
		b.WriteString(" via " + r.Gw.String())
	}
	if l := f.byIndex(r.LinkIndex); l != nil {
		b.WriteString(" dev " + l.attrs.Name)
	} else if r.LinkIndex != 0 {
		b.WriteString(" dev if" + strconv.Itoa(r.LinkIndex))
	}
	if t := table(r.Table); t != unix.RT_TABLE_MAIN {
		b.WriteString(" table " + strconv.Itoa(t))
	}
	if r.Protocol != 0 {
		b.WriteString(" proto " + protoName(int(r.Protocol)))
	}
	return b.String()
}

// ruleString renders r the way ip-rule(8) would take it, after the verb.
func ruleString(r *netlink.Rule) string {
	var b strings.Builder
	if r.Invert {
		b.WriteString("not ")
	}
	b.WriteString("from ")
	if r.Src == nil {
		b.WriteString("all")
	} else if ones, bits := r.Src.Mask.Size(); ones == bits {
		b.WriteString(r.Src.IP.String())
	} else {
		b.WriteString(r.Src.String())
	}
	if r.Mark != 0 {
		b.WriteString(fmt.Sprintf(" fwmark %#x", r.Mark))
	}
	if r.Table == unix.RT_TABLE_MAIN {
		b.WriteString(" lookup main")
	} else if r.Table > 0 {
		b.WriteString(" lookup " + strconv.Itoa(r.Table))
	}
	if r.SuppressPrefixlen >= 0 {
		b.WriteString(" suppress_prefixlength " + strconv.Itoa(r.SuppressPrefixlen))
	}
	if r.Priority >= 0 {
		b.WriteString(" pref " + strconv.Itoa(r.Priority))
	}
	if r.Protocol != 0 {
		b.WriteString(" proto " + protoName(int(r.Protocol)))
	}
	return b.String()
}

func protoName(p int) string {
	switch p {
	case tun.RTProtBondtun:
		return "bondtun"
	case unix.RTPROT_BOOT:
		return "boot"
	case unix.RTPROT_KERNEL:
		return "kernel"
	case unix.RTPROT_STATIC:
		return "static"
	case unix.RTPROT_DHCP:
		return "dhcp"
	}
	return strconv.Itoa(p)
}

func dstString(r *netlink.Route) string {
	if r.Dst == nil {
		return "default"
	}
	if ones, _ := r.Dst.Mask.Size(); ones == 0 {
		return "default"
	}
	return r.Dst.String()
}

func table(t int) int {
	if t == 0 {
		return unix.RT_TABLE_MAIN
	}
	return t
}

func dstIP(r *netlink.Route) net.IP {
	switch {
	case r.Dst != nil:
		return r.Dst.IP
	case r.Gw != nil:
		return r.Gw
	}
	return nil
}

func srcIP(r *netlink.Rule) net.IP {
	if r.Src != nil {
		return r.Src.IP
	}
	if r.Family == unix.AF_INET6 {
		return net.IPv6zero
	}
	return nil
}

func familyOf(ip net.IP) int {
	if ip != nil && ip.To4() == nil {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

func v6Flag(ip net.IP) string {
	if familyOf(ip) == netlink.FAMILY_V6 {
		return "-6 "
	}
	return ""
}
