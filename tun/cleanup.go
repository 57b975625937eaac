package tun

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Cleanup removes what a bondtun using p may have left behind after a crash, for
// `bondtun down` and for `up` before it starts: the rules marked [RTProtBondtun] from
// p's uplink sources into p's uplink tables, the bondtun-marked routes of those tables,
// bondtun-marked main-table routes to p's inner destinations through p.Device, p's two
// tunnel rules (by its mark and table) and the bondtun-marked routes of its table through
// p.Device, and the device p.Device if it exists. The tunnel's rules are left alone, and
// reported, if its table holds a route through another device or another bondtun rule uses
// its mark or table (tun/table.go). This instance is known by its device and its tables; it
// never touches an entry without bondtun's mark, another device's routes, or a rule from
// another source. An uplink table that another bondtun's rule points at (same table, a
// source not in p) is left alone entirely, and reported: two instances must not share
// tables (give each its own table_base). An uplink whose source p does not know (zero)
// claims every bondtun rule into its table. Cleanup is idempotent; entries already gone
// are not errors.
func Cleanup(nl Netlink, p Plan) error {
	var errs []error
	inner := make(map[netip.Prefix]bool)
	for _, r := range p.innerRoutes() {
		inner[r] = true
	}
	devIndex := 0 // routes through a deleted device are gone with it
	if p.Device != "" {
		if link, err := nl.LinkByName(p.Device); err == nil {
			devIndex = link.Attrs().Index
		}
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		tables := p.tables()
		shared, err := sharedTables(nl, family, p)
		if err != nil {
			errs = append(errs, err)
			shared = nil
		}
		for _, e := range shared {
			errs = append(errs, fmt.Errorf("tun: cleanup: %w; left alone", e))
			delete(tables, e.table)
		}
		errs = append(errs, cleanupRules(nl, family, p, tables))
		for _, t := range slices.Sorted(maps.Keys(tables)) {
			errs = append(errs, cleanupRoutes(nl, family, t, nil, 0))
		}
		if devIndex != 0 {
			errs = append(errs, cleanupRoutes(nl, family, unix.RT_TABLE_MAIN, inner, devIndex))
		}
	}
	if p.Table != 0 {
		errs = append(errs, cleanupTunnel(nl, p, devIndex))
	}
	if p.Device != "" {
		errs = append(errs, cleanupDevice(nl, p.Device))
	}
	return errors.Join(errs...)
}

// sharedTableError says that another bondtun's rule points at one of this plan's tables.
type sharedTableError struct {
	table int
	rule  string
}

func (e *sharedTableError) Error() string {
	return fmt.Sprintf("routing table %d is also used by another bondtun (rule %s); give each instance its own table_base", e.table, e.rule)
}

// ownRule reports whether the bondtun-marked rule r belongs to plan p: it points at one of
// p's uplink tables from that uplink's source (or the source is unknown).
func ownRule(p Plan, r netlink.Rule) bool {
	for _, u := range p.Uplinks {
		if u.Table != r.Table {
			continue
		}
		if !u.Source.IsValid() {
			return true
		}
		src, ok := prefixOf(r.Src)
		return ok && src.Addr() == u.Source.Unmap()
	}
	return false
}

// sharedTables lists p's uplink tables that a bondtun rule of another instance points at.
func sharedTables(nl Netlink, family int, p Plan) ([]*sharedTableError, error) {
	rules, err := nl.RuleList(family)
	if err != nil {
		return nil, fmt.Errorf("tun: list rules: %w", err)
	}
	tables := p.tables()
	var shared []*sharedTableError
	seen := make(map[int]bool)
	for _, r := range rules {
		if r.Protocol != RTProtBondtun || !tables[r.Table] || seen[r.Table] || ownRule(p, r) {
			continue
		}
		seen[r.Table] = true
		shared = append(shared, &sharedTableError{table: r.Table, rule: fmt.Sprintf("from %v lookup %d pref %d", r.Src, r.Table, r.Priority)})
	}
	return shared, nil
}

func cleanupRules(nl Netlink, family int, p Plan, tables map[int]bool) error {
	rules, err := nl.RuleList(family)
	if err != nil {
		return fmt.Errorf("tun: cleanup: list rules: %w", err)
	}
	var errs []error
	for _, r := range rules {
		if r.Protocol != RTProtBondtun || !tables[r.Table] || !ownRule(p, r) {
			continue
		}
		if err := nl.RuleDel(&r); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("tun: cleanup: delete rule %v: %w", r, err))
		}
	}
	return errors.Join(errs...)
}

// cleanupRoutes deletes bondtun-marked routes of table; when only is non-nil, just those
// whose destination is in it, and when ifindex is not 0, just those through that device.
func cleanupRoutes(nl Netlink, family, table int, only map[netip.Prefix]bool, ifindex int) error {
	filter := &netlink.Route{Table: table, Protocol: RTProtBondtun}
	routes, err := nl.RouteListFiltered(family, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("tun: cleanup: list routes of table %d: %w", table, err)
	}
	var errs []error
	for _, r := range routes {
		if r.Protocol != RTProtBondtun || r.Table != table {
			continue // belt and braces: never trust a filter to be applied
		}
		if ifindex != 0 && r.LinkIndex != ifindex {
			continue // another device's: another instance's, or the administrator's
		}
		if only != nil {
			dst, ok := prefixOf(r.Dst)
			if !ok || !only[dst] {
				continue
			}
		}
		if err := nl.RouteDel(&r); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("tun: cleanup: delete route %v: %w", r, err))
		}
	}
	return errors.Join(errs...)
}

func cleanupDevice(nl Netlink, name string) error {
	link, err := nl.LinkByName(name)
	if isGone(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tun: cleanup: device %q: %w", name, err)
	}
	if err := nl.LinkDel(link); err != nil && !isGone(err) {
		return fmt.Errorf("tun: cleanup: delete device %q: %w", name, err)
	}
	return nil
}

// ResolveUplinkSource returns the first global IPv4 address of iface, or
// its first global IPv6 address when it has no IPv4 one. Link-local,
// deprecated and tentative addresses are skipped.
func ResolveUplinkSource(nl Netlink, iface string) (netip.Addr, error) {
	link, err := nl.LinkByName(iface)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("tun: uplink interface %q: %w", iface, err)
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		addrs, err := nl.AddrList(link, family)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("tun: addresses of %q: %w", iface, err)
		}
		for _, a := range addrs {
			if p, ok := prefixOf(a.IPNet); ok && usableSource(p.Addr(), a) {
				return p.Addr(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("tun: interface %q has no global address", iface)
}

func usableSource(ip netip.Addr, a netlink.Addr) bool {
	const unusable = unix.IFA_F_TENTATIVE | unix.IFA_F_DEPRECATED | unix.IFA_F_DADFAILED
	return ip.IsGlobalUnicast() && a.Scope == unix.RT_SCOPE_UNIVERSE && a.Flags&unusable == 0
}
