package tun_test

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/tun"
	"github.com/bondtun/bondtun/tun/tuntest"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func rule(src string, table, prio int, proto uint8) netlink.Rule {
	r := netlink.NewRule()
	r.Src = hostNet(src)
	r.Table, r.Priority, r.Protocol = table, prio, proto
	return *r
}

// cleanupPlan is the client plan of hostCases[0]: tables 51820 and 51821.
var cleanupPlan = tun.Plan{
	Device: "bt0",
	Routes: []netip.Prefix{pfx("0.0.0.0/0"), pfx("192.168.50.0/24")},
	Uplinks: []tun.UplinkRoute{
		{Name: "cable", Interface: "up0", Source: ip("10.100.1.2"), Table: 51820},
		{Name: "dsl", Interface: "up1", Source: ip("10.100.2.2"), Table: 51821},
	},
}

func TestCleanup(t *testing.T) {
	tests := []struct {
		name     string
		seed     func(f *tuntest.Netlink, up0 int)
		wantOps  []string
		wantLeft []string // lines that must survive in the dump
		wantErr  string   // substring of Cleanup's error; "" for none
	}{
		{
			name: "crash leftovers removed, foreign entries kept",
			seed: func(f *tuntest.Netlink, up0 int) {
				f.AddRule(rule("10.100.1.2/32", 51820, 10000, tun.RTProtBondtun))
				f.AddRule(rule("10.100.2.2/32", 51821, 10001, tun.RTProtBondtun))
				f.AddRule(rule("10.100.1.2/32", 51820, 500, unix.RTPROT_BOOT))    // admin's rule, our table
				f.AddRule(rule("10.200.0.2/32", 60000, 10000, tun.RTProtBondtun)) // another bondtun's table
				f.AddRoute(netlink.Route{LinkIndex: up0, Dst: mustIPNet("0.0.0.0/0"), Gw: net.ParseIP("10.100.1.1"),
					Table: 51820, Protocol: tun.RTProtBondtun})
				f.AddRoute(netlink.Route{LinkIndex: up0, Dst: mustIPNet("10.0.0.0/8"), Table: 51820,
					Protocol: unix.RTPROT_STATIC}) // admin's route, our table
				f.AddRoute(netlink.Route{LinkIndex: up0, Dst: mustIPNet("0.0.0.0/0"), Table: 60000,
					Protocol: tun.RTProtBondtun}) // another bondtun's table
				f.AddRoute(netlink.Route{LinkIndex: up0, Dst: mustIPNet("192.168.50.0/24"),
					Protocol: tun.RTProtBondtun}) // our inner route's prefix, but through another device
				f.AddRoute(netlink.Route{LinkIndex: up0, Dst: mustIPNet("172.16.0.0/12"),
					Protocol: tun.RTProtBondtun}) // bondtun-marked but not in the plan
				f.AddRoute(netlink.Route{LinkIndex: 1, Dst: mustIPNet("0.0.0.0/1"), Protocol: tun.RTProtBondtun})
			},
			wantOps: []string{
				"ip rule del from 10.100.1.2 lookup 51820 pref 10000 proto bondtun",
				"ip rule del from 10.100.2.2 lookup 51821 pref 10001 proto bondtun",
				"ip route del default via 10.100.1.1 dev up0 table 51820 proto bondtun",
				"ip route del 0.0.0.0/1 dev bt0 proto bondtun",
				"ip link del dev bt0",
			},
			wantLeft: []string{
				"from 10.100.1.2 lookup 51820 pref 500 proto boot",
				"from 10.200.0.2 lookup 60000 pref 10000 proto bondtun",
				"10.0.0.0/8 dev up0 table 51820 proto static",
				"default dev up0 table 60000 proto bondtun",
				"172.16.0.0/12 dev up0 proto bondtun",
				"192.168.50.0/24 dev up0 proto bondtun",
				"default via 10.100.1.1 dev up0 proto dhcp",
			},
		},
		{
			// Another bondtun (bt1) configured with the same tables: its rule comes from
			// another source. Table 51820 is then left alone entirely, and said so; the
			// other table, and what is bt0's own, is still cleaned.
			name: "a table shared with another instance is left alone",
			seed: func(f *tuntest.Netlink, up0 int) {
				bt1 := f.AddLink("bt1", 1420)
				f.AddRule(rule("10.100.1.2/32", 51820, 10000, tun.RTProtBondtun))
				f.AddRule(rule("10.100.2.2/32", 51821, 10001, tun.RTProtBondtun))
				f.AddRule(rule("10.200.0.2/32", 51820, 10000, tun.RTProtBondtun)) // bt1's
				f.AddRoute(netlink.Route{LinkIndex: up0, Dst: mustIPNet("0.0.0.0/0"), Gw: net.ParseIP("10.100.1.1"),
					Table: 51820, Protocol: tun.RTProtBondtun})
				f.AddRoute(netlink.Route{LinkIndex: up0, Dst: mustIPNet("0.0.0.0/0"), Gw: net.ParseIP("10.100.2.1"),
					Table: 51821, Protocol: tun.RTProtBondtun})
				f.AddRoute(netlink.Route{LinkIndex: bt1, Dst: mustIPNet("0.0.0.0/1"), Protocol: tun.RTProtBondtun}) // bt1's
			},
			wantOps: []string{
				"ip rule del from 10.100.2.2 lookup 51821 pref 10001 proto bondtun",
				"ip route del default via 10.100.2.1 dev up0 table 51821 proto bondtun",
				"ip link del dev bt0",
			},
			wantLeft: []string{
				"from 10.100.1.2 lookup 51820 pref 10000 proto bondtun",
				"from 10.200.0.2 lookup 51820 pref 10000 proto bondtun",
				"default via 10.100.1.1 dev up0 table 51820 proto bondtun",
				"0.0.0.0/1 dev bt1 proto bondtun",
			},
			wantErr: "routing table 51820 is also used by another bondtun (rule from 10.200.0.2/32 lookup 51820 pref 10000)",
		},
		{
			name:     "clean host: only the device goes",
			seed:     func(*tuntest.Netlink, int) {},
			wantOps:  []string{"ip link del dev bt0"},
			wantLeft: []string{"default via 10.100.1.1 dev up0 proto dhcp"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newHostFake()
			tc.seed(f, 2)
			err := tun.Cleanup(f, cleanupPlan)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Cleanup: %v, want error %q", err, tc.wantErr)
			}
			got := f.Ops()
			// Map order over tables is not fixed; compare as sets.
			if !sameSet(got, tc.wantOps) {
				t.Errorf("ops:\n%s\nwant (any order):\n%s", strings.Join(got, "\n"), strings.Join(tc.wantOps, "\n"))
			}
			dump := f.Dump()
			for _, line := range tc.wantLeft {
				if !strings.Contains(dump, line) {
					t.Errorf("%q was removed; state:\n%s", line, dump)
				}
			}
			if err := tun.Cleanup(f, cleanupPlan); (err != nil) != (tc.wantErr != "") || len(f.Ops()) != 0 {
				t.Errorf("second Cleanup: err %v, or it made changes", err)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestCleanupAfterUp checks that Cleanup alone undoes a Host.Up whose Down
// never ran, for every plan of the host tests.
func TestCleanupAfterUp(t *testing.T) {
	for _, tc := range hostCases {
		if tc.wantErr != "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			f := newHostFake()
			if err := tun.NewHost(f, quiet).Up(tc.plan); err != nil {
				t.Fatalf("Up: %v", err)
			}
			if err := tun.Cleanup(f, tc.plan); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			if dump := f.Dump(); strings.Contains(dump, "bondtun") || strings.Contains(dump, "bt0") {
				t.Errorf("left behind:\n%s", dump)
			}
		})
	}
}

func TestCleanupReportsErrorsButContinues(t *testing.T) {
	f := newHostFake()
	f.AddRoute(netlink.Route{LinkIndex: 2, Dst: mustIPNet("0.0.0.0/0"), Table: 51820, Protocol: tun.RTProtBondtun})
	f.FailAt = 2 // the first rule listing (after looking up the device)
	if err := tun.Cleanup(f, cleanupPlan); err == nil {
		t.Fatal("Cleanup hid the listing error")
	}
	if dump := f.Dump(); strings.Contains(dump, "table 51820") || strings.Contains(dump, "bt0") {
		t.Errorf("Cleanup stopped at the first error; left:\n%s", dump)
	}
}

func TestResolveUplinkSource(t *testing.T) {
	const (
		universe = unix.RT_SCOPE_UNIVERSE
		link     = unix.RT_SCOPE_LINK
	)
	tests := []struct {
		name    string
		iface   string
		addrs   []netlink.Addr
		want    string
		wantErr bool
	}{
		{name: "first global IPv4", iface: "up0", addrs: []netlink.Addr{
			{IPNet: hostNet("fe80::1/64"), Scope: link},
			{IPNet: hostNet("2001:db8::5/64")},
			{IPNet: hostNet("169.254.3.3/16"), Scope: link},
			{IPNet: hostNet("10.100.1.2/24"), Scope: universe},
			{IPNet: hostNet("10.100.1.3/24"), Scope: universe},
		}, want: "10.100.1.2"},
		{name: "IPv6 when no IPv4", iface: "up0", addrs: []netlink.Addr{
			{IPNet: hostNet("fe80::1/64"), Scope: link},
			{IPNet: hostNet("2001:db8::6/64"), Flags: unix.IFA_F_TENTATIVE},
			{IPNet: hostNet("2001:db8::5/64")},
		}, want: "2001:db8::5"},
		{name: "only link-local", iface: "up0", addrs: []netlink.Addr{
			{IPNet: hostNet("fe80::1/64"), Scope: link},
		}, wantErr: true},
		{name: "only deprecated IPv6", iface: "up0", addrs: []netlink.Addr{
			{IPNet: hostNet("2001:db8::5/64"), Flags: unix.IFA_F_DEPRECATED},
		}, wantErr: true},
		{name: "no such interface", iface: "wwan0", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newHostFake()
			for _, a := range tc.addrs {
				f.AddAddr("up0", a)
			}
			got, err := tun.ResolveUplinkSource(f, tc.iface)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tc.want) {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}
