package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// UplinkRoute describes one uplink's policy routing: traffic from Source is
// looked up in Table, whose only route is "default [via Gateway] dev
// Interface".
type UplinkRoute struct {
	Name      string     // uplink name, for logs and errors only
	Interface string     // egress interface, e.g. "eth0"
	Source    netip.Addr // the uplink's local address; path sockets bind to it
	Gateway   netip.Addr // next hop; invalid (zero) means on-link (e.g. PPP)
	Table     int        // routing table, unique per uplink, not 0/253/254/255
}

// Plan is everything bondtun configures on one side of the tunnel.
type Plan struct {
	Device    string         // TUN device name (the real one, not a pattern)
	Addresses []netip.Prefix // addresses of the device, e.g. 10.99.0.2/24
	MTU       int            // device MTU; 0 leaves it as created
	// Routes are sent into the device. A default route (0.0.0.0/0 or ::/0)
	// is installed as two /1 halves, so it wins over the host's default
	// route by prefix length without replacing it.
	Routes  []netip.Prefix
	Uplinks []UplinkRoute
	// RulePriority is the preference of the first uplink's rule; uplink i
	// gets RulePriority+i. Zero means DefaultRulePriority.
	RulePriority int
	// DeferDefault: Up leaves out the halves of the default routes among Routes;
	// [Host.SetDefaultRoutes] adds and removes them (a whole-host tunnel that lets
	// traffic go directly out of the uplinks while it is down).
	DeferDefault bool
	// Table, if not 0, is the routing table of this instance's own that holds the inner
	// routes, and Mark the firewall mark of the tunnel's own sockets (path.MarkedHost).
	// Up then adds, per family, "not fwmark Mark lookup main suppress_prefixlength 0"
	// (pref [TunnelRulePriority]) and "not fwmark Mark lookup Table" (the pref after it),
	// so marked traffic never sees the inner routes and the main table's non-default
	// routes win over them (docs/DECISIONS.md "The tunnel's routes in a table of its
	// own"). Both 0: the inner routes go into the main table, without rules.
	Table int
	Mark  uint32
}

// Validate reports the first problem that would stop [Host.Up], without
// touching the host.
func (p Plan) Validate() error {
	if p.Device == "" {
		return errors.New("tun: plan: empty device name")
	}
	if p.MTU < 0 || p.MTU > 65535 {
		return fmt.Errorf("tun: plan: MTU %d out of range", p.MTU)
	}
	for _, a := range p.Addresses {
		if !a.IsValid() {
			return fmt.Errorf("tun: plan: invalid device address %v", a)
		}
	}
	for _, r := range p.Routes {
		if !r.IsValid() {
			return fmt.Errorf("tun: plan: invalid route %v", r)
		}
	}
	prio := p.rulePriority()
	if prio < 1 || prio+len(p.Uplinks) > TunnelRulePriority {
		return fmt.Errorf("tun: plan: rule priorities %d..%d must lie in 1..%d, before the tunnel's rules and the main table",
			prio, prio+len(p.Uplinks)-1, TunnelRulePriority-1)
	}
	switch {
	case (p.Table == 0) != (p.Mark == 0):
		return fmt.Errorf("tun: plan: table %d and mark %#x: both or neither must be set", p.Table, p.Mark)
	case p.Table != 0 && reservedTable(p.Table):
		return fmt.Errorf("tun: plan: table %d is reserved or invalid", p.Table)
	}
	tables := make(map[int]string)
	for _, u := range p.Uplinks {
		if err := u.validate(); err != nil {
			return err
		}
		if other, dup := tables[u.Table]; dup {
			return fmt.Errorf("tun: plan: uplinks %q and %q share table %d", other, u.Name, u.Table)
		}
		if u.Table == p.Table {
			return fmt.Errorf("tun: plan: uplink %q uses table %d, the inner routes' table", u.Name, u.Table)
		}
		tables[u.Table] = u.Name
	}
	return nil
}

func (u UplinkRoute) validate() error {
	switch {
	case u.Interface == "":
		return fmt.Errorf("tun: plan: uplink %q: empty interface", u.Name)
	case u.Source.IsValid() && u.Source.IsUnspecified():
		// An invalid (zero) source is an uplink without an address yet: Up skips it and
		// RefreshUplink installs it when the address appears.
		return fmt.Errorf("tun: plan: uplink %q: invalid source address %v", u.Name, u.Source)
	case u.Gateway.IsValid() && u.Source.IsValid() && u.Gateway.Unmap().Is4() != u.Source.Unmap().Is4():
		return fmt.Errorf("tun: plan: uplink %q: gateway %v and source %v differ in family", u.Name, u.Gateway, u.Source)
	case reservedTable(u.Table):
		return fmt.Errorf("tun: plan: uplink %q: table %d is reserved or invalid", u.Name, u.Table)
	}
	return nil
}

