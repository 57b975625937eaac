package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/liveness"
	"github.com/bondtun/bondtun/netmon"
	"github.com/bondtun/bondtun/path"
)

// A client's uplinks may be added and removed while it runs (a reload, AddUplink and
// RemoveUplink), without touching the other uplinks' paths. An uplink is a slot, its index
// the uplink id of its paths (id<<4 | server address), fixed for the run. A removed
// uplink's slot is retired: its socket closed, its paths in the current session kept but
// disabled (PATH_STATUS tier 2 tells the server), down and left out of Paths; the next
// session's HELLO does not list it. A new uplink takes the retired slot of its own name (its
// paths come back), else a slot neither the current session nor a HELLO in flight has
// paths of, else a new one. In a
// session whose server announced framing.CapUplinks, the paths of a new id are added on
// both sides: here, and by the server when UPLINKS lists it (docs/PROTOCOL.md §1
// "UPLINKS").

// errNoSlot: all 16 uplink ids are in use by the current session.
var errNoSlot = errors.New("all 16 uplink ids are taken in this session (removed uplinks keep theirs until the next session)")

// isRetired reports whether uplink slot i was removed.
func (c *Client) isRetired(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retired[i]
}

// uplinkList is the uplinks that are not removed, as HELLO and UPLINKS list them.
func (c *Client) uplinkList() []framing.UplinkInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uplinkListLocked()
}

// uplinkListLocked is uplinkList with c.mu held.
func (c *Client) uplinkListLocked() []framing.UplinkInfo {
	var out []framing.UplinkInfo
	for i, u := range c.cfg.Uplinks {
		if !c.retired[i] {
			out = append(out, framing.UplinkInfo{ID: uint8(i), Name: u.Name})
		}
	}
	return out
}

// helloUplinks is uplinkList for a HELLO: until helloDone, its ids are not given to a new
// uplink of another name (freeSlotLocked), since the session it opens will have their paths
// under the names it lists.
func (c *Client) helloUplinks() []framing.UplinkInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.uplinkListLocked()
	c.helloIDs = 0
	for _, u := range list {
		c.helloIDs |= 1 << u.ID
	}
	return list
}

// helloDone ends helloUplinks' hold: the session has the paths, or there is none.
func (c *Client) helloDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.helloIDs = 0
}

// uplinkSpecs is what watchUplinks follows: the slots not removed and their interfaces;
// nil when one of them names no interface.
func (c *Client) uplinkSpecs() (slots []int, specs []netmon.UplinkSpec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, u := range c.cfg.Uplinks {
		if c.retired[i] {
			continue
		}
		if u.Device == "" {
			return nil, nil
		}
		spec := netmon.UplinkSpec{Name: u.Name, Interface: u.Device}
		if !u.FollowAddress {
			spec.Address = u.Source
		}
		slots, specs = append(slots, i), append(specs, spec)
	}
	return slots, specs
}

// AddUplink adds an uplink to the running client: its socket is opened now (or, if its
// interface or address is not there yet, when it appears, as at start) and its paths join
// the current session, validated before they carry data; the other uplinks' paths are not
// touched. The host's policy routing for it must be in place first (tun.Host.AddUplink).
// Before Run, Run starts reading its socket with the others'; after Run returned (or
// Close) it fails.
func (c *Client) AddUplink(u UplinkConfig) error {
	conn, err := c.openUplink(u)
	if err != nil {
		return err
	}
	bound := conn != nil
	if !bound {
		conn = closedTransport{}
	}
	c.mu.Lock()
	slot, err := c.freeSlotLocked(u.Name)
	if err == nil && c.closed {
		err = errors.New("the client is closed")
	}
	if err != nil {
		c.mu.Unlock()
		conn.Close()
		return err
	}
	var old path.Transport
	if slot == len(c.cfg.Uplinks) {
		c.cfg.Uplinks = append(c.cfg.Uplinks, u)
		c.uplinks = append(c.uplinks, conn)
	} else {
		old = c.uplinks[slot]
		c.cfg.Uplinks[slot], c.uplinks[slot] = u, conn
	}
	c.retired[slot], c.bound[slot], c.tiers[slot] = false, bound, u.tier()
	c.gen[slot]++
	if bound {
		c.receiveLocked(conn)
	}
	s := c.sess
	c.mu.Unlock()
	if old != nil {
		old.Close()
	}
	if bound {
		c.log.Info("uplink added", "uplink", u.Name, "source", u.Source)
	} else {
		c.log.Warn("uplink added, not ready; it joins when its interface and address appear", "uplink", u.Name, "interface", u.Device)
	}
	if s != nil {
		c.syncUplinks(s)
	}
	c.uplinksChanged()
	c.wakeUp() // a client without a session tries it now
	return nil
}

