package tun_test

import (
	"errors"
	"io"
	"log/slog"
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

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newHostFake returns a fake host with the TUN device bt0 and two uplinks,
// up0 and up1, plus the host's own default route, which bondtun must never
// touch.
func newHostFake() *tuntest.Netlink {
	f := tuntest.New()
	f.AddLink("bt0", 1420)
	up0 := f.AddLink("up0", 1500)
	f.AddLink("up1", 1500)
	f.SetLinkUp("up0")
	f.SetLinkUp("up1")
	f.AddRoute(netlink.Route{LinkIndex: up0, Gw: net.ParseIP("10.100.1.1").To4(),
		Dst: mustIPNet("0.0.0.0/0"), Protocol: unix.RTPROT_DHCP})
	return f
}

func mustIPNet(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// hostNet is like mustIPNet but keeps the host part, as an address does.
func hostNet(s string) *net.IPNet {
	p := netip.MustParsePrefix(s)
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

var (
	ip  = netip.MustParseAddr
	pfx = netip.MustParsePrefix
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

// stripMTU drops MTU values from a dump: Up sets the device MTU and Down
// deliberately leaves it.
func stripMTU(dump string) string {
	var out []string
	for _, line := range strings.Split(dump, "\n") {
		if i := strings.Index(line, " mtu "); i >= 0 {
			if j := strings.Index(line[i+5:], " "); j >= 0 {
				line = line[:i] + line[i+5+j:]
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
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

func TestRefreshUplink(t *testing.T) {
	f := newHostFake()
	tc := hostCases[0]
	if tc.setup != nil {
		tc.setup(f)
	}
	before := f.Dump()
	h := tun.NewHost(f, quiet)
	if err := h.RefreshUplink("cable", netip.Addr{}); err == nil {
		t.Fatal("RefreshUplink before Up succeeded")
	}
	if err := h.Up(tc.plan); err != nil {
		t.Fatal(err)
	}
	u := tc.plan.Uplinks[0]
	f.Ops() // reset the recording
	newSrc := netip.MustParseAddr("198.51.100.77")
	if err := h.RefreshUplink(u.Name, newSrc); err != nil {
		t.Fatal(err)
	}
	ops := strings.Join(f.Ops(), "\n")
	for _, want := range []string{"route replace default", "rule del from " + u.Source.String(), "rule add from " + newSrc.String()} {
		if !strings.Contains(ops, want) {
			t.Errorf("RefreshUplink ops:\n%s\nwant a line with %q", ops, want)
		}
	}
	if err := h.RefreshUplink("no-such-uplink", newSrc); err == nil {
		t.Error("RefreshUplink of an unknown uplink succeeded")
	}
	if err := h.Down(); err != nil {
		t.Fatal(err)
	}
	if got := f.Dump(); stripMTU(got) != stripMTU(before) {
		t.Errorf("after Down:\n%s\nwant\n%s", got, before)
	}
}

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
		})
	}
}

// TestHostUplinksNotReady: an uplink without an address yet, one whose interface is
// missing and one whose interface is down do not stop Up, which installs the others;
// RefreshUplink installs each once it is there, and Down removes everything.
func TestHostUplinksNotReady(t *testing.T) {
	f := newHostFake()
	f.AddLink("up2", 1500) // exists but down
	plan := tun.Plan{
		Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.2/24")},
		Routes: []netip.Prefix{pfx("0.0.0.0/0")},
		Uplinks: []tun.UplinkRoute{
			{Name: "cable", Interface: "up0", Source: ip("10.100.1.2"), Gateway: ip("10.100.1.1"), Table: 7350},
			{Name: "dsl", Interface: "up1", Gateway: ip("10.100.2.1"), Table: 7351},                           // no address yet
			{Name: "lte", Interface: "up9", Source: ip("10.100.3.2"), Gateway: ip("10.100.3.1"), Table: 7352}, // no interface yet
			{Name: "sat", Interface: "up2", Source: ip("10.100.4.2"), Gateway: ip("10.100.4.1"), Table: 7353}, // down
		},
	}
	h := tun.NewHost(f, quiet)
	if err := h.Up(plan); err != nil {
		t.Fatalf("Up with uplinks not ready: %v", err)
	}
	ops := strings.Join(f.Ops(), "\n")
	for _, absent := range []string{"table 7351", "table 7352", "table 7353"} {
		if strings.Contains(ops, absent) {
			t.Errorf("Up touched %s of an uplink that is not ready:\n%s", absent, ops)
		}
	}
	if !strings.Contains(ops, "ip rule add from 10.100.1.2 lookup 7350") {
		t.Errorf("Up did not install the ready uplink:\n%s", ops)
	}
	if err := h.RefreshUplink("dsl", netip.Addr{}); err == nil {
		t.Error("RefreshUplink of an uplink without address succeeded")
	}
	if err := h.RefreshUplink("lte", netip.Addr{}); err == nil {
		t.Error("RefreshUplink of an uplink whose interface is missing succeeded")
	}
	f.Ops()
	if err := h.RefreshUplink("dsl", ip("10.100.2.2")); err != nil {
		t.Fatalf("RefreshUplink once the address is there: %v", err)
	}
	f.AddLink("up9", 1500)
	f.SetLinkUp("up9")
	if err := h.RefreshUplink("lte", netip.Addr{}); err != nil {
		t.Fatalf("RefreshUplink once the interface is there: %v", err)
	}
	f.SetLinkUp("up2")
	if err := h.RefreshUplink("sat", netip.Addr{}); err != nil {
		t.Fatalf("RefreshUplink once the interface is up: %v", err)
	}
	want := []string{
		"ip route add default via 10.100.2.1 dev up1 table 7351 proto bondtun",
		"ip rule add from 10.100.2.2 lookup 7351 pref 10001 proto bondtun",
		"ip route add default via 10.100.3.1 dev up9 table 7352 proto bondtun",
		"ip rule add from 10.100.3.2 lookup 7352 pref 10002 proto bondtun",
		"ip route add default via 10.100.4.1 dev up2 table 7353 proto bondtun",
		"ip rule add from 10.100.4.2 lookup 7353 pref 10003 proto bondtun",
	}
	if got := f.Ops(); !slices.Equal(got, want) {
		t.Errorf("RefreshUplink ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := h.Down(); err != nil {
		t.Fatal(err)
	}
	// up9 appeared and up2 came up meanwhile: nothing of bondtun's may be left.
	for _, l := range strings.Split(f.Dump(), "\n") {
		if strings.Contains(l, "bondtun") {
			t.Errorf("after Down: %s", l)
		}
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
