package tun

import (
	"errors"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RTProtBondtun is the routing protocol number (rtm_protocol, "proto" in
// ip-route(8) and ip-rule(8)) stamped on every route and rule bondtun adds.
// 0xb7 (183) is unassigned in iproute2's rt_protos. [Cleanup] removes only
// entries that carry it.
const RTProtBondtun = 0xb7

// DefaultRulePriority is the preference of the first uplink's policy rule
// when [Plan.RulePriority] is zero. It sits well before the main table's rule
// (32766) so the per-uplink tables win for the uplink source addresses.
const DefaultRulePriority = 10000

// TunnelRulePriority is the preference of the rule "not fwmark MARK lookup main
// suppress_prefixlength 0" of a [Plan] with its own Table; "not fwmark MARK lookup TABLE"
// comes right after it (TunnelRulePriority+1), just before the kernel's "lookup main"
// (32766), as wg-quick places its own (whose rules differ in mark and table, so the two
// coexist). Uplink rules must come before them.
const TunnelRulePriority = 32764

// Netlink is the subset of github.com/vishvananda/netlink that bondtun uses
// to change the host. [SystemNetlink] is the real one; tun/tuntest has a
// recording fake. Methods have the semantics of the netlink package functions
// of the same name.
type Netlink interface {
	LinkByName(name string) (netlink.Link, error)
	LinkSetUp(link netlink.Link) error
	LinkSetDown(link netlink.Link) error
	LinkSetMTU(link netlink.Link, mtu int) error
	LinkDel(link netlink.Link) error
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrAdd(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	RouteAdd(route *netlink.Route) error
	RouteReplace(route *netlink.Route) error
	RouteDel(route *netlink.Route) error
	RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error)
	RuleAdd(rule *netlink.Rule) error
	RuleDel(rule *netlink.Rule) error
	RuleList(family int) ([]netlink.Rule, error)
}

// SystemNetlink returns a [Netlink] that talks to the kernel of the calling
// thread's network namespace. Each call opens its own netlink socket, so it is
// safe for concurrent use.
func SystemNetlink() Netlink { return systemNetlink{} }

// dumpRetries bounds how often a dump interrupted by a concurrent change
// (NLM_F_DUMP_INTR) is retried before its possibly incomplete result is used.
const dumpRetries = 3

// systemNetlink forwards to the netlink package and retries interrupted dumps,
// so callers never act on an inconsistent listing when a retry helps.
type systemNetlink struct{}

func (systemNetlink) LinkByName(name string) (netlink.Link, error)  { return netlink.LinkByName(name) }
func (systemNetlink) LinkSetUp(l netlink.Link) error                { return netlink.LinkSetUp(l) }
func (systemNetlink) LinkSetDown(l netlink.Link) error              { return netlink.LinkSetDown(l) }
func (systemNetlink) LinkSetMTU(l netlink.Link, mtu int) error      { return netlink.LinkSetMTU(l, mtu) }
func (systemNetlink) LinkDel(l netlink.Link) error                  { return netlink.LinkDel(l) }
func (systemNetlink) AddrAdd(l netlink.Link, a *netlink.Addr) error { return netlink.AddrAdd(l, a) }
func (systemNetlink) AddrDel(l netlink.Link, a *netlink.Addr) error { return netlink.AddrDel(l, a) }
func (systemNetlink) RouteAdd(r *netlink.Route) error               { return netlink.RouteAdd(r) }
func (systemNetlink) RouteReplace(r *netlink.Route) error           { return netlink.RouteReplace(r) }
func (systemNetlink) RouteDel(r *netlink.Route) error               { return netlink.RouteDel(r) }
func (systemNetlink) RuleAdd(r *netlink.Rule) error                 { return netlink.RuleAdd(r) }
func (systemNetlink) RuleDel(r *netlink.Rule) error                 { return netlink.RuleDel(r) }

func (systemNetlink) AddrList(l netlink.Link, family int) ([]netlink.Addr, error) {
	return retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(l, family) })
}

func (systemNetlink) RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	return retryDump(func() ([]netlink.Route, error) { return netlink.RouteListFiltered(family, filter, mask) })
}

func (systemNetlink) RuleList(family int) ([]netlink.Rule, error) {
	return retryDump(func() ([]netlink.Rule, error) { return netlink.RuleList(family) })
}

func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	var (
		res []T
		err error
	)
	for range dumpRetries {
		res, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return res, err
		}
	}
	// The last result is usable, only possibly incomplete; callers are
	// idempotent and may be run again.
	return res, nil
}

// isGone reports whether err means the object to remove or change is
// already absent, which removal treats as success.
func isGone(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) ||
		errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) ||
		errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EADDRNOTAVAIL)
}
