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

// TestHostRouteOwnership: Up adds routes, never replacing one it did not make. A route
// the administrator made to an inner destination, or another bondtun's route through
// its own device, makes Up fail with a clear error and leaves the host as it was; a
// bondtun leftover in this instance's own uplink table is replaced; a rule of another
// bondtun into this instance's tables makes Up refuse before any change.
func TestHostRouteOwnership(t *testing.T) {
	plan := tun.Plan{
		Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.2/24")},
		Routes: []netip.Prefix{pfx("192.168.50.0/24")},
		Uplinks: []tun.UplinkRoute{
			{Name: "cable", Interface: "up0", Source: ip("10.100.1.2"), Gateway: ip("10.100.1.1"), Table: 7350},
		},
	}
	cases := []struct {
		name    string
		seed    func(f *tuntest.Netlink)
		wantErr string   // "" for success
		wantOps []string // success: the route operations Up made
	}{
		{
			name: "administrator's route to an inner destination",
			seed: func(f *tuntest.Netlink) {
				f.AddRoute(netlink.Route{LinkIndex: 2, Dst: mustIPNet("192.168.50.0/24"), Gw: net.ParseIP("10.100.1.9").To4(),
					Protocol: unix.RTPROT_STATIC})
			},
			wantErr: "a route to 192.168.50.0/24 already exists in table 254 (proto 4, ifindex 2) and was not made by this bondtun",
		},
		{
			name: "another bondtun's route through its own device",
			seed: func(f *tuntest.Netlink) {
				bt1 := f.AddLink("bt1", 1420)
				f.SetLinkUp("bt1")
				f.AddRoute(netlink.Route{LinkIndex: bt1, Dst: mustIPNet("192.168.50.0/24"), Protocol: tun.RTProtBondtun})
			},
			wantErr: "was not made by this bondtun",
		},
		{
			name: "administrator's route in the uplink table",
			seed: func(f *tuntest.Netlink) {
				f.AddRoute(netlink.Route{LinkIndex: 2, Dst: mustIPNet("0.0.0.0/0"), Table: 7350, Protocol: unix.RTPROT_STATIC})
			},
			wantErr: "a route to 0.0.0.0/0 already exists in table 7350",
		},
		{
			name: "another bondtun's rule into the uplink table",
			seed: func(f *tuntest.Netlink) {
				f.AddRule(rule("10.200.0.2/32", 7350, 10000, tun.RTProtBondtun))
			},
			wantErr: "routing table 7350 is also used by another bondtun",
		},
		{
			name: "the kernel's prefix route of the device's address is taken over",
			seed: func(f *tuntest.Netlink) {
				f.AddRoute(netlink.Route{LinkIndex: 1, Dst: mustIPNet("192.168.50.0/24"), Protocol: unix.RTPROT_KERNEL})
			},
			wantOps: []string{
				"ip route replace 192.168.50.0/24 dev bt0 proto bondtun",
				"ip route add default via 10.100.1.1 dev up0 table 7350 proto bondtun",
			},
		},
		{
			name: "own leftover in the uplink table is replaced",
			seed: func(f *tuntest.Netlink) {
				f.AddRoute(netlink.Route{LinkIndex: 2, Dst: mustIPNet("0.0.0.0/0"), Gw: net.ParseIP("10.100.1.7").To4(),
					Table: 7350, Protocol: tun.RTProtBondtun})
			},
			wantOps: []string{
				"ip route add 192.168.50.0/24 dev bt0 proto bondtun",
				"ip route replace default via 10.100.1.1 dev up0 table 7350 proto bondtun",
			},
		},
		{
			// The kernel keys routes on table, destination, TOS and metric: the
			// administrator's route of another metric is not the one the EEXIST was
			// about, and stays.
			name: "own leftover beside the administrator's route of another metric",
			seed: func(f *tuntest.Netlink) {
				f.AddRoute(netlink.Route{LinkIndex: 2, Dst: mustIPNet("0.0.0.0/0"), Gw: net.ParseIP("10.100.1.9").To4(),
					Table: 7350, Priority: 100, Protocol: unix.RTPROT_STATIC})
				f.AddRoute(netlink.Route{LinkIndex: 2, Dst: mustIPNet("0.0.0.0/0"), Gw: net.ParseIP("10.100.1.7").To4(),
					Table: 7350, Protocol: tun.RTProtBondtun})
			},
			wantOps: []string{
				"ip route add 192.168.50.0/24 dev bt0 proto bondtun",
				"ip route replace default via 10.100.1.1 dev up0 table 7350 proto bondtun",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newHostFake()
			tc.seed(f)
			before := f.Dump()
			err := tun.NewHost(f, quiet).Up(plan)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Up: %v, want error containing %q", err, tc.wantErr)
				}
				if got := f.Dump(); stripMTU(got) != stripMTU(before) {
					t.Fatalf("failed Up changed the host:\n%s\nwant\n%s", got, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("Up: %v", err)
			}
			var routeOps []string
			for _, op := range f.Ops() {
				if strings.Contains(op, " route ") {
					routeOps = append(routeOps, op)
				}
			}
			if !slices.Equal(routeOps, tc.wantOps) {
				t.Fatalf("route ops:\n%s\nwant:\n%s", strings.Join(routeOps, "\n"), strings.Join(tc.wantOps, "\n"))
			}
			if strings.Contains(f.Dump(), "10.100.1.7") {
				t.Fatal("the leftover route is still there")
			}
			if strings.Contains(before, "10.100.1.9") && !strings.Contains(f.Dump(), "10.100.1.9") {
				t.Fatal("the administrator's route is gone")
			}
		})
	}
}

