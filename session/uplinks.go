package session

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/bondtun/bondtun/liveness"
	"github.com/bondtun/bondtun/netmon"
	"github.com/bondtun/bondtun/path"
)

// receiveLocked runs a receive loop on conn until conn is closed, if Run has started the
// receive loops and not yet closed the sockets (before, Run starts it; after, conn is not
// used). c.mu must be held: Run's wg.Wait, after closeSockets, then waits for this loop.
func (c *Client) receiveLocked(conn path.Transport) {
	if !c.started || c.closed {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		routineReceive(conn, c.lookup, &c.counters, c.now)
	}()
}

// watchUplinks follows the uplinks' interfaces with netlink events: an interface that goes
// down or loses its address takes its paths down at once; one that comes back (or gets a new
// address, which means a new socket) brings them back without a restart. It follows the
// uplinks a reload adds or removes (AddUplink, RemoveUplink), and follows none while an
// uplink names no interface (tests on loopback).
func (c *Client) watchUplinks(ctx context.Context) {
	var m *netmon.Monitor
	defer func() {
		if m != nil {
			m.Close()
		}
	}()
	for first := true; ; first = false {
		slots, specs := c.uplinkSpecs()
		if specs == nil {
			select {
			case <-ctx.Done():
				return
			case <-c.changed:
				continue
			}
		}
		if m == nil {
			var err error
			if m, err = netmon.New(c.log); err != nil {
				c.log.Warn("no interface events; uplink changes are noticed only by timeouts", "err", err)
				return
			}
		}
		cfgs := c.uplinkConfigs()
		prev := make([]netmon.UplinkState, len(specs))
		for k, i := range slots {
			prev[k] = netmon.UplinkState{Name: cfgs[i].Name}
			if c.isBound(i) {
				prev[k].Usable, prev[k].Source = true, cfgs[i].Source
			}
		}
		if !first {
			prev = c.uplinkEvents(m, slots, specs, prev) // an uplink added may be there already
		}
		if !c.followUplinks(ctx, m, slots, specs, prev) {
			return
		}
	}
}

// followUplinks applies m's events to the uplinks of slots until ctx ends or m stops
// (false), or the uplinks change (true).
func (c *Client) followUplinks(ctx context.Context, m *netmon.Monitor, slots []int, specs []netmon.UplinkSpec, prev []netmon.UplinkState) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-c.changed:
			return true
		case _, ok := <-m.Events():
			if !ok {
				return false
			}
		}
		prev = c.uplinkEvents(m, slots, specs, prev)
	}
}

// uplinkEvents compares the uplinks' states in m's view with prev, reacts to each change
// and returns the new states.
func (c *Client) uplinkEvents(m *netmon.Monitor, slots []int, specs []netmon.UplinkSpec, prev []netmon.UplinkState) []netmon.UplinkState {
	cur := netmon.Resolve(specs, m.View)
	for k := range cur {
		if cur[k] != prev[k] {
			c.uplinkChanged(slots[k], prev[k], cur[k])
		}
	}
	return cur
}

// uplinkChanged reacts to one uplink's new state.
func (c *Client) uplinkChanged(i int, old, cur netmon.UplinkState) {
	name := c.uplinkConfigs()[i].Name
	if !cur.Usable {
		c.log.Info("uplink down", "uplink", name)
		c.uplinkLive(i, func(now time.Time, l *liveness.Path) liveness.Transition {
			return l.OnLocalDown(now, "interface down or address removed")
		})
		return
	}
	if bound := c.uplinkConfigs()[i].Source; cur.Source != bound || !c.isBound(i) {
		if c.isBound(i) {
			c.log.Info("uplink address changed", "uplink", name, "from", bound, "to", cur.Source)
		} else {
			c.log.Info("uplink appeared", "uplink", name, "source", cur.Source)
		}
		if err := c.rebind(i, cur.Source); err != nil {
			c.log.Warn("uplink rebind failed", "uplink", name, "err", err)
			return
		}
	}
	if c.cfg.OnUplinkChange != nil {
		if err := c.cfg.OnUplinkChange(name, cur.Source); err != nil {
			c.log.Warn("uplink routing not restored; the uplink stays down", "uplink", name, "err", err)
			return
		}
	}
	c.log.Info("uplink up", "uplink", name, "source", cur.Source)
	c.uplinkLive(i, func(now time.Time, l *liveness.Path) liveness.Transition { return l.OnLocalUp(now) })
	c.wakeUp() // a client without a session tries it now
}

// uplinkLive applies a liveness event to every path of uplink i of the current session.
func (c *Client) uplinkLive(i int, event func(time.Time, *liveness.Path) liveness.Transition) {
	s := c.Session()
	if s == nil {
		return
	}
	now := c.now()
	for _, p := range s.pathList() {
		if int(p.id>>4) != i {
			continue
		}
		p.mu.Lock()
		s.onLiveness(now, p, event(now, p.live))
		p.mu.Unlock()
	}
}

// rebind opens a new socket for uplink i bound to src, moves the session's paths of that
// uplink onto it and closes the old one. The server follows the new address as soon as an
// authenticated datagram arrives from it.
func (c *Client) rebind(i int, src netip.Addr) error {
	c.mu.Lock()
	u, gen := c.cfg.Uplinks[i], c.gen[i]
	c.mu.Unlock()
	conn, err := c.net.ListenPacket(path.ListenOptions{Device: u.Device, Addr: netip.AddrPortFrom(src, 0)})
	if err != nil {
		return fmt.Errorf("new socket on %s: %w", src, err)
	}
	c.mu.Lock()
	// Removed meanwhile, maybe with its slot given to another uplink (or to a new one of
	// the same name, on another interface), or Run ended.
	if c.retired[i] || c.gen[i] != gen || c.closed {
		c.mu.Unlock()
		conn.Close()
		return fmt.Errorf("uplink %s was removed", u.Name)
	}
	old := c.uplinks[i]
	c.uplinks[i] = conn
	c.cfg.Uplinks[i].Source = src
	c.bound[i] = true
	c.receiveLocked(conn)
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		for _, p := range s.pathList() {
			if int(p.id>>4) == i {
				p.setTransport(conn)
			}
		}
	}
	old.Close()
	return nil
}
