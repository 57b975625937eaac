// Package tuntest provides a recording, stateful fake of [tun.Netlink] so
// that host configuration can be tested without root. Every change is
// rendered as one ip(8)-style line, e.g.
//
//	ip route add default via 10.100.1.1 dev up0 table 7350 proto bondtun
//
// and the fake keeps the resulting links, addresses, routes and rules so
// tests can check what is left behind with [Netlink.Dump].
package tuntest

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/bondtun/bondtun/tun"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Netlink is a fake [tun.Netlink]. The zero value is not usable; call
// [New]. It is not safe for concurrent use.
type Netlink struct {
	// FailAt makes the FailAt-th call (counting every method call from 1,
	// reads included) fail with an injected error and no effect. 0 means
	// never fail.
	FailAt int
	// Calls counts method calls so far.
	Calls int

	ops    []string
	links  []*fakeLink
	routes []netlink.Route
	rules  []netlink.Rule
}

type fakeLink struct {
	attrs netlink.LinkAttrs
	addrs []netlink.Addr
}

// ErrInjected is the error returned by the call selected by FailAt.
var ErrInjected = errors.New("tuntest: injected failure")

var _ tun.Netlink = (*Netlink)(nil)

// New returns an empty fake host.
func New() *Netlink { return &Netlink{} }

// AddLink adds an interface (down, MTU mtu) without recording an operation
// and returns its index.
func (f *Netlink) AddLink(name string, mtu int) int {
	idx := len(f.links) + 1
	for _, l := range f.links {
		idx = max(idx, l.attrs.Index+1)
	}
	f.links = append(f.links, &fakeLink{attrs: netlink.LinkAttrs{Name: name, Index: idx, MTU: mtu}})
	return idx
}

// SetLinkUp marks an interface up without recording an operation (and without
// the kernel's prefix routes; seed those with AddRoute if a test needs them).
func (f *Netlink) SetLinkUp(name string) {
	if l := f.byName(name); l != nil {
		l.attrs.Flags |= net.FlagUp
	}
}

// AddAddr adds an address to an interface without recording an operation.
func (f *Netlink) AddAddr(name string, a netlink.Addr) {
	if l := f.byName(name); l != nil {
		l.addrs = append(l.addrs, a)
	}
}

// AddRoute adds a route without recording an operation.
func (f *Netlink) AddRoute(r netlink.Route) { f.routes = append(f.routes, kernelRoute(r)) }

// AddRule adds a rule without recording an operation.
func (f *Netlink) AddRule(r netlink.Rule) { f.rules = append(f.rules, r) }

// Ops returns the recorded changes, one line each, and forgets them.
func (f *Netlink) Ops() []string {
	ops := f.ops
	f.ops = nil
	return ops
}

// Dump renders the current state (links, addresses, routes, rules), sorted
// within each kind, for comparing "before" and "after".
func (f *Netlink) Dump() string {
	var lines []string
	for _, l := range f.links {
		state := "down"
		if l.attrs.Flags&net.FlagUp != 0 {
			state = "up"
		}
		lines = append(lines, fmt.Sprintf("link %s mtu %d %s", l.attrs.Name, l.attrs.MTU, state))
		for _, a := range l.addrs {
			lines = append(lines, fmt.Sprintf("addr %s dev %s", a.IPNet, l.attrs.Name))
		}
	}
	var rs []string
	for _, r := range f.routes {
		rs = append(rs, f.routeString(&r))
	}
	for _, r := range f.rules {
		rs = append(rs, ruleString(&r))
	}
	slices.Sort(rs)
	return strings.Join(append(lines, rs...), "\n")
}

// call counts a call and reports the injected failure, if this is it.
func (f *Netlink) call() error {
	f.Calls++
	if f.Calls == f.FailAt {
		return fmt.Errorf("%w at call %d", ErrInjected, f.Calls)
	}
	return nil
}

func (f *Netlink) byName(name string) *fakeLink {
	for _, l := range f.links {
		if l.attrs.Name == name {
			return l
		}
	}
	return nil
}

func (f *Netlink) byIndex(idx int) *fakeLink {
	for _, l := range f.links {
		if l.attrs.Index == idx {
			return l
		}
	}
	return nil
}

