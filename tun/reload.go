package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
)

// addInnerRoute adds "DST dev DEVICE proto bondtun" to the inner routes' table (the
// plan's own, or main) and records its undo step, marked with dst so SetRoutes can find
// it. A route there is this instance's own if it goes through its device: the device is
// this run's, so such a route is a leftover of ours or, in main, the kernel's prefix route
// for the device's own address (proto kernel), which an inner route of the same prefix
// takes over.
func (h *Host) addInnerRoute(dst netip.Prefix, ifindex int) error {
	own := func(r netlink.Route) bool { return r.LinkIndex == ifindex }
	if err := h.installRoute(deviceRoute(dst, ifindex, h.table), own); err != nil {
		return err
	}
	h.undo = append(h.undo, undoStep{inner: dst, ifindex: ifindex})
	return nil
}

// DiffRoutes returns the inner routes, as installed (masked, a default route as two /1
// halves), that going from the routes old to next adds and removes, each sorted.
func DiffRoutes(old, next []netip.Prefix) (add, del []netip.Prefix) {
	// A merge of the two sorted sets rather than two maps: a server of 10 000 peers, one
	// route each, diffs them at every reload.
	was, will := sortedRoutes(old), sortedRoutes(next)
	i, j := 0, 0
	for i < len(was) || j < len(will) {
		c := 0
		switch {
		case i == len(was):
			c = 1
		case j == len(will):
			c = -1
		default:
			c = comparePrefix(was[i], will[j])
		}
		switch {
		case c < 0:
			del = append(del, was[i])
			i++
		case c > 0:
			add = append(add, will[j])
			j++
		default:
			i, j = i+1, j+1
		}
	}
	return add, del
}

// sortedRoutes returns the inner routes of routes as a sorted set.
func sortedRoutes(routes []netip.Prefix) []netip.Prefix {
	r := (Plan{Routes: routes}).innerRoutes()
	if !slices.IsSortedFunc(r, comparePrefix) {
		slices.SortFunc(r, comparePrefix)
	}
	return slices.Compact(r)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// Routes returns the routes of the running plan (Up's, with SetRoutes' changes).
func (h *Host) Routes() []netip.Prefix {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.plan.Routes)
}

