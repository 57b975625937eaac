package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/tun"
)

// hostReader is the read-only part of tun.Netlink: all that `bondtun check` may use.
type hostReader interface {
	LinkByName(name string) (netlink.Link, error)
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error)
	RuleList(family int) ([]netlink.Rule, error)
}

// checkHost is what the checks see of the host.
type checkHost struct {
	nl       hostReader
	linkName func(index int) string // interface name for route messages
	// rpFilter reads net.ipv4.conf.*.rp_filter, sysctl one sysctl (nil: not checked).
	rpFilter func() (map[string]string, error)
	sysctl   func(name string) (string, error)
}

func systemCheckHost() checkHost {
	return checkHost{nl: tun.SystemNetlink(), linkName: func(i int) string {
		if ifc, err := net.InterfaceByIndex(i); err == nil {
			return ifc.Name
		}
		return fmt.Sprintf("#%d", i)
	}, rpFilter: tun.ReadRPFilter, sysctl: tun.SystemSysctls().Get}
}

// A finding is one problem a check found. An error means `up` would fail or harm the
// host's other routing; a warning, that it may not do what the operator expects, or not
// yet (an uplink that is not there now); a note is neither, only what `up` will change on
// the host beyond the tunnel's own device, rules and routes.
type finding struct {
	warning bool
	note    bool
	err     error // a *config.Error where the finding belongs to a field
}

func problem(err error) finding { return finding{err: err} }
func warning(err error) finding { return finding{warning: true, err: err} }
func note(err error) finding    { return finding{note: true, err: err} }

// checks are what `bondtun check` runs after the file loaded (which already checked its
// syntax, every field and the keys' encoding), in this order. Each only reads: the config,
// files, and the host's links, addresses, routes, rules and control sockets; none creates
// a device, route, rule or listening socket. A new check is one more entry.
var checks = []func(cfg *config.Config, host checkHost) []finding{
	checkKeyFilePermissions,
	checkKeys,
	checkUplinkInterfaces,
	checkUplinkTables,
	checkRoutes,
	checkRunning,
	checkGateway,
	checkRPF,
}

// runChecks runs every check on cfg.
func runChecks(cfg *config.Config, host checkHost) []finding {
	var out []finding
	for _, check := range checks {
		out = append(out, check(cfg, host)...)
	}
	return out
}