// TestHostDeferDefault: with DeferDefault, Up leaves the default route's halves out;
// SetDefaultRoutes adds and removes them (the other inner routes stay), any number of
// times, and Down leaves the host as it was whether they are in place or not.
func TestHostDeferDefault(t *testing.T) {
	for _, endOn := range []bool{false, true} {
		f := newHostFake()
		before := f.Dump()
		plan := tun.Plan{
			Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.2/24")},
			Routes:       []netip.Prefix{pfx("0.0.0.0/0"), pfx("10.77.0.0/24")},
			Uplinks:      []tun.UplinkRoute{{Name: "cable", Interface: "up0", Source: ip("10.100.1.2"), Gateway: ip("10.100.1.1"), Table: 7350}},
			DeferDefault: true,
		}
		h := tun.NewHost(f, quiet)
		if err := h.SetDefaultRoutes(true); err == nil {
			t.Fatal("SetDefaultRoutes before Up succeeded")
		}
		if err := h.Up(plan); err != nil {
			t.Fatal(err)
		}
		ops := strings.Join(f.Ops(), "\n")
		if strings.Contains(ops, "/1 dev bt0") || !strings.Contains(ops, "ip route add 10.77.0.0/24 dev bt0") {
			t.Fatalf("Up with DeferDefault:\n%s", ops)
		}
		for range 3 {
			if err := h.SetDefaultRoutes(true); err != nil {
				t.Fatal(err)
			}
			if err := h.SetDefaultRoutes(true); err != nil { // twice: nothing more
				t.Fatal(err)
			}
			want := []string{"ip route add 0.0.0.0/1 dev bt0 proto bondtun", "ip route add 128.0.0.0/1 dev bt0 proto bondtun"}
			if got := f.Ops(); !slices.Equal(got, want) {
				t.Fatalf("SetDefaultRoutes(true) ops %q, want %q", got, want)
			}
			if err := h.SetDefaultRoutes(false); err != nil {
				t.Fatal(err)
			}
			want = []string{"ip route del 0.0.0.0/1 dev bt0 proto bondtun", "ip route del 128.0.0.0/1 dev bt0 proto bondtun"}
			if got := f.Ops(); !slices.Equal(got, want) {
				t.Fatalf("SetDefaultRoutes(false) ops %q, want %q", got, want)
			}
		}
		if endOn {
			if err := h.SetDefaultRoutes(true); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.Down(); err != nil {
			t.Fatal(err)
		}
		if got := f.Dump(); stripMTU(got) != stripMTU(before) {
			t.Errorf("after Down (defaults on: %v):\n%s\nwant\n%s", endOn, got, before)
		}
	}
}
