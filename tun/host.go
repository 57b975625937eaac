package tun

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Host applies a [Plan] to the host through a [Netlink] and remembers
// exactly what it added, so [Host.Down] removes that and nothing else.
// A Host is safe for concurrent use; Up and Down are serialized.
type Host struct {
	nl  Netlink
	log *slog.Logger

	mu   sync.Mutex
	up   bool
	plan Plan       // mu; what Up applied, with RefreshUplink's changes
	undo []undoStep // mu; in the order the changes were made
	// installed[i]: uplink i's route and rule are in place (mu). An uplink that was not
	// ready at Up (no address yet, interface missing or down) gets them from RefreshUplink.
	installed []bool
	prios     []int // prios[i]: the preference of uplink i's rule (mu)
	// defaults are the default routes' halves through the device (mu); defaultsOn says
	// whether they are to be in place (SetDefaultRoutes), and is kept when there are none,
	// since a reload may add some (SetRoutes). Their undo steps are in undo like any inner
	// route's, whether they are in place or not: a route already gone counts as removed.
	defaults   []*netlink.Route
	defaultsOn bool
	// table is the inner routes' table (mu): the plan's own, or main (Plan.InnerTable).
	table int
}

// undoStep reverts one change made by Up.
type undoStep struct {
	what string // for logs, e.g. "route 0.0.0.0/1"; empty for an inner route
	fn   func() error
	// An inner route's step is its prefix and device alone, without what and fn: a server
	// of 10 000 peers has as many, and a netlink.Route is 376 bytes (run, describe).
	inner   netip.Prefix
	ifindex int
	uplink  string // the uplink whose route or rule it removes (RemoveUplink); empty: none
}

// run reverts the step; table is the inner routes' table (Host.table).
func (s undoStep) run(nl Netlink, table int) error {
	if s.fn == nil {
		return nl.RouteDel(deviceRoute(s.inner, s.ifindex, table))
	}
	return s.fn()
}

// describe names the step for logs and errors; table is the inner routes' table.
func (s undoStep) describe(table int) string {
	if s.fn == nil {
		return fmt.Sprintf("route %v table %s", s.inner, tableName(table))
	}
	return s.what
}

// NewHost returns a Host that changes the host through nl and logs to log
// (nil means slog.Default()).
func NewHost(nl Netlink, log *slog.Logger) *Host {
	if log == nil {
		log = slog.Default()
	}
	return &Host{nl: nl, log: log}
}

// Up configures the host for p: the device's MTU and addresses, link up,
// the inner routes through the device (in p's own table behind its two tunnel
// rules, or in main: [Plan].Table), and per uplink a default route in the
// uplink's table plus a rule sending the uplink's source address to that
// table. Routes and rules carry [RTProtBondtun].
//
// Up is all or nothing: if any step fails, it undoes the steps already done
// and returns the error, so a bad plan or a host error never leaves a
// half-configured host. An address already present on the device is kept and
// not recorded (Down will not remove it). Up on a Host that is already up
// fails; call Down first. After a crash, run [Cleanup] before Up, since
// leftover rules would make Up fail with "file exists".
func (h *Host) Up(p Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.up {
		return errors.New("tun: host is already up")
	}
	if err := h.apply(p); err != nil {
		if uerr := h.downLocked(); uerr != nil {
			h.log.Error("tun: undo after failed up left changes behind; run cleanup", "err", uerr)
			return fmt.Errorf("%w (undo also failed: %v)", err, uerr)
		}
		return err
	}
	h.up = true
	h.plan = p
	h.plan.Uplinks = append([]UplinkRoute(nil), p.Uplinks...)
	h.log.Info("tun: host configured", "device", p.Device, "addresses", len(p.Addresses),
		"routes", len(p.Routes), "uplinks", len(p.Uplinks))
	return nil
}

// apply makes the changes of Up, recording an undo step after each one.
func (h *Host) apply(p Plan) error {
	// The uplink tables must be this instance's alone before anything changes.
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		shared, err := sharedTables(h.nl, family, p)
		if err != nil {
			return err
		}
		if len(shared) > 0 {
			return fmt.Errorf("tun: %w", shared[0])
		}
	}
	dev, err := h.nl.LinkByName(p.Device)
	if err != nil {
		return fmt.Errorf("tun: device %q: %w", p.Device, err)
	}
	h.table = p.InnerTable()
	if p.Table != 0 { // and the tunnel's table and mark too
		if err := tunnelConflict(h.nl, p, dev.Attrs().Index); err != nil {
			return fmt.Errorf("tun: %w", err)
		}
	}
	if err := h.setUpDevice(dev, p); err != nil {
		return err
	}
	if err := h.addInnerRoutes(p, dev.Attrs().Index); err != nil {
		return err
	}
	if p.Table != 0 {
		if err := h.addTunnelRules(p); err != nil {
			return err
		}
	}
	return h.addUplinks(p)
}