// lookup resolves a netlink.Link passed by the code under test.
func (f *Netlink) lookup(link netlink.Link) (*fakeLink, error) {
	if l := f.byIndex(link.Attrs().Index); l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("link %q: %w", link.Attrs().Name, unix.ENODEV)
}

// LinkByName implements [tun.Netlink].
func (f *Netlink) LinkByName(name string) (netlink.Link, error) {
	if err := f.call(); err != nil {
		return nil, err
	}
	l := f.byName(name)
	if l == nil {
		return nil, fmt.Errorf("link not found: %q: %w", name, unix.ENODEV)
	}
	return &netlink.Dummy{LinkAttrs: l.attrs}, nil
}

// LinkSetUp implements [tun.Netlink].
func (f *Netlink) LinkSetUp(link netlink.Link) error { return f.setFlag(link, true) }

// LinkSetDown implements [tun.Netlink].
func (f *Netlink) LinkSetDown(link netlink.Link) error { return f.setFlag(link, false) }

func (f *Netlink) setFlag(link netlink.Link, up bool) error {
	if err := f.call(); err != nil {
		return err
	}
	l, err := f.lookup(link)
	if err != nil {
		return err
	}
	if up {
		l.attrs.Flags |= net.FlagUp
		for _, a := range l.addrs {
			f.addPrefixRoute(l, a)
		}
		f.ops = append(f.ops, "ip link set dev "+l.attrs.Name+" up")
	} else {
		l.attrs.Flags &^= net.FlagUp
		// Like the kernel, a link going down loses its IPv4 routes.
		f.routes = slices.DeleteFunc(f.routes, func(r netlink.Route) bool {
			return r.LinkIndex == l.attrs.Index && familyOf(dstIP(&r)) == netlink.FAMILY_V4
		})
		f.ops = append(f.ops, "ip link set dev "+l.attrs.Name+" down")
	}
	return nil
}

// addPrefixRoute adds, as the kernel does for an IPv4 address on an up link, the
// address's prefix route ("proto kernel scope link") to the main table. IPv6 prefix
// routes (metric 256) are not modelled: bondtun's metric-0 routes coexist with them.
func (f *Netlink) addPrefixRoute(l *fakeLink, a netlink.Addr) {
	if l.attrs.Flags&net.FlagUp == 0 || a.IP.To4() == nil {
		return
	}
	if ones, bits := a.Mask.Size(); ones == bits {
		return // a /32 has no prefix route
	}
	dst := &net.IPNet{IP: a.IP.To4().Mask(a.Mask), Mask: a.Mask}
	r := netlink.Route{LinkIndex: l.attrs.Index, Dst: dst, Protocol: unix.RTPROT_KERNEL, Scope: netlink.SCOPE_LINK}
	if f.sameRoute(&r) < 0 {
		f.routes = append(f.routes, r)
	}
}

// delPrefixRoute removes the kernel's prefix route of address a of l, if there is one.
func (f *Netlink) delPrefixRoute(l *fakeLink, a netlink.Addr) {
	f.routes = slices.DeleteFunc(f.routes, func(r netlink.Route) bool {
		return r.LinkIndex == l.attrs.Index && r.Protocol == unix.RTPROT_KERNEL && r.Dst != nil &&
			r.Dst.String() == (&net.IPNet{IP: a.IP.Mask(a.Mask), Mask: a.Mask}).String()
	})
}

// LinkSetMTU implements [tun.Netlink].
func (f *Netlink) LinkSetMTU(link netlink.Link, mtu int) error {
	if err := f.call(); err != nil {
		return err
	}
	l, err := f.lookup(link)
	if err != nil {
		return err
	}
	l.attrs.MTU = mtu
	f.ops = append(f.ops, fmt.Sprintf("ip link set dev %s mtu %d", l.attrs.Name, mtu))
	return nil
}

// LinkDel implements [tun.Netlink]. Like the kernel, it also drops the
// link's addresses and the routes through it.
func (f *Netlink) LinkDel(link netlink.Link) error {
	if err := f.call(); err != nil {
		return err
	}
	l, err := f.lookup(link)
	if err != nil {
		return err
	}
	f.links = slices.DeleteFunc(f.links, func(x *fakeLink) bool { return x == l })
	f.routes = slices.DeleteFunc(f.routes, func(r netlink.Route) bool { return r.LinkIndex == l.attrs.Index })
	f.ops = append(f.ops, "ip link del dev "+l.attrs.Name)
	return nil
}