func runCheck(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	file, _, err := parseConfigFlags("check", args, stderr)
	if err != nil {
		return err
	}
	if file == "" {
		return usageErr("missing -c FILE")
	}
	// The key is read only once its file's mode passed: LoadPublic first, for every check
	// but the keys', then Load for those.
	cfg, err := config.LoadPublic(file)
	if err != nil {
		return err
	}
	if config.CheckSecretPermissions(cfg) == nil {
		if cfg, err = config.Load(file); err != nil {
			return err
		}
	}
	var errs, warns int
	for _, f := range runChecks(cfg, systemCheckHost()) {
		if f.note {
			fmt.Fprintf(stderr, "note: %v\n", f.err)
			continue
		}
		if f.warning {
			warns++
			fmt.Fprintf(stderr, "warning: %v\n", f.err)
		} else {
			errs++
			fmt.Fprintf(stderr, "error: %v\n", f.err)
		}
	}
	if errs > 0 {
		return fmt.Errorf("%s: %s, %s", cfg.Path, plural(errs, "error"), plural(warns, "warning"))
	}
	fmt.Fprintf(stdout, "%s: ok: %s; public key %s", cfg.Path, describeConfig(cfg), cfg.PrivateKey.Public())
	if warns > 0 {
		fmt.Fprintf(stdout, " (%s)", plural(warns, "warning"))
	}
	fmt.Fprintln(stdout)
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func describeConfig(cfg *config.Config) string {
	if cfg.IsClient() {
		var ups []string
		for _, u := range cfg.Uplinks {
			ups = append(ups, fmt.Sprintf("%s (%s)", u.Name, u.Tier))
		}
		return fmt.Sprintf("client of %s at %s, device %s, uplinks %s", cfg.Peers[0].Name, cfg.Peers[0].EndpointString(), cfg.TUN.Name, strings.Join(ups, ", "))
	}
	return fmt.Sprintf("server on port %d, device %s, %s", cfg.Listen.Port, cfg.TUN.Name, plural(len(cfg.Peers), "peer"))
}

// checkKeyFilePermissions refuses, as `up` does, a private key in a file that group or
// others can read (the YAML holding it inline, or its private_key_file).
func checkKeyFilePermissions(cfg *config.Config, _ checkHost) []finding {
	if err := config.CheckSecretPermissions(cfg); err != nil {
		return []finding{problem(err)}
	}
	return nil
}

// checkKeys builds the TLS configuration `up` builds from the keys (the loader decoded
// them and refused a peer key equal to this side's own).
func checkKeys(cfg *config.Config, _ checkHost) []finding {
	if cfg.SecretFile != "" && cfg.PrivateKey.IsZero() {
		return nil // not read: its file's permissions were refused (checkKeyFilePermissions)
	}
	var err error
	if cfg.IsClient() {
		_, err = crypto.ClientTLSConfig(cfg.PrivateKey, cfg.Peers[0].PublicKey)
	} else {
		keys := make([]crypto.PublicKey, len(cfg.Peers))
		for i, p := range cfg.Peers {
			keys[i] = p.PublicKey
		}
		_, err = crypto.ServerTLSConfig(cfg.PrivateKey, crypto.AuthorizeKeys(keys...))
	}
	if err != nil {
		return []finding{problem(cfg.ErrorAt("private_key", "%v", err))}
	}
	return nil
}

// checkUplinkInterfaces looks up each enabled uplink's interface and address. A missing
// or down interface, or one without the address the uplink needs, is a warning, not an
// error: interfaces come and go (a USB modem, a PPP link made when it dials, a DSL modem
// that syncs after boot), and a check at deploy time should not fail for that: `up` starts
// without such an uplink and it joins when its interface and address appear (docs/DEPLOY.md
// "Boot order and outages"); the warning says so.
func checkUplinkInterfaces(cfg *config.Config, host checkHost) []finding {
	var out []finding
	for i, u := range cfg.Uplinks {
		if u.Tier == config.TierDisabled || u.Interface == "" {
			continue
		}
		field := fmt.Sprintf("uplinks[%d].interface", i)
		link, err := host.nl.LinkByName(u.Interface)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
				out = append(out, warning(cfg.ErrorAt(field, "no interface %q on this host now; `up` runs without this uplink until it appears", u.Interface)))
			} else {
				out = append(out, problem(cfg.ErrorAt(field, "interface %q: %v", u.Interface, err)))
			}
			continue
		}
		if link.Attrs().Flags&net.FlagUp == 0 {
			out = append(out, warning(cfg.ErrorAt(field, "interface %q is down; `up` runs without this uplink until it is up", u.Interface)))
		}
		if !u.Address.IsValid() {
			if _, err := tun.ResolveUplinkSource(readOnly{host.nl}, u.Interface); err != nil {
				out = append(out, warning(cfg.ErrorAt(field, "%v; `up` runs without this uplink until it has one (or set address)", err)))
			}
			continue
		}
		if !hasAddress(host.nl, link, u.Address) {
			out = append(out, warning(cfg.ErrorAt(fmt.Sprintf("uplinks[%d].address", i), "%s is not an address of %q now; `up` runs without this uplink until it is", u.Address, u.Interface)))
		}
	}
	return out
}

func hasAddress(nl hostReader, link netlink.Link, a netip.Addr) bool {
	addrs, err := nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return false
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a.Unmap() {
			return true
		}
	}
	return false
}