// setUpDevice sets the device's MTU, adds its addresses and sets it up (Up's first steps).
func (h *Host) setUpDevice(dev netlink.Link, p Plan) error {
	// The MTU is a property of bondtun's own device, not a host entry, so
	// it is set but not undone.
	if p.MTU > 0 && dev.Attrs().MTU != p.MTU {
		if err := h.nl.LinkSetMTU(dev, p.MTU); err != nil {
			return fmt.Errorf("tun: set MTU %d on %q: %w", p.MTU, p.Device, err)
		}
	}
	for _, a := range p.Addresses {
		addr := &netlink.Addr{IPNet: ipNet(a)}
		err := h.nl.AddrAdd(dev, addr)
		if errors.Is(err, unix.EEXIST) {
			h.log.Debug("tun: address already present, leaving it", "device", p.Device, "addr", a)
			continue
		}
		if err != nil {
			return fmt.Errorf("tun: add address %v to %q: %w", a, p.Device, err)
		}
		h.record("address "+a.String(), func() error { return h.nl.AddrDel(dev, addr) })
	}
	// The link must be up before routes through it: IPv4 refuses a route
	// via a down device (ENETDOWN).
	if err := h.nl.LinkSetUp(dev); err != nil {
		return fmt.Errorf("tun: set %q up: %w", p.Device, err)
	}
	h.record("link up", func() error { return h.nl.LinkSetDown(dev) })
	return nil
}

// addInnerRoutes adds the inner routes through the device ifindex. It keeps the default
// route's halves for SetDefaultRoutes, which adds them instead when DeferDefault is set.
func (h *Host) addInnerRoutes(p Plan, ifindex int) error {
	halves := p.defaultHalves()
	h.defaults = nil
	h.defaultsOn = !p.DeferDefault
	for _, dst := range p.innerRoutes() {
		if halves[dst] {
			h.defaults = append(h.defaults, deviceRoute(dst, ifindex, h.table))
			if p.DeferDefault { // SetDefaultRoutes adds it; Down removes it if it is there
				h.undo = append(h.undo, undoStep{inner: dst, ifindex: ifindex})
				continue
			}
		}
		if err := h.addInnerRoute(dst, ifindex); err != nil {
			return fmt.Errorf("tun: route %v via %q: %w", dst, p.Device, err)
		}
	}
	return nil
}

// addUplinks installs each uplink's table and rule; an uplink without its address or
// whose interface is missing or down is left for RefreshUplink.
func (h *Host) addUplinks(p Plan) error {
	prio := p.rulePriority()
	h.installed = make([]bool, len(p.Uplinks))
	h.prios = make([]int, len(p.Uplinks))
	for i, u := range p.Uplinks {
		h.prios[i] = prio + i
		if !u.Source.IsValid() {
			h.log.Warn("tun: uplink has no address yet; its routing is installed when it gets one", "uplink", u.Name, "interface", u.Interface)
			continue
		}
		err := h.addUplink(u, prio+i)
		if notReady(err) {
			h.log.Warn("tun: uplink not ready; its routing is installed when it comes up", "uplink", u.Name, "interface", u.Interface, "err", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("tun: uplink %q: %w", u.Name, err)
		}
		h.installed[i] = true
	}
	return nil
}

// notReady reports whether err says an uplink's interface is missing or down: the uplink
// waits for it (RefreshUplink), it is not a configuration error.
func notReady(err error) bool {
	var lnf netlink.LinkNotFoundError
	return err != nil && (errors.As(err, &lnf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENETDOWN) ||
		errors.Is(err, unix.ENETUNREACH))
}

// SetDefaultRoutes installs (on) or removes the routes that send the default route's
// traffic into the device (its two /1 halves), for a whole-host tunnel that lets traffic
// go directly out of the uplinks while it is down (tun.while_down: direct). Routes to the
// other inner destinations stay. Down removes them if they are in place. Up installs them
// unless the plan says DeferDefault.
func (h *Host) SetDefaultRoutes(on bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up {
		return errors.New("tun: host is not up")
	}
	return h.setDefaultsLocked(on)
}

func (h *Host) setDefaultsLocked(on bool) error {
	if on == h.defaultsOn {
		return nil // defaultsOn is kept even without halves: a reload may add some (SetRoutes)
	}
	if on {
		for i, r := range h.defaults {
			if err := h.addRouteOnce(r); err != nil {
				for _, added := range h.defaults[:i] {
					h.nl.RouteDel(added)
				}
				return fmt.Errorf("tun: route %v via %q: %w", r.Dst, h.plan.Device, err)
			}
		}
		h.defaultsOn = true
		return nil
	}
	var errs []error
	for _, r := range h.defaults {
		if err := h.nl.RouteDel(r); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("tun: remove route %v: %w", r.Dst, err))
		}
	}
	h.defaultsOn = false
	return errors.Join(errs...)
}

