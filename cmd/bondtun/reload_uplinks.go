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
// session need it, with source src: the file's address, or the one found for the interface
// when the file names only that (invalid: not there yet; it joins when it is).
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
	ch := &uplinkChange{host: host, c: c, was: activeUplinks(cur), will: activeUplinks(next), resolve: resolve, log: log}
	if err := ch.remove(p.UplinksRemoved); err != nil {
		return ch.undoAll(err)
	}
	if err := ch.add(p.UplinksAdded); err != nil {
		return ch.undoAll(err)
	}
	if err := ch.setTiers(p.UplinkTiers); err != nil {
		return ch.undoAll(err)
	}
	return nil
}

// uplinkChange is one applyUplinks under way: the host and the session it changes, the
// active uplinks before (was) and after (will), and the undo steps of what it has done.
type uplinkChange struct {
	host      uplinkHost
	c         uplinkClient
	was, will map[string]config.Uplink
	resolve   func(iface string) netip.Addr // nil: sources are not resolved
	log       *slog.Logger
	undo      []func() error
}

// source is u's source address: the file's, or else the one resolve finds for its
// interface.
func (ch *uplinkChange) source(u config.Uplink) netip.Addr {
	if u.Address.IsValid() || ch.resolve == nil {
		return u.Address
	}
	return ch.resolve(u.Interface)
}

// undoAll undoes what was done, newest first, and returns err joined with the errors of
// the undo steps that failed.
func (ch *uplinkChange) undoAll(err error) error {
	errs := []error{err}
	for i := len(ch.undo) - 1; i >= 0; i-- {
		if uerr := ch.undo[i](); uerr != nil {
			errs = append(errs, uerr)
		}
	}
	return errors.Join(errs...)
}

// remove removes the uplinks names (of cur) from the session, then from the host's
// routing, where a failure is only logged; the undo adds each back to both.
func (ch *uplinkChange) remove(names []string) error {
	for _, name := range names {
		u := ch.was[name]
		if err := ch.c.RemoveUplink(name); err != nil {
			return err
		}
		if err := ch.host.RemoveUplink(name); err != nil {
			ch.log.Warn("reload: uplink's routing not removed", "uplink", name, "err", err)
		}
		ch.undo = append(ch.undo, func() error {
			src := ch.source(u)
			if err := ch.host.AddUplink(uplinkRoute(u, src)); err != nil {
				return err
			}
			return ch.c.AddUplink(uplinkConfig(u, src))
		})
	}
	return nil
}

// add adds the uplinks names (of next) to the host's routing, then to the session; if the
// session refuses one, its routing is removed again. The undo removes each from both.
func (ch *uplinkChange) add(names []string) error {
	for _, name := range names {
		u := ch.will[name]
		src := ch.source(u)
		if err := ch.host.AddUplink(uplinkRoute(u, src)); err != nil {
			return err
		}
		if err := ch.c.AddUplink(uplinkConfig(u, src)); err != nil {
			ch.host.RemoveUplink(name)
			return err
		}
		ch.undo = append(ch.undo, func() error {
			if err := ch.c.RemoveUplink(name); err != nil {
				return err
			}
			return ch.host.RemoveUplink(name)
		})
	}
	return nil
}

// setTiers switches the uplinks names to their tier in next; the undo puts back cur's.
func (ch *uplinkChange) setTiers(names []string) error {
	for _, name := range names {
		if err := ch.c.SetTier(name, sessionTier(ch.will[name])); err != nil {
			return err
		}
		ch.undo = append(ch.undo, func() error { return ch.c.SetTier(name, sessionTier(ch.was[name])) })
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