// checkUplinkTables looks for routes and rules that another program put in or pointed at
// an uplink's policy routing table or the tunnel's (tun.table) (wg-quick, for one, numbers
// its table 51820 after its port; bondtun's defaults, 7349 and 7350.., keep clear of it,
// but an explicit table or table_base may not). `up` would refuse the tunnel's table and
// replace an uplink table's default route, and the other program's rules would send its
// traffic out of the uplink.
func checkUplinkTables(cfg *config.Config, host checkHost) []finding {
	type table struct {
		field string
		n     int
	}
	tables := []table{{"tun.table", cfg.TUN.Table}}
	if cfg.IsClient() {
		for i, u := range cfg.Uplinks {
			if u.Tier != config.TierDisabled {
				tables = append(tables, table{fmt.Sprintf("uplinks[%d].table", i), u.Table})
			}
		}
	}
	var out []finding
	for _, t := range tables {
		foreign, err := foreignEntries(host, t.n)
		if err != nil {
			out = append(out, problem(cfg.ErrorAt(t.field, "table %d: %v", t.n, err)))
			continue
		}
		if len(foreign) > 0 {
			out = append(out, problem(cfg.ErrorAt(t.field, "table %d is used by another program (%s); choose a free table", t.n, strings.Join(foreign, ", "))))
		}
	}
	return out
}

// foreignEntries lists the routes in table and the rules into it that bondtun did not make.
func foreignEntries(host checkHost, table int) ([]string, error) {
	var foreign []string
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := host.nl.RouteListFiltered(family, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("listing the table: %w", err)
		}
		for _, r := range routes {
			if r.Table == table && r.Protocol != tun.RTProtBondtun {
				foreign = append(foreign, "route "+describeRoute(r, host))
			}
		}
		rules, err := host.nl.RuleList(family)
		if err != nil {
			return nil, fmt.Errorf("listing rules: %w", err)
		}
		for _, r := range rules {
			if r.Table == table && r.Protocol != tun.RTProtBondtun {
				foreign = append(foreign, fmt.Sprintf("rule priority %d", r.Priority))
			}
		}
	}
	return foreign, nil
}

// checkRoutes compares what `up` would route into the tunnel (tun.routes and the peers'
// allowed_ips) and the tunnel's own networks (tun.addresses) with the host's main table,
// ignoring bondtun's own routes. The tunnel's routes live in tun.table, behind the main
// table's routes other than its default ones (tun/table.go), so a host route to the same
// prefix, to one inside it, or to one that covers it (other than a default route) wins
// over the tunnel's for that traffic: a warning each, as is a host network that overlaps
// the tunnel's.
func checkRoutes(cfg *config.Config, host checkHost) []finding {
	type ours struct {
		field  string
		prefix netip.Prefix
	}
	var routed, networks []ours
	for i, r := range cfg.TUN.Routes {
		routed = append(routed, ours{fmt.Sprintf("tun.routes[%d]", i), r.Masked()})
	}
	for i, p := range cfg.Peers {
		for j, r := range p.AllowedIPs {
			routed = append(routed, ours{fmt.Sprintf("peers[%d].allowed_ips[%d]", i, j), r.Masked()})
		}
	}
	for i, a := range cfg.TUN.Addresses {
		networks = append(networks, ours{fmt.Sprintf("tun.addresses[%d]", i), a.Masked()})
	}
	var hostRoutes []netlink.Route
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := host.nl.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return []finding{problem(fmt.Errorf("listing the main routing table: %w", err))}
		}
		hostRoutes = append(hostRoutes, rs...)
	}
	tunnels := tunnelDevices(cfg)
	var out []finding
	for _, r := range hostRoutes {
		dst, ok := routeDst(r)
		if !ok || r.Protocol == tun.RTProtBondtun || dst.Bits() == 0 || tunnels[host.linkName(r.LinkIndex)] {
			continue // default routes are expected to be overridden or kept
		}
		for _, o := range routed {
			switch {
			case o.prefix == dst:
				out = append(out, warning(cfg.ErrorAt(o.field, "the host already routes %s (%s), and the host's route wins: that traffic stays out of the tunnel", dst, describeRoute(r, host))))
			case o.prefix.Bits() > 0 && o.prefix.Bits() < dst.Bits() && o.prefix.Contains(dst.Addr()):
				out = append(out, warning(cfg.ErrorAt(o.field, "the host's more specific route %s (%s) keeps that traffic out of the tunnel", dst, describeRoute(r, host))))
			case dst.Bits() < o.prefix.Bits() && dst.Contains(o.prefix.Addr()):
				out = append(out, warning(cfg.ErrorAt(o.field, "the host's route %s (%s) covers it and wins (the main table's routes other than the default come before the tunnel's): that traffic stays out of the tunnel", dst, describeRoute(r, host))))
			}
		}
		for _, o := range networks {
			if o.prefix.Overlaps(dst) {
				out = append(out, warning(cfg.ErrorAt(o.field, "the tunnel's network %s overlaps the host's %s (%s)", o.prefix, dst, describeRoute(r, host))))
			}
		}
	}
	return out
}