// addRouteOnce is addRoute for a route already in undo: a route of the same table and
// destination through the device is replaced, any other one is left alone and reported.
func (h *Host) addRouteOnce(r *netlink.Route) error {
	err := h.nl.RouteAdd(r)
	if errors.Is(err, unix.EEXIST) {
		old, found, lerr := findRoute(h.nl, r)
		switch {
		case lerr != nil:
			return lerr
		case found && old.LinkIndex != r.LinkIndex:
			return fmt.Errorf("a route to %v already exists in table %d (%s) and was not made by this bondtun: "+
				"it is left alone; remove it or route another prefix", r.Dst, r.Table, describeRoute(old))
		}
		err = h.nl.RouteReplace(r)
	}
	return err
}

// addUplink installs the uplink's table route, then the rule pointing at it,
// so the rule never selects an empty table.
func (h *Host) addUplink(u UplinkRoute, prio int) error {
	defer h.tagUplink(len(h.undo), u.Name)
	link, err := h.nl.LinkByName(u.Interface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", u.Interface, err)
	}
	if err := h.addRoute(uplinkRoute(u, link.Attrs().Index), ownUplinkRoute); err != nil {
		return fmt.Errorf("default route in table %d: %w", u.Table, err)
	}
	rule := uplinkRule(u, prio)
	if err := h.nl.RuleAdd(rule); err != nil {
		return fmt.Errorf("rule from %v lookup %d: %w", u.Source, u.Table, err)
	}
	h.record(fmt.Sprintf("rule from %v lookup %d", u.Source, u.Table),
		func() error { return h.nl.RuleDel(rule) })
	return nil
}

// ownUplinkRoute reports whether r, found in one of this instance's uplink tables, is its
// own: bondtun's mark is enough there, since Up first makes sure no other bondtun's rule
// points at those tables (sharedTables).
func ownUplinkRoute(r netlink.Route) bool { return r.Protocol == RTProtBondtun }

// addRoute adds r ("ip route add"), so a route the administrator made is never replaced.
// If a route with r's table and destination exists, it is replaced only when own says it
// is this instance's (a leftover of a crash, or its own route being refreshed); otherwise
// addRoute fails naming it.
func (h *Host) addRoute(r *netlink.Route, own func(netlink.Route) bool) error {
	if err := h.installRoute(r, own); err != nil {
		return err
	}
	h.record(fmt.Sprintf("route %v table %d", r.Dst, r.Table), func() error { return h.nl.RouteDel(r) })
	return nil
}

// installRoute is addRoute without the undo step.
func (h *Host) installRoute(r *netlink.Route, own func(netlink.Route) bool) error {
	err := h.nl.RouteAdd(r)
	if errors.Is(err, unix.EEXIST) {
		old, found, lerr := findRoute(h.nl, r)
		switch {
		case lerr != nil:
			return lerr
		case found && !own(old):
			return fmt.Errorf("a route to %v already exists in table %d (%s) and was not made by this bondtun: "+
				"it is left alone; remove it or route another prefix", r.Dst, r.Table, describeRoute(old))
		}
		err = h.nl.RouteReplace(r)
	}
	return err
}

// ip6DefaultMetric is the metric Linux gives an IPv6 route added with none (IP6_RT_PRIO_USER).
const ip6DefaultMetric = 1024

