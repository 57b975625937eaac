package tun

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The tunnel's own table. A plan with Table and Mark puts the inner routes in Table and adds,
// per family, two rules (docs/DECISIONS.md "The tunnel's routes in a table of its own"):
//
//	32764: not from all fwmark MARK lookup main suppress_prefixlength 0 proto bondtun
//	32765: not from all fwmark MARK lookup TABLE proto bondtun
//
// Traffic without the mark first sees the main table's routes except its default ones,
// then the tunnel's routes, then (32766) the whole main table. Traffic with the mark — the
// tunnel's own outer datagrams and control connections (path.MarkedHost) — skips both rules
// and is routed as if the tunnel were not there, so a tunnel route that covers a peer's
// outer address cannot pull the tunnel's own traffic into the tunnel.
//
// This instance knows its rules by its mark and table. Another instance that uses the same
// table (its routes go through another device) or the same mark (its rule looks the mark up
// into another table) is reported, and its entries are never touched.

// tunnelRules returns the plan's two rules of family (unix.AF_INET or AF_INET6).
func tunnelRules(p Plan, family int) (suppress, lookup *netlink.Rule) {
	suppress = netlink.NewRule()
	suppress.Family = family
	suppress.Invert = true
	suppress.Mark = p.Mark
	suppress.Table = unix.RT_TABLE_MAIN
	suppress.SuppressPrefixlen = 0
	suppress.Priority = TunnelRulePriority
	suppress.Protocol = RTProtBondtun
	lookup = netlink.NewRule()
	lookup.Family = family
	lookup.Invert = true
	lookup.Mark = p.Mark
	lookup.Table = p.Table
	lookup.Priority = TunnelRulePriority + 1
	lookup.Protocol = RTProtBondtun
	return suppress, lookup
}

// ruleFamily is the AF_ value of a netlink family.
func ruleFamily(family int) int {
	if family == netlink.FAMILY_V6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// isTunnelRule reports whether the bondtun-marked rule r is one of p's tunnel rules.
func isTunnelRule(p Plan, r netlink.Rule) bool {
	if r.Protocol != RTProtBondtun || !r.Invert || r.Mark != p.Mark || r.Src != nil || r.Dst != nil {
		return false
	}
	return r.Table == p.Table && r.SuppressPrefixlen < 0 ||
		r.Table == unix.RT_TABLE_MAIN && r.SuppressPrefixlen == 0
}

// tunnelConflict returns why p's table or mark is another's, or nil: a rule marked
// bondtun that looks p's mark up in a third table (another instance uses the mark), any
// other rule into p's table that is not p's, or a route in p's table that does not go
// through the device of index devIndex (0: p's device does not exist, so every route
// there is another's). It looks at both families: a table holds both, so one family's
// routes of another instance make the whole table another's.
func tunnelConflict(nl Netlink, p Plan, devIndex int) error {
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if err := tunnelConflictFamily(nl, family, p, devIndex); err != nil {
			return err
		}
	}
	return nil
}

