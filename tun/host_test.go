package tun_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/tun"
	"github.com/bondtun/bondtun/tun/tuntest"

	"github.com/vishvananda/netlink"
)

var hostCases = []struct {
	name    string
	plan    tun.Plan
	setup   func(f *tuntest.Netlink) // optional changes to the fake before Up
	wantUp  []string
	wantErr string // non-empty: Up must fail with this text and make no call
}{
	{
		name: "client/two uplinks with gateways, default through tunnel",
		plan: tun.Plan{
			Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.2/24")}, MTU: 1400,
			Routes: []netip.Prefix{pfx("0.0.0.0/0")},
			Uplinks: []tun.UplinkRoute{
				{Name: "cable", Interface: "up0", Source: ip("10.100.1.2"), Gateway: ip("10.100.1.1"), Table: 51820},
				{Name: "dsl", Interface: "up1", Source: ip("10.100.2.2"), Gateway: ip("10.100.2.1"), Table: 51821},
			},
		},
		wantUp: []string{
			"ip link set dev bt0 mtu 1400",
			"ip addr add 10.99.0.2/24 dev bt0",
			"ip link set dev bt0 up",
			"ip route add 0.0.0.0/1 dev bt0 proto bondtun",
			"ip route add 128.0.0.0/1 dev bt0 proto bondtun",
			"ip route add default via 10.100.1.1 dev up0 table 51820 proto bondtun",
			"ip rule add from 10.100.1.2 lookup 51820 pref 10000 proto bondtun",
			"ip route add default via 10.100.2.1 dev up1 table 51821 proto bondtun",
			"ip rule add from 10.100.2.2 lookup 51821 pref 10001 proto bondtun",
		},
	},
	{
		name: "client/two point-to-point uplinks without gateways, custom priority",
		plan: tun.Plan{
			Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.2/24")}, MTU: 1420,
			Routes:       []netip.Prefix{pfx("0.0.0.0/0")},
			RulePriority: 2000,
			Uplinks: []tun.UplinkRoute{
				{Name: "lte", Interface: "up0", Source: ip("100.64.7.9"), Table: 100},
				{Name: "sat", Interface: "up1", Source: ip("100.65.0.3"), Table: 101},
			},
		},
		wantUp: []string{
			"ip addr add 10.99.0.2/24 dev bt0",
			"ip link set dev bt0 up",
			"ip route add 0.0.0.0/1 dev bt0 proto bondtun",
			"ip route add 128.0.0.0/1 dev bt0 proto bondtun",
			"ip route add default dev up0 table 100 proto bondtun",
			"ip rule add from 100.64.7.9 lookup 100 pref 2000 proto bondtun",
			"ip route add default dev up1 table 101 proto bondtun",
			"ip rule add from 100.65.0.3 lookup 101 pref 2001 proto bondtun",
		},
	},
	{
		name: "client/dual stack default through tunnel, one IPv6 uplink",
		plan: tun.Plan{
			Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.2/24"), pfx("fd00:99::2/64")},
			Routes: []netip.Prefix{pfx("0.0.0.0/0"), pfx("::/0")},
			Uplinks: []tun.UplinkRoute{
				{Name: "cable", Interface: "up0", Source: ip("10.100.1.2"), Gateway: ip("10.100.1.1"), Table: 51820},
				{Name: "fiber6", Interface: "up1", Source: ip("2001:db8:1::2"), Gateway: ip("fe80::1"), Table: 51821},
			},
		},
		wantUp: []string{
			"ip addr add 10.99.0.2/24 dev bt0",
			"ip addr add fd00:99::2/64 dev bt0",
			"ip link set dev bt0 up",
			"ip route add 0.0.0.0/1 dev bt0 proto bondtun",
			"ip route add 128.0.0.0/1 dev bt0 proto bondtun",
			"ip -6 route add ::/1 dev bt0 proto bondtun",
			"ip -6 route add 8000::/1 dev bt0 proto bondtun",
			"ip route add default via 10.100.1.1 dev up0 table 51820 proto bondtun",
			"ip rule add from 10.100.1.2 lookup 51820 pref 10000 proto bondtun",
			"ip -6 route add default via fe80::1 dev up1 table 51821 proto bondtun",
			"ip -6 rule add from 2001:db8:1::2 lookup 51821 pref 10001 proto bondtun",
		},
	},
	{
		name: "server/client subnets, no uplink rules",
		plan: tun.Plan{
			Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.1/24")},
			Routes: []netip.Prefix{pfx("192.168.50.0/24"), pfx("192.168.60.7/24")},
		},
		wantUp: []string{
			"ip addr add 10.99.0.1/24 dev bt0",
			"ip link set dev bt0 up",
			"ip route add 192.168.50.0/24 dev bt0 proto bondtun",
			"ip route add 192.168.60.0/24 dev bt0 proto bondtun",
		},
	},
	{
		// The demo client: its peer's allowed_ips are its own address's subnet, whose
		// prefix route the kernel made when the link came up; the inner route takes it over.
		name: "client/inner route equal to the device address's prefix",
		plan: tun.Plan{
			Device: "bt0", Addresses: []netip.Prefix{pfx("10.77.0.2/24")},
			Routes: []netip.Prefix{pfx("10.77.0.0/24")},
		},
		wantUp: []string{
			"ip addr add 10.77.0.2/24 dev bt0",
			"ip link set dev bt0 up",
			"ip route replace 10.77.0.0/24 dev bt0 proto bondtun",
		},
	},
	{
		name: "server/address already on the device is kept",
		plan: tun.Plan{Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.1/24")}},
		setup: func(f *tuntest.Netlink) {
			f.AddAddr("bt0", netlink.Addr{IPNet: hostNet("10.99.0.1/24")})
		},
		wantUp: []string{"ip link set dev bt0 up"},
	},
	{
		name: "client/own table and mark, default through tunnel",
		plan: tun.Plan{
			Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.2/24")},
			Routes: []netip.Prefix{pfx("0.0.0.0/0"), pfx("192.168.50.0/24")},
			Table:  7349, Mark: 0x1cb5,
			Uplinks: []tun.UplinkRoute{
				{Name: "cable", Interface: "up0", Source: ip("10.100.1.2"), Gateway: ip("10.100.1.1"), Table: 7350},
			},
		},
		wantUp: []string{
			"ip addr add 10.99.0.2/24 dev bt0",
			"ip link set dev bt0 up",
			"ip route add 0.0.0.0/1 dev bt0 table 7349 proto bondtun",
			"ip route add 128.0.0.0/1 dev bt0 table 7349 proto bondtun",
			"ip route add 192.168.50.0/24 dev bt0 table 7349 proto bondtun",
			"ip rule add not from all fwmark 0x1cb5 lookup main suppress_prefixlength 0 pref 32764 proto bondtun",
			"ip rule add not from all fwmark 0x1cb5 lookup 7349 pref 32765 proto bondtun",
			"ip -6 rule add not from all fwmark 0x1cb5 lookup main suppress_prefixlength 0 pref 32764 proto bondtun",
			"ip -6 rule add not from all fwmark 0x1cb5 lookup 7349 pref 32765 proto bondtun",
			"ip route add default via 10.100.1.1 dev up0 table 7350 proto bondtun",
			"ip rule add from 10.100.1.2 lookup 7350 pref 10000 proto bondtun",
		},
	},
	{
		// A peer whose allowed_ips cover the uplink network: the route goes into the
		// tunnel's table, the main table's routes are not touched.
		name: "server/own table, a peer's allowed_ips over the outer network",
		plan: tun.Plan{
			Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.1/24"), pfx("fd00:99::1/64")},
			Routes: []netip.Prefix{pfx("10.100.0.0/16"), pfx("fd00:77::/64")},
			Table:  7000, Mark: 0xabc,
		},
		wantUp: []string{
			"ip addr add 10.99.0.1/24 dev bt0",
			"ip addr add fd00:99::1/64 dev bt0",
			"ip link set dev bt0 up",
			"ip route add 10.100.0.0/16 dev bt0 table 7000 proto bondtun",
			"ip -6 route add fd00:77::/64 dev bt0 table 7000 proto bondtun",
			"ip rule add not from all fwmark 0xabc lookup main suppress_prefixlength 0 pref 32764 proto bondtun",
			"ip rule add not from all fwmark 0xabc lookup 7000 pref 32765 proto bondtun",
			"ip -6 rule add not from all fwmark 0xabc lookup main suppress_prefixlength 0 pref 32764 proto bondtun",
			"ip -6 rule add not from all fwmark 0xabc lookup 7000 pref 32765 proto bondtun",
		},
	},
	{name: "invalid/table without mark", plan: tun.Plan{Device: "bt0", Table: 7349}, wantErr: "both or neither"},
	{name: "invalid/mark without table", plan: tun.Plan{Device: "bt0", Mark: 1}, wantErr: "both or neither"},
	{name: "invalid/own table is main", plan: tun.Plan{Device: "bt0", Table: 254, Mark: 1}, wantErr: "table 254 is reserved"},
	{
		name: "invalid/uplink in the inner table",
		plan: tun.Plan{Device: "bt0", Table: 7349, Mark: 1, Uplinks: []tun.UplinkRoute{
			{Name: "a", Interface: "up0", Source: ip("10.100.1.2"), Table: 7349}}},
		wantErr: "the inner routes' table",
	},
	{name: "invalid/empty device", plan: tun.Plan{}, wantErr: "empty device name"},
	{name: "invalid/MTU", plan: tun.Plan{Device: "bt0", MTU: 70000}, wantErr: "MTU 70000"},
	{name: "invalid/route", plan: tun.Plan{Device: "bt0", Routes: []netip.Prefix{{}}}, wantErr: "invalid route"},
	{name: "invalid/address", plan: tun.Plan{Device: "bt0", Addresses: []netip.Prefix{{}}}, wantErr: "invalid device address"},
	{
		name: "invalid/main table",
		plan: tun.Plan{Device: "bt0", Uplinks: []tun.UplinkRoute{
			{Name: "a", Interface: "up0", Source: ip("10.100.1.2"), Table: 254}}},
		wantErr: "reserved",
	},
	{
		name: "invalid/shared table",
		plan: tun.Plan{Device: "bt0", Uplinks: []tun.UplinkRoute{
			{Name: "a", Interface: "up0", Source: ip("10.100.1.2"), Table: 7},
			{Name: "b", Interface: "up1", Source: ip("10.100.2.2"), Table: 7}}},
		wantErr: "share table 7",
	},
	{
		name: "invalid/unspecified source", // no source at all is an uplink not ready yet
		plan: tun.Plan{Device: "bt0", Uplinks: []tun.UplinkRoute{
			{Name: "a", Interface: "up0", Source: ip("0.0.0.0"), Table: 7}}},
		wantErr: "invalid source",
	},
	{
		name: "invalid/gateway family",
		plan: tun.Plan{Device: "bt0", Uplinks: []tun.UplinkRoute{
			{Name: "a", Interface: "up0", Source: ip("10.100.1.2"), Gateway: ip("fe80::1"), Table: 7}}},
		wantErr: "differ in family",
	},
	{
		name: "invalid/priority after main",
		plan: tun.Plan{Device: "bt0", RulePriority: 32766, Uplinks: []tun.UplinkRoute{
			{Name: "a", Interface: "up0", Source: ip("10.100.1.2"), Table: 7}}},
		wantErr: "before the tunnel's rules and the main table",
	},
	// An uplink interface that is missing is not an error: TestHostUplinksNotReady.
}

// inverse is what Down must record for the given Up operations.
func inverse(up []string) []string {
	var down []string
	for _, op := range slices.Backward(up) {
		switch {
		case strings.Contains(op, " mtu "):
			continue // the MTU of bondtun's own device is not undone
		case strings.HasSuffix(op, " up"):
			op = strings.TrimSuffix(op, " up") + " down"
		default:
			op = strings.Replace(strings.Replace(op, " replace ", " del ", 1), " add ", " del ", 1)
		}
		down = append(down, op)
	}
	return down
}

func TestHostUpDown(t *testing.T) {
	for _, tc := range hostCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newHostFake()
			if tc.setup != nil {
				tc.setup(f)
			}
			before := f.Dump()
			h := tun.NewHost(f, quiet)
			err := h.Up(tc.plan)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Up error = %v, want one containing %q", err, tc.wantErr)
				}
				if got := f.Dump(); got != before {
					t.Errorf("failed Up changed the host:\n%s\nwant\n%s", got, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("Up: %v", err)
			}
			if got := f.Ops(); !slices.Equal(got, tc.wantUp) {
				t.Errorf("Up ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.wantUp, "\n"))
			}
			if err := h.Down(); err != nil {
				t.Fatalf("Down: %v", err)
			}
			if got, want := f.Ops(), inverse(tc.wantUp); !slices.Equal(got, want) {
				t.Errorf("Down ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if got := f.Dump(); stripMTU(got) != stripMTU(before) {
				t.Errorf("after Down:\n%s\nwant\n%s", got, before)
			}
		})
	}
}

