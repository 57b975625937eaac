package tuntest

import (
	"errors"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestFakeErrors checks the kernel-like errors that tun.Host relies on to
// tell "already there" and "already gone" from real failures.
func TestFakeErrors(t *testing.T) {
	_, dst, _ := net.ParseCIDR("10.0.0.0/8")
	tests := []struct {
		name string
		op   func(f *Netlink, l netlink.Link) error
		want error
	}{
		{name: "route via down link", want: unix.ENETDOWN, op: func(f *Netlink, l netlink.Link) error {
			return f.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst})
		}},
		{name: "add over an existing route", want: unix.EEXIST, op: func(f *Netlink, l netlink.Link) error {
			if err := f.LinkSetUp(l); err != nil {
				return err
			}
			f.AddRoute(netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Protocol: unix.RTPROT_STATIC})
			return f.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Protocol: 0xb7})
		}},
		{name: "add via down link", want: unix.ENETDOWN, op: func(f *Netlink, l netlink.Link) error {
			return f.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst})
		}},
		{name: "delete missing route", want: unix.ESRCH, op: func(f *Netlink, l netlink.Link) error {
			return f.RouteDel(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst})
		}},
		{name: "duplicate address", want: unix.EEXIST, op: func(f *Netlink, l netlink.Link) error {
			a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 1, 1, 1).To4(), Mask: net.CIDRMask(24, 32)}}
			if err := f.AddrAdd(l, a); err != nil {
				return err
			}
			return f.AddrAdd(l, a)
		}},
		{name: "delete missing address", want: unix.EADDRNOTAVAIL, op: func(f *Netlink, l netlink.Link) error {
			return f.AddrDel(l, &netlink.Addr{IPNet: dst})
		}},
		{name: "duplicate rule", want: unix.EEXIST, op: func(f *Netlink, l netlink.Link) error {
			r := netlink.NewRule()
			r.Table, r.Priority = 7, 100
			if err := f.RuleAdd(r); err != nil {
				return err
			}
			return f.RuleAdd(r)
		}},
		{name: "delete missing rule", want: unix.ENOENT, op: func(f *Netlink, l netlink.Link) error {
			r := netlink.NewRule()
			r.Table = 7
			return f.RuleDel(r)
		}},
		{name: "deleted link", want: unix.ENODEV, op: func(f *Netlink, l netlink.Link) error {
			if err := f.LinkDel(l); err != nil {
				return err
			}
			return f.LinkSetUp(l)
		}},
		{name: "injected failure", want: ErrInjected, op: func(f *Netlink, l netlink.Link) error {
			f.FailAt = f.Calls + 1
			return f.LinkSetUp(l)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			f.AddLink("eth0", 1500)
			l, err := f.LinkByName("eth0")
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.op(f, l); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFakeRendering(t *testing.T) {
	f := New()
	idx := f.AddLink("eth0", 1500)
	f.SetLinkUp("eth0")
	_, v6, _ := net.ParseCIDR("::/0")
	r := &netlink.Route{LinkIndex: idx, Dst: v6, Gw: net.ParseIP("fe80::1"), Table: 9, Protocol: 0xb7}
	rule := netlink.NewRule()
	rule.Src = &net.IPNet{IP: net.ParseIP("2001:db8::2"), Mask: net.CIDRMask(128, 128)}
	rule.Table, rule.Priority, rule.Protocol = 9, 10000, 0xb7
	if err := errors.Join(f.RouteReplace(r), f.RuleAdd(rule), f.RuleDel(rule), f.RouteDel(r)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ip -6 route replace default via fe80::1 dev eth0 table 9 proto bondtun",
		"ip -6 rule add from 2001:db8::2 lookup 9 pref 10000 proto bondtun",
		"ip -6 rule del from 2001:db8::2 lookup 9 pref 10000 proto bondtun",
		"ip -6 route del default via fe80::1 dev eth0 table 9 proto bondtun",
	}
	got := f.Ops()
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("ops = %q, want %q", got, want)
		}
	}
	if f.Dump() != "link eth0 mtu 1500 up" {
		t.Errorf("Dump = %q", f.Dump())
	}
}