// SetRoutes changes the inner routes of a host that is up to routes (a reload): the
// routes new to it are added, then those of the running plan that routes lacks are
// removed; the others are not touched. Only routes this Host made are removed, so a route
// that was there before Up (the kernel's prefix route of the device's address) stays. It
// is all or nothing: if an addition fails, those this call added are removed again, the
// running plan is kept and the error returned. A removal that fails is only logged (the
// route is gone from the plan either way; [Cleanup] finds it by its mark).
func (h *Host) SetRoutes(routes []netip.Prefix) (added, removed int, err error) {
	for _, r := range routes {
		if !r.IsValid() {
			return 0, 0, fmt.Errorf("tun: invalid route %v", r)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up {
		return 0, 0, errors.New("tun: host is not up")
	}
	add, del := DiffRoutes(h.plan.Routes, routes)
	if len(add) == 0 && len(del) == 0 {
		h.plan.Routes = slices.Clone(routes)
		return 0, 0, nil
	}
	dev, err := h.nl.LinkByName(h.plan.Device)
	if err != nil {
		return 0, 0, fmt.Errorf("tun: device %q: %w", h.plan.Device, err)
	}
	ifindex := dev.Attrs().Index
	// The default route's halves are also in h.defaults, and in place only while
	// defaultsOn (SetDefaultRoutes, tun.while_down: direct).
	wasHalf := h.plan.defaultHalves()
	isHalf := (Plan{Routes: routes}).defaultHalves()
	if err := h.addRoutes(add, isHalf, ifindex); err != nil {
		return 0, 0, err
	}
	removed = h.removeRoutes(del)
	h.retypeHalves(wasHalf, isHalf, add, ifindex)
	h.plan.Routes = slices.Clone(routes)
	h.log.Info("tun: routes changed", "device", h.plan.Device, "added", len(add), "removed", removed)
	return len(add), removed, nil
}

// addRoutes adds the inner routes add through device ifindex for SetRoutes: a half of a
// default route (isHalf) joins h.defaults and is put in place only while defaultsOn (its
// undo step is recorded either way). It is all or nothing: if an addition fails, the
// routes it added are removed again and h.undo and h.defaults are as before.
func (h *Host) addRoutes(add []netip.Prefix, isHalf map[netip.Prefix]bool, ifindex int) error {
	mark, defaultsMark := len(h.undo), len(h.defaults)
	for _, dst := range add {
		if isHalf[dst] {
			h.defaults = append(h.defaults, deviceRoute(dst, ifindex, h.table))
			if !h.defaultsOn {
				h.undo = append(h.undo, undoStep{inner: dst, ifindex: ifindex})
				continue
			}
		}
		if err := h.addInnerRoute(dst, ifindex); err != nil {
			err = fmt.Errorf("tun: route %v via %q: %w", dst, h.plan.Device, err)
			return h.undoAdded(err, mark, defaultsMark)
		}
	}
	return nil
}

// undoAdded is addRoutes' failure: it runs the undo steps from mark on, newest first,
// truncates h.undo to mark and h.defaults to defaultsMark, and returns err joined with
// the removals that failed (a route already gone is no failure).
func (h *Host) undoAdded(err error, mark, defaultsMark int) error {
	var errs []error
	for i := len(h.undo) - 1; i >= mark; i-- {
		if uerr := h.undo[i].run(h.nl, h.table); uerr != nil && !isGone(uerr) {
			errs = append(errs, fmt.Errorf("tun: remove %s: %w", h.undo[i].describe(h.table), uerr))
		}
	}
	h.undo = h.undo[:mark]
	h.defaults = h.defaults[:defaultsMark]
	return errors.Join(append([]error{err}, errs...)...)
}

// removeRoutes removes, for SetRoutes, the inner routes of del that this Host made: it
// runs and drops their undo steps (every other undo step stays) and forgets them as
// default halves. A removal that fails is logged, and the route counted as removed all the
// same. It returns how many it removed.
func (h *Host) removeRoutes(del []netip.Prefix) (removed int) {
	gone := make(map[netip.Prefix]bool, len(del))
	for _, r := range del {
		gone[r] = true
	}
	keep := h.undo[:0]
	for _, s := range h.undo {
		if s.fn != nil || !gone[s.inner] {
			keep = append(keep, s)
			continue
		}
		if err := s.run(h.nl, h.table); err != nil && !isGone(err) {
			h.log.Warn("tun: removing a route failed; `bondtun down` removes it", "route", s.describe(h.table), "err", err)
		}
		h.dropDefault(s.inner)
		removed++
	}
	clear(h.undo[len(keep):])
	h.undo = keep
	return removed
}

// dropDefault forgets dst as one of the default route's halves, if it was one.
func (h *Host) dropDefault(dst netip.Prefix) {
	h.defaults = slices.DeleteFunc(h.defaults, func(r *netlink.Route) bool {
		p, _ := prefixOf(r.Dst)
		return p == dst
	})
}

// retypeHalves follows a route that stays but becomes, or stops being, a half of a default
// route (a reload that replaced 0.0.0.0/0 with 0.0.0.0/1, or the reverse): a half is in
// place only while defaultsOn, any other inner route always. Its undo step stays. The
// routes this SetRoutes added are left alone.
func (h *Host) retypeHalves(wasHalf, isHalf map[netip.Prefix]bool, added []netip.Prefix, ifindex int) {
	for _, s := range h.undo {
		if s.fn != nil || wasHalf[s.inner] == isHalf[s.inner] || slices.Contains(added, s.inner) {
			continue
		}
		r := deviceRoute(s.inner, ifindex, h.table)
		var err error
		if isHalf[s.inner] {
			h.defaults = append(h.defaults, r)
			if !h.defaultsOn {
				err = h.nl.RouteDel(r)
			}
		} else {
			h.dropDefault(s.inner)
			if !h.defaultsOn {
				err = h.addRouteOnce(r)
			}
		}
		if err != nil && !isGone(err) {
			h.log.Warn("tun: route not changed", "route", s.describe(h.table), "err", err)
		}
	}
}
