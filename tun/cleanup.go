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

// Cleanup removes what a bondtun using p may have left behind after a
// crash, for `bondtun down`: every rule and route marked [RTProtBondtun] that
// points at one of p's uplink tables, bondtun-marked main-table routes to
// p's inner destinations, and the device p.Device if it exists. It never
// touches an entry without bondtun's mark or outside p's tables, so another
// bondtun instance with other tables is left alone. Cleanup is idempotent;
// entries already gone are not errors.
func Cleanup(nl Netlink, p Plan) error {
	var errs []error
	tables := p.tables()
	inner := make(map[netip.Prefix]bool)
	for _, r := range p.innerRoutes() {
		inner[r] = true
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		errs = append(errs, cleanupRules(nl, family, tables))
		for _, t := range slices.Sorted(maps.Keys(tables)) {
			errs = append(errs, cleanupRoutes(nl, family, t, nil))
		}
		errs = append(errs, cleanupRoutes(nl, family, unix.RT_TABLE_MAIN, inner))
	}
	if p.Device != "" {
		errs = append(errs, cleanupDevice(nl, p.Device))
	}
	return errors.Join(errs...)
}

func cleanupRules(nl Netlink, family int, tables map[int]bool) error {
	rules, err := nl.RuleList(family)
	if err != nil {
		return fmt.Errorf("tun: cleanup: list rules: %w", err)
	}
	var errs []error
	for _, r := range rules {
		if r.Protocol != RTProtBondtun || !tables[r.Table] {
			continue
		}
		if err := nl.RuleDel(&r); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("tun: cleanup: delete rule %v: %w", r, err))
		}
	}
	return errors.Join(errs...)
}

// cleanupRoutes deletes bondtun-marked routes of table; when only is
// non-nil, just those whose destination is in it.
func cleanupRoutes(nl Netlink, family, table int, only map[netip.Prefix]bool) error {
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
