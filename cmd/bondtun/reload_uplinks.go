package main

import (
	"errors"
	"log/slog"
	"net/netip"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/session"
	"github.com/bondtun/bondtun/tun"
)

// A client's reload adds and removes uplinks by name. An uplink whose interface, address,
// gateway or table changed is removed and added again (its paths start over); one whose
// tier alone changed (primary, backup) is switched in place, as `bondtun tier` does; a
// disabled one counts as absent. Every other uplink is not touched: its socket, routing and
// paths carry on. An uplink's default table follows its index (table_base + i), so
// removing one before others renumbers theirs, which replaces them too: give uplinks an
// explicit `table:` to avoid that (docs/CONFIG.md "What changes at run time").

// activeUplinks is cfg's uplinks that are not disabled, by name.
func activeUplinks(cfg *config.Config) map[string]config.Uplink {
	m := make(map[string]config.Uplink, len(cfg.Uplinks))
	for _, u := range cfg.Uplinks {
		if u.Tier != config.TierDisabled {
			m[u.Name] = u
		}
	}
	return m
}

// diffUplinks lists, in file order, the uplinks going from cur to next adds, removes (a
// changed uplink is both) and switches to another tier.
func diffUplinks(cur, next *config.Config) (added, removed, tiers []string) {
	was, will := activeUplinks(cur), activeUplinks(next)
	for _, u := range cur.Uplinks {
		if _, ok := was[u.Name]; !ok {
			continue
		}
		if n, ok := will[u.Name]; !ok || !sameUplink(u, n) {
			removed = append(removed, u.Name)
		}
	}
	for _, u := range next.Uplinks {
		if _, ok := will[u.Name]; !ok {
			continue
		}
		o, ok := was[u.Name]
		switch {
		case !ok || !sameUplink(o, u):
			added = append(added, u.Name)
		case o.Tier != u.Tier:
			tiers = append(tiers, u.Name)
		}
	}
	return added, removed, tiers
}

// sameUplink reports whether a and b are the same uplink but for their tier.
func sameUplink(a, b config.Uplink) bool {
	return a.Interface == b.Interface && a.Address == b.Address && a.Gateway == b.Gateway && a.Table == b.Table
}

// uplinkHost is the part of tun.Host a reload of the uplinks changes.
type uplinkHost interface {
	AddUplink(u tun.UplinkRoute) error
	RemoveUplink(name string) error
}

// uplinkClient is the part of session.Client a reload of the uplinks changes.
type uplinkClient interface {
	AddUplink(u session.UplinkConfig) error
	RemoveUplink(name string) error
	SetTier(name string, tier uint8) error
}

// uplinkRoute and uplinkConfig are uplink u of a client's file as the host and the
// session need it, with its source resolved by resolve when the file names only the
// interface (invalid: not there yet; it joins when it is).
func uplinkRoute(u config.Uplink, src netip.Addr) tun.UplinkRoute {
	return tun.UplinkRoute{Name: u.Name, Interface: u.Interface, Source: src, Gateway: u.Gateway, Table: u.Table}
}

func uplinkConfig(u config.Uplink, src netip.Addr) session.UplinkConfig {
	return session.UplinkConfig{Name: u.Name, Device: u.Interface, Source: src, Backup: u.Tier == config.TierBackup,
		FollowAddress: !u.Address.IsValid() && u.Interface != ""}
}

// applyUplinks changes the client's uplinks from cur to next as p says: removals first
// (session, then host routing), then additions (host routing, then session), then tiers. It
// is all or nothing: on an error what it did is undone, newest first (a tier goes back to
// cur's), and the error returned. resolve finds an interface's source address.
func applyUplinks(host uplinkHost, c uplinkClient, cur, next *config.Config, p reloadPlan, resolve func(iface string) netip.Addr, log *slog.Logger) error {
	if len(p.UplinksAdded)+len(p.UplinksRemoved)+len(p.UplinkTiers) == 0 {
		return nil
	}
	was, will := activeUplinks(cur), activeUplinks(next)
	source := func(u config.Uplink) netip.Addr {
		if u.Address.IsValid() || resolve == nil {
			return u.Address
		}
		return resolve(u.Interface)
	}
	var undo []func() error
	fail := func(err error) error {
		errs := []error{err}
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				errs = append(errs, uerr)
			}
		}
		return errors.Join(errs...)
	}
	for _, name := range p.UplinksRemoved {
		u := was[name]
		if err := c.RemoveUplink(name); err != nil {
			return fail(err)
		}
		if err := host.RemoveUplink(name); err != nil {
			log.Warn("reload: uplink's routing not removed", "uplink", name, "err", err)
		}
		undo = append(undo, func() error {
			src := source(u)
			if err := host.AddUplink(uplinkRoute(u, src)); err != nil {
				return err
			}
			return c.AddUplink(uplinkConfig(u, src))
		})
	}
	for _, name := range p.UplinksAdded {
		u := will[name]
		src := source(u)
		if err := host.AddUplink(uplinkRoute(u, src)); err != nil {
			return fail(err)
		}
		if err := c.AddUplink(uplinkConfig(u, src)); err != nil {
			host.RemoveUplink(name)
			return fail(err)
		}
		undo = append(undo, func() error {
			if err := c.RemoveUplink(name); err != nil {
				return err
			}
			return host.RemoveUplink(name)
		})
	}
	for _, name := range p.UplinkTiers {
		if err := c.SetTier(name, sessionTier(will[name])); err != nil {
			return fail(err)
		}
		undo = append(undo, func() error { return c.SetTier(name, sessionTier(was[name])) })
	}
	return nil
}

// sessionTier is u's tier as the session numbers it (u is not disabled).
func sessionTier(u config.Uplink) uint8 {
	if u.Tier == config.TierBackup {
		return framing.TierBackup
	}
	return framing.TierPrimary
}