// TestHostUpFailsAtEveryStep makes call k fail for every k and checks that
// Up returns the error and its undo leaves the host as it was.
func TestHostUpFailsAtEveryStep(t *testing.T) {
	for _, tc := range hostCases {
		if tc.wantErr != "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			for k := 1; ; k++ {
				f := newHostFake()
				if tc.setup != nil {
					tc.setup(f)
				}
				before := f.Dump()
				f.FailAt = k
				h := tun.NewHost(f, quiet)
				err := h.Up(tc.plan)
				if err == nil {
					if k == 1 {
						t.Fatal("Up made no netlink call")
					}
					return // k is past the last call: every step was covered
				}
				if !errors.Is(err, tuntest.ErrInjected) {
					t.Fatalf("k=%d: Up error %v does not wrap the injected error", k, err)
				}
				if got := f.Dump(); stripMTU(got) != stripMTU(before) {
					t.Fatalf("k=%d: after failed Up:\n%s\nwant\n%s\nops:\n%s",
						k, got, before, strings.Join(f.Ops(), "\n"))
				}
				f.Ops()
				if err := h.Down(); err != nil || len(f.Ops()) != 0 {
					t.Fatalf("k=%d: Down after failed Up: err %v, or it made changes", k, err)
				}
				if err := h.Up(tc.plan); err != nil {
					t.Fatalf("k=%d: Up after a failed Up: %v", k, err)
				}
			}
		})
	}
}