// findRoute returns the route of r's table with r's destination, metric and TOS, if there
// is one: the route an EEXIST from adding r was about (the kernel keys routes on those), so
// a route of the same destination with another metric is never taken for it, nor replaced.
func findRoute(nl Netlink, r *netlink.Route) (netlink.Route, bool, error) {
	dst, _ := prefixOf(r.Dst)
	family := netlink.FAMILY_V6
	if dst.Addr().Is4() {
		family = netlink.FAMILY_V4
	}
	routes, err := nl.RouteListFiltered(family, &netlink.Route{Table: r.Table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return netlink.Route{}, false, fmt.Errorf("list routes of table %d: %w", r.Table, err)
	}
	metric := r.Priority
	if family == netlink.FAMILY_V6 && metric == 0 {
		metric = ip6DefaultMetric // what the kernel gives an IPv6 route added without one
	}
	for _, x := range routes {
		if d, ok := prefixOf(x.Dst); x.Table == r.Table && x.Priority == metric && x.Tos == r.Tos && (ok && d == dst || !ok && dst.Bits() == 0) {
			return x, true, nil
		}
	}
	return netlink.Route{}, false, nil
}

// describeRoute names what identifies a route's owner: its protocol and device index.
func describeRoute(r netlink.Route) string {
	return fmt.Sprintf("proto %d, ifindex %d", r.Protocol, r.LinkIndex)
}

func (h *Host) record(what string, fn func() error) {
	h.undo = append(h.undo, undoStep{what: what, fn: fn})
}

// Down removes what Up added, in reverse order. Entries that are already
// gone (for example routes the kernel flushed with a deleted device) count
// as removed. Down is idempotent: it forgets every step it attempted, so a
// second call does nothing; entries it failed to remove are reported in the
// error and left to [Cleanup].
func (h *Host) Down() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.up = false
	h.defaults, h.defaultsOn, h.installed, h.prios = nil, false, nil, nil
	return h.downLocked()
}

// downLocked runs and clears the undo steps. h.mu must be held.
func (h *Host) downLocked() error {
	var errs []error
	for i := len(h.undo) - 1; i >= 0; i-- {
		s := h.undo[i]
		if err := s.run(h.nl, h.table); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("tun: remove %s: %w", s.describe(h.table), err))
		}
	}
	h.undo = nil
	return errors.Join(errs...)
}

// RefreshUplink re-installs the policy routing of the uplink called name after its
// interface came back (the kernel flushes the routes of a link that goes down) or its
// address changed (DHCP renumbering, a new PPPoE session): the table's default route is
// replaced, and if source differs from the uplink's current source, the rule "from SOURCE" is
// moved to the new address. An uplink that was not ready at Up (no address, interface
// missing or down) gets its route and rule now. What it adds is removed by Down like the
// rest.
func (h *Host) RefreshUplink(name string, source netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up {
		return errors.New("tun: host is not up")
	}
	i := slices.IndexFunc(h.plan.Uplinks, func(u UplinkRoute) bool { return u.Name == name })
	if i < 0 {
		return fmt.Errorf("tun: no uplink %q", name)
	}
	defer h.tagUplink(len(h.undo), name)
	old := h.plan.Uplinks[i]
	u := old
	if source.IsValid() {
		u.Source = source
	}
	if !u.Source.IsValid() {
		return fmt.Errorf("tun: uplink %q: no source address yet", name)
	}
	link, err := h.nl.LinkByName(u.Interface)
	if err != nil {
		return fmt.Errorf("tun: uplink %q: interface %q: %w", name, u.Interface, err)
	}
	if err := h.addRoute(uplinkRoute(u, link.Attrs().Index), ownUplinkRoute); err != nil {
		return fmt.Errorf("tun: uplink %q: default route in table %d: %w", name, u.Table, err)
	}
	if u.Source != old.Source || !h.installed[i] {
		prio := h.prios[i]
		if h.installed[i] {
			if err := h.nl.RuleDel(uplinkRule(old, prio)); err != nil && !isGone(err) {
				return fmt.Errorf("tun: uplink %q: remove rule from %v: %w", name, old.Source, err)
			}
		}
		rule := uplinkRule(u, prio)
		if err := h.nl.RuleAdd(rule); err != nil {
			return fmt.Errorf("tun: uplink %q: rule from %v lookup %d: %w", name, u.Source, u.Table, err)
		}
		h.record(fmt.Sprintf("rule from %v lookup %d", u.Source, u.Table),
			func() error { return h.nl.RuleDel(rule) })
		h.installed[i] = true
	}
	h.plan.Uplinks[i] = u
	h.log.Info("tun: uplink routing refreshed", "uplink", name, "source", u.Source)
	return nil
}