// reservedTable reports whether t cannot be one of bondtun's tables: unspecified (0),
// default, main, local, or out of range.
func reservedTable(t int) bool {
	return t <= 0 || t == unix.RT_TABLE_DEFAULT || t == unix.RT_TABLE_MAIN || t == unix.RT_TABLE_LOCAL || t > 1<<31-1
}

// InnerTable is the table of the inner routes: Table, or main when it is 0.
func (p Plan) InnerTable() int {
	if p.Table == 0 {
		return unix.RT_TABLE_MAIN
	}
	return p.Table
}

// tableName is t as ip-route(8) prints it ("main" for the main table).
func tableName(t int) string {
	if t == unix.RT_TABLE_MAIN {
		return "main"
	}
	return strconv.Itoa(t)
}

func (p Plan) rulePriority() int {
	if p.RulePriority == 0 {
		return DefaultRulePriority
	}
	return p.RulePriority
}

// tables returns the uplink tables of p.
func (p Plan) tables() map[int]bool {
	t := make(map[int]bool, len(p.Uplinks))
	for _, u := range p.Uplinks {
		t[u.Table] = true
	}
	return t
}

// innerRoutes returns p.Routes as installed: masked, with each default route
// split into two /1 halves.
func (p Plan) innerRoutes() []netip.Prefix {
	var out []netip.Prefix
	if len(p.Routes) > 0 {
		out = make([]netip.Prefix, 0, len(p.Routes)+1) // a server may have 10 000 peers' routes
	}
	for _, r := range p.Routes {
		r = r.Masked()
		if r.Bits() != 0 {
			out = append(out, r)
			continue
		}
		if r.Addr().Is4() {
			out = append(out, netip.MustParsePrefix("0.0.0.0/1"), netip.MustParsePrefix("128.0.0.0/1"))
		} else {
			out = append(out, netip.MustParsePrefix("::/1"), netip.MustParsePrefix("8000::/1"))
		}
	}
	return out
}

// defaultHalves returns the /1 halves innerRoutes makes of p's default routes.
func (p Plan) defaultHalves() map[netip.Prefix]bool {
	h := make(map[netip.Prefix]bool)
	for _, r := range p.Routes {
		if r.Bits() != 0 {
			continue
		}
		for _, half := range (Plan{Routes: []netip.Prefix{r}}).innerRoutes() {
			h[half] = true
		}
	}
	return h
}

// deviceRoute is "ip route add DST dev IFINDEX table TABLE proto bondtun".
func deviceRoute(dst netip.Prefix, ifindex, table int) *netlink.Route {
	r := &netlink.Route{
		LinkIndex: ifindex,
		Dst:       ipNet(dst),
		Protocol:  RTProtBondtun,
		Table:     table,
	}
	if dst.Addr().Is4() {
		r.Scope = netlink.SCOPE_LINK // what ip(8) picks for a route without a gateway
	}
	return r
}

// uplinkRoute is "ip route add default [via GW] dev IFINDEX table T
// proto bondtun".
func uplinkRoute(u UplinkRoute, ifindex int) *netlink.Route {
	src := u.Source.Unmap()
	dst := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	if src.Is4() {
		dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	r := &netlink.Route{
		LinkIndex: ifindex,
		Dst:       ipNet(dst),
		Protocol:  RTProtBondtun,
		Table:     u.Table,
	}
	if u.Gateway.IsValid() {
		r.Gw = net.IP(u.Gateway.Unmap().AsSlice())
	} else if src.Is4() {
		r.Scope = netlink.SCOPE_LINK
	}
	return r
}

// uplinkRule is "ip rule add from SRC lookup T pref PRIO proto bondtun".
func uplinkRule(u UplinkRoute, prio int) *netlink.Rule {
	src := u.Source.Unmap()
	r := netlink.NewRule() // not &Rule{}: its zero fields would mean "suppress_prefixlength 0" etc.
	r.Family = unix.AF_INET6
	if src.Is4() {
		r.Family = unix.AF_INET
	}
	r.Src = ipNet(netip.PrefixFrom(src, src.BitLen()))
	r.Table = u.Table
	r.Priority = prio
	r.Protocol = RTProtBondtun
	return r
}

// ipNet converts a prefix to the *net.IPNet netlink wants, with a 4-byte IP
// for IPv4 so netlink picks AF_INET.
func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr().Unmap()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

// prefixOf converts a netlink prefix back; ok is false for nil.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits), true
}