// freeSlotLocked picks the slot of a new uplink called name (see the comment at the top).
// c.mu must be held.
func (c *Client) freeSlotLocked(name string) (int, error) {
	for i, u := range c.cfg.Uplinks {
		if u.Name == name {
			if !c.retired[i] {
				return 0, fmt.Errorf("uplink %q exists", name)
			}
			return i, nil
		}
	}
	var used [16]bool
	if c.sess != nil {
		for _, p := range c.sess.pathList() {
			used[p.id>>4] = true
		}
	}
	for i := range used {
		used[i] = used[i] || c.helloIDs&(1<<i) != 0
	}
	for i := range c.cfg.Uplinks {
		if c.retired[i] && !used[i] {
			return i, nil
		}
	}
	if len(c.cfg.Uplinks) < len(c.retired) {
		return len(c.cfg.Uplinks), nil
	}
	return 0, errNoSlot
}

// RemoveUplink removes the uplink called name from the running client: its socket is
// closed and its paths stop carrying data (what was in flight on them is re-sent on the
// others, as for a failed path); the other uplinks' paths are not touched. A control
// channel on it moves to another uplink (RESUME). Removing the last one leaves the client
// without a way out until one is added (a reload that replaces its only uplink removes it,
// then adds the new one).
func (c *Client) RemoveUplink(name string) error {
	c.mu.Lock()
	slot := -1
	for i, u := range c.cfg.Uplinks {
		if !c.retired[i] && u.Name == name {
			slot = i
		}
	}
	if slot < 0 {
		c.mu.Unlock()
		return fmt.Errorf("no uplink %q", name)
	}
	old := c.uplinks[slot]
	c.uplinks[slot] = closedTransport{}
	c.retired[slot], c.bound[slot], c.tiers[slot] = true, false, framing.TierDisabled
	c.gen[slot]++
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		c.syncUplinks(s)
	}
	old.Close()
	c.uplinksChanged()
	c.log.Info("uplink removed", "uplink", name)
	return nil
}

// uplinksChanged tells watchUplinks to follow the new set.
func (c *Client) uplinksChanged() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// syncUplinks brings session s in line with the uplink slots: a removed uplink's paths are
// retired, a returning one's brought back, a new one's added (and the server told).
func (c *Client) syncUplinks(s *Session) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.mu.Lock()
	n := len(c.cfg.Uplinks)
	names := make([]string, n)
	for i, u := range c.cfg.Uplinks {
		names[i] = u.Name
	}
	retired, bound, tiers := c.retired, c.bound, c.tiers
	conns := append([]path.Transport(nil), c.uplinks...)
	c.mu.Unlock()
	var has [16]bool
	for _, p := range s.pathList() {
		has[p.id>>4] = true
	}
	added := false
	for i := range n {
		id, bit := uint8(i), uint32(1)<<i
		switch {
		case retired[i] && has[i] && s.retired.Load()&bit == 0:
			s.retired.Or(bit)
			c.setUplinkPaths(s, id, closedTransport{}, framing.TierDisabled, func(now time.Time, l *liveness.Path) liveness.Transition {
				return l.OnLocalDown(now, "uplink removed")
			})
		case !retired[i] && has[i] && s.retired.Load()&bit != 0:
			s.retired.And(^bit)
			c.setUplinkPaths(s, id, conns[i], tiers[i], func(now time.Time, l *liveness.Path) liveness.Transition {
				if bound[i] {
					return l.OnLocalUp(now)
				}
				return l.OnLocalDown(now, "uplink not ready")
			})
		case !retired[i] && !has[i]:
			if err := s.addUplink(id, names[i]); err != nil {
				c.log.Warn("uplink's paths not added", "uplink", names[i], "err", err)
				continue
			}
			added = true
			if !bound[i] {
				c.setUplinkPaths(s, id, conns[i], tiers[i], func(now time.Time, l *liveness.Path) liveness.Transition {
					return l.OnLocalDown(now, "uplink not ready")
				})
			}
		}
	}
	if added {
		if !s.uplinksCap {
			c.log.Warn("the server cannot add uplinks to a running session; a new uplink carries traffic from the next session on")
		}
		c.sendUplinks(s)
	}
}