func TestHostDownIdempotent(t *testing.T) {
	plan := hostCases[0].plan
	tests := []struct {
		name   string
		meddle func(f *tuntest.Netlink) // external change between Up and Down
	}{
		{name: "plain", meddle: func(*tuntest.Netlink) {}},
		{name: "device deleted underneath", meddle: func(f *tuntest.Netlink) {
			l, err := f.LinkByName("bt0")
			if err != nil {
				panic(err)
			}
			if err := f.LinkDel(l); err != nil {
				panic(err)
			}
		}},
		{name: "uplink rule deleted by admin", meddle: func(f *tuntest.Netlink) {
			r := netlink.NewRule()
			r.Priority = 10001
			if err := f.RuleDel(r); err != nil {
				panic(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newHostFake()
			h := tun.NewHost(f, quiet)
			if err := h.Down(); err != nil || len(f.Ops()) != 0 {
				t.Fatalf("Down before Up: err %v, or it made changes", err)
			}
			if err := h.Up(plan); err != nil {
				t.Fatalf("Up: %v", err)
			}
			if err := h.Up(plan); err == nil {
				t.Error("second Up without Down succeeded")
			}
			tc.meddle(f)
			if err := h.Down(); err != nil {
				t.Fatalf("Down: %v", err)
			}
			if strings.Contains(f.Dump(), "bondtun") {
				t.Errorf("bondtun entries left after Down:\n%s", f.Dump())
			}
			f.Ops()
			if err := h.Down(); err != nil || len(f.Ops()) != 0 {
				t.Errorf("second Down: err %v, or it made changes", err)
			}
		})
	}
}