func tunnelConflictFamily(nl Netlink, family int, p Plan, devIndex int) error {
	rules, err := nl.RuleList(family)
	if err != nil {
		return fmt.Errorf("tun: list rules: %w", err)
	}
	for _, r := range rules {
		switch {
		case isTunnelRule(p, r):
		case r.Protocol == RTProtBondtun && r.Mark == p.Mark && r.Table != p.Table && r.Table != unix.RT_TABLE_MAIN:
			stale, err := staleTunnelRule(nl, p, r)
			if err != nil {
				return err
			}
			if !stale {
				return fmt.Errorf("firewall mark %#x is also used by another bondtun (rule %s); give each instance its own tun.fwmark",
					p.Mark, describeRule(r))
			}
		case r.Table == p.Table:
			return fmt.Errorf("routing table %d is also used by another bondtun or the administrator (rule %s); give each instance its own tun.table",
				p.Table, describeRule(r))
		}
	}
	routes, err := nl.RouteListFiltered(family, &netlink.Route{Table: p.Table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("tun: list routes of table %d: %w", p.Table, err)
	}
	for _, r := range routes {
		if r.Table == p.Table && (devIndex == 0 || r.LinkIndex != devIndex) {
			return fmt.Errorf("routing table %d holds a route not through %s (to %v, %s): another bondtun's or the administrator's; give each instance its own tun.table",
				p.Table, p.Device, r.Dst, describeRoute(r))
		}
	}
	return nil
}

// staleTunnelRule reports whether r, a bondtun rule with p's mark into another table than
// p's, is a leftover: an empty table behind `not fwmark` (this instance's after a crash
// and a change of tun.table, or a crashed instance's that had the same mark). A live
// instance's table holds its routes. (One whose table is empty, a whole-host client between
// sessions with while_down: direct and no other route, cannot be told apart; two instances
// must not share a mark anyway.)
func staleTunnelRule(nl Netlink, p Plan, r netlink.Rule) (bool, error) {
	if r.Protocol != RTProtBondtun || r.Mark != p.Mark || !r.Invert || r.SuppressPrefixlen >= 0 ||
		r.Table == p.Table || r.Table == unix.RT_TABLE_MAIN {
		return false, nil
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := nl.RouteListFiltered(family, &netlink.Route{Table: r.Table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return false, fmt.Errorf("tun: list routes of table %d: %w", r.Table, err)
		}
		for _, rt := range routes {
			if rt.Table == r.Table {
				return false, nil
			}
		}
	}
	return true, nil
}

// describeRule names what identifies a rule: selector, table, preference, protocol.
func describeRule(r netlink.Rule) string {
	s := ""
	if r.Invert {
		s = "not "
	}
	if r.Mark != 0 {
		s += fmt.Sprintf("fwmark %#x ", r.Mark)
	}
	if r.Src != nil {
		s += fmt.Sprintf("from %v ", r.Src)
	}
	s += "lookup " + tableName(r.Table)
	if r.SuppressPrefixlen >= 0 {
		s += fmt.Sprintf(" suppress_prefixlength %d", r.SuppressPrefixlen)
	}
	return s + fmt.Sprintf(" pref %d proto %d", r.Priority, r.Protocol)
}

// addTunnelRules adds p's two rules of each family (the suppressing one first, so the
// main table's specific routes never lose to the tunnel's, even for a moment) and records
// their undo steps. A family the kernel does not have (IPv6 disabled) is skipped when p
// routes nothing of it.
func (h *Host) addTunnelRules(p Plan) error {
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		suppress, lookup := tunnelRules(p, ruleFamily(family))
		for _, r := range []*netlink.Rule{suppress, lookup} {
			err := h.nl.RuleAdd(r)
			if errors.Is(err, unix.EAFNOSUPPORT) && !p.routesFamily(family) {
				h.log.Debug("tun: no rules for a family the kernel lacks", "family", family)
				break
			}
			if err != nil {
				return fmt.Errorf("tun: rule %s: %w", describeRule(*r), err)
			}
			h.record("rule "+describeRule(*r), func() error { return h.nl.RuleDel(r) })
		}
	}
	return nil
}

// routesFamily reports whether p has an inner route of family.
func (p Plan) routesFamily(family int) bool {
	for _, r := range p.Routes {
		if r.Addr().Unmap().Is4() == (family == netlink.FAMILY_V4) {
			return true
		}
	}
	return false
}

// cleanupTunnel removes, for Cleanup, p's tunnel rules and its table's bondtun routes
// through the device of index devIndex, unless the table or the mark is another's
// (tunnelConflict), which is then reported and left alone.
func cleanupTunnel(nl Netlink, p Plan, devIndex int) error {
	if err := tunnelConflict(nl, p, devIndex); err != nil {
		return fmt.Errorf("tun: cleanup: %w; left alone", err)
	}
	var errs []error
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := nl.RuleList(family)
		if err != nil {
			errs = append(errs, fmt.Errorf("tun: cleanup: list rules: %w", err))
			continue
		}
		for _, r := range rules {
			if !isTunnelRule(p, r) {
				stale, err := staleTunnelRule(nl, p, r)
				if err != nil {
					errs = append(errs, err)
				}
				if !stale {
					continue
				}
			}
			if err := nl.RuleDel(&r); err != nil && !isGone(err) {
				errs = append(errs, fmt.Errorf("tun: cleanup: delete rule %s: %w", describeRule(r), err))
			}
		}
		if devIndex != 0 {
			errs = append(errs, cleanupRoutes(nl, family, p.Table, nil, devIndex))
		}
	}
	return errors.Join(errs...)
}