// setUplinkPaths gives the paths of uplink id in s the socket conn and tier (telling the
// server), and applies a liveness event to them.
func (c *Client) setUplinkPaths(s *Session, id uint8, conn path.Transport, tier uint8, event func(time.Time, *liveness.Path) liveness.Transition) {
	now := c.now()
	for _, p := range s.pathList() {
		if p.id>>4 != id {
			continue
		}
		p.setTransport(conn)
		p.mu.Lock()
		s.onLiveness(now, p, event(now, p.live))
		p.mu.Unlock()
	}
	s.setUplinkTier(id, tier)
}

// sendUplinks sends UPLINKS on s's control channel, where the server supports it. A failure
// breaks the channel: a TLS connection whose write failed sends nothing more. Its
// connection is closed, so that serveControl returns (with the error, if it serves it
// already) and Run resumes the channel, whose RESUME sends UPLINKS again.
func (c *Client) sendUplinks(s *Session) {
	ctrl := s.ctrl.Load()
	if !s.uplinksCap || ctrl == nil {
		return
	}
	body, err := (&framing.Uplinks{Uplinks: c.uplinkList()}).Append(nil)
	if err == nil {
		ctrl.SetWriteDeadline(ioDeadline(handshakeTimeout))
		err = ctrl.send(framing.CtrlUplinks, body)
	}
	if err != nil {
		c.log.Warn("UPLINKS not sent; sent again after the control channel is resumed", "err", err)
		s.stopControl(ctrl, fmt.Errorf("send UPLINKS: %w", err))
		ctrl.NetConn().Close() // not ctrl.Close, whose close_notify may wait 5 s on a stuck write side
	}
}

// addUplink adds the paths of uplink id, unless s has some already.
func (s *Session) addUplink(id uint8, name string) error {
	if s.newUplinkPaths == nil {
		return errors.New("no paths can be added to this session")
	}
	for _, p := range s.pathList() {
		if p.id>>4 == id {
			return nil
		}
	}
	for _, p := range s.newUplinkPaths(id, name) {
		if err := s.addPath(p); err != nil {
			return err
		}
	}
	s.wakeTimer(s.now()) // the new paths want their first probes
	return nil
}

// onUplinks handles an UPLINKS message (server): the paths of each id it lists that s has
// none of are added.
func (s *Session) onUplinks(msg []byte) error {
	if !s.isServer || !s.uplinksCap {
		return errors.New("unexpected UPLINKS")
	}
	u, err := framing.ParseUplinks(msg)
	if err != nil {
		return fmt.Errorf("bad UPLINKS: %w", err)
	}
	for _, up := range u.Uplinks {
		before := len(s.pathList())
		if err := s.addUplink(up.ID, printable([]byte(up.Name))); err != nil {
			return err
		}
		if len(s.pathList()) > before {
			s.log.Info("uplink added by peer", "peer", s.peerName, "uplink", printable([]byte(up.Name)), "paths", len(s.pathList())-before)
		}
	}
	return nil
}
