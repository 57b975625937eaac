package tun

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"
)

// tagUplink marks the undo steps from index from on as uplink name's, so RemoveUplink finds
// them. h.mu must be held.
func (h *Host) tagUplink(from int, name string) {
	for i := from; i < len(h.undo); i++ {
		h.undo[i].uplink = name
	}
}

// AddUplink adds an uplink to a host that is up (a reload): its table's default route and
// its rule, with the first rule preference no other uplink of this Host has. An uplink
// whose source is not known yet, or whose interface is missing or down, is added to the
// plan without them: RefreshUplink installs them when it is ready, as for an uplink not
// ready at Up. The other uplinks are not touched. It fails, changing nothing, if the name or
// table is taken, or another bondtun instance's rule points at the table.
func (h *Host) AddUplink(u UplinkRoute) error {
	if err := u.validate(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up {
		return errors.New("tun: host is not up")
	}
	for _, o := range h.plan.Uplinks {
		switch {
		case o.Name == u.Name:
			return fmt.Errorf("tun: uplink %q exists", u.Name)
		case o.Table == u.Table:
			return fmt.Errorf("tun: uplink %q: table %d is uplink %q's", u.Name, u.Table, o.Name)
		}
	}
	if u.Table == h.plan.Table {
		return fmt.Errorf("tun: uplink %q: table %d is the inner routes' table", u.Name, u.Table)
	}
	one := Plan{Uplinks: []UplinkRoute{u}}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		shared, err := sharedTables(h.nl, family, one)
		if err != nil {
			return err
		}
		if len(shared) > 0 {
			return fmt.Errorf("tun: %w", shared[0])
		}
	}
	prio := h.plan.rulePriority()
	for slices.Contains(h.prios, prio) {
		prio++
	}
	if prio >= TunnelRulePriority {
		return fmt.Errorf("tun: uplink %q: no rule preference left before the tunnel's rules and the main table's", u.Name)
	}
	installed := false
	if u.Source.IsValid() {
		mark := len(h.undo)
		err := h.addUplink(u, prio)
		switch {
		case notReady(err):
			h.log.Warn("tun: uplink not ready; its routing is installed when it comes up", "uplink", u.Name, "interface", u.Interface, "err", err)
		case err != nil:
			h.undoUplink(mark, u.Name)
			return fmt.Errorf("tun: uplink %q: %w", u.Name, err)
		default:
			installed = true
		}
		if !installed {
			h.undoUplink(mark, u.Name)
		}
	}
	h.plan.Uplinks = append(h.plan.Uplinks, u)
	h.installed = append(h.installed, installed)
	h.prios = append(h.prios, prio)
	h.log.Info("tun: uplink added", "uplink", u.Name, "table", u.Table, "installed", installed)
	return nil
}

// RemoveUplink removes the uplink called name from a host that is up (a reload): its rule
// and its table's route, and forgets it. The other uplinks are not touched. A removal that
// fails is logged, not returned (the uplink is gone from the plan either way; [Cleanup]
// finds what is left by its mark).
func (h *Host) RemoveUplink(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up {
		return errors.New("tun: host is not up")
	}
	i := slices.IndexFunc(h.plan.Uplinks, func(u UplinkRoute) bool { return u.Name == name })
	if i < 0 {
		return fmt.Errorf("tun: no uplink %q", name)
	}
	h.undoUplink(0, name)
	h.plan.Uplinks = slices.Delete(h.plan.Uplinks, i, i+1)
	h.installed = slices.Delete(h.installed, i, i+1)
	h.prios = slices.Delete(h.prios, i, i+1)
	h.log.Info("tun: uplink removed", "uplink", name)
	return nil
}

// undoUplink runs and drops, newest first, the undo steps from index from on that are
// uplink name's. h.mu must be held.
func (h *Host) undoUplink(from int, name string) {
	for i := len(h.undo) - 1; i >= from; i-- {
		if s := h.undo[i]; s.uplink == name {
			if err := s.run(h.nl, h.table); err != nil && !isGone(err) {
				h.log.Warn("tun: removing an uplink's routing failed; `bondtun down` removes it", "step", s.describe(h.table), "err", err)
			}
			h.undo = slices.Delete(h.undo, i, i+1)
		}
	}
}