func routeDst(r netlink.Route) (netip.Prefix, bool) {
	if r.Dst == nil {
		return netip.Prefix{}, false // the default route
	}
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits).Masked(), true
}

func describeRoute(r netlink.Route, host checkHost) string {
	var parts []string
	if r.Gw != nil {
		parts = append(parts, "via "+r.Gw.String())
	}
	if r.LinkIndex > 0 {
		parts = append(parts, "dev "+host.linkName(r.LinkIndex))
	}
	parts = append(parts, fmt.Sprintf("proto %d", r.Protocol))
	return strings.Join(parts, " ")
}

// tunnelDevices are the devices of running (or crashed) tunnels of this file, whose
// routes are the tunnel's own.
func tunnelDevices(cfg *config.Config) map[string]bool {
	devs := map[string]bool{cfg.TUN.Name: true}
	socks, _ := listControlSockets(cfg.Path)
	for _, s := range socks {
		devs[s.Device] = true
	}
	return devs
}

// checkRunning reports a running tunnel of this file (in this network namespace), which
// would make `up` refuse to start, and a stale control socket, which `up` removes.
func checkRunning(cfg *config.Config, _ checkHost) []finding {
	socks, err := listControlSockets(cfg.Path)
	if err != nil {
		return nil
	}
	var out []finding
	for _, s := range socks {
		c, err := dialControl(s.Path)
		switch {
		case err == nil:
			pid := peerPID(c)
			c.Close()
			out = append(out, warning(fmt.Errorf("%s: the tunnel of this file is running (pid %d, device %s); `up` refuses to start while it does", cfg.Path, pid, s.Device)))
		case errors.Is(err, errStaleSocket):
			out = append(out, warning(fmt.Errorf("%s: %s is a stale control socket of a crashed run; `up` and `down` remove it", cfg.Path, s.Path)))
		}
	}
	return out
}

// readOnly lets tun's read-only helpers run on a hostReader; every change fails.
type readOnly struct{ hostReader }

var errReadOnly = errors.New("bondtun check changes nothing on the host")

func (readOnly) LinkSetUp(netlink.Link) error              { return errReadOnly }
func (readOnly) LinkSetDown(netlink.Link) error            { return errReadOnly }
func (readOnly) LinkSetMTU(netlink.Link, int) error        { return errReadOnly }
func (readOnly) LinkDel(netlink.Link) error                { return errReadOnly }
func (readOnly) AddrAdd(netlink.Link, *netlink.Addr) error { return errReadOnly }
func (readOnly) AddrDel(netlink.Link, *netlink.Addr) error { return errReadOnly }
func (readOnly) RouteReplace(*netlink.Route) error         { return errReadOnly }
func (readOnly) RouteAdd(*netlink.Route) error             { return errReadOnly }
func (readOnly) RouteDel(*netlink.Route) error             { return errReadOnly }
func (readOnly) RuleAdd(*netlink.Rule) error               { return errReadOnly }
func (readOnly) RuleDel(*netlink.Rule) error               { return errReadOnly }
