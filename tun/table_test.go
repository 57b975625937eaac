package tun_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/tun"
	"github.com/bondtun/bondtun/tun/tuntest"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tablePlan is a server plan with its own table 7349 and mark 0x1cb5.
var tablePlan = tun.Plan{
	Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.1/24")},
	Routes: []netip.Prefix{pfx("10.100.0.0/16")},
	Table:  7349, Mark: 0x1cb5,
}

// tunnelRule is one of a plan's rules as the kernel lists it.
func tunnelRule(family, table int, mark uint32, suppress bool, prio int) netlink.Rule {
	r := netlink.NewRule()
	r.Family, r.Table, r.Mark, r.Invert, r.Priority, r.Protocol = family, table, mark, true, prio, tun.RTProtBondtun
	if suppress {
		r.SuppressPrefixlen = 0
	}
	return *r
}

// leftoverRules seeds the four tunnel rules of a plan with table and mark, as a crash leaves them.
func leftoverRules(f *tuntest.Netlink, table int, mark uint32) {
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		f.AddRule(tunnelRule(fam, unix.RT_TABLE_MAIN, mark, true, tun.TunnelRulePriority))
		f.AddRule(tunnelRule(fam, table, mark, false, tun.TunnelRulePriority+1))
	}
}

// TestTunnelTableCrashLeftovers: after a crash (the device, and with it the routes of the
// tunnel's table, gone; the rules left), Cleanup removes exactly the four tunnel rules and
// Up then works; an administrator's rule with the same mark but not bondtun's stays.
func TestTunnelTableCrashLeftovers(t *testing.T) {
	f := newHostFake()
	admin := tunnelRule(unix.AF_INET, 100, 0x1cb5, false, 500)
	admin.Protocol, admin.Invert = unix.RTPROT_BOOT, false
	f.AddRule(admin)
	before := f.Dump()
	leftoverRules(f, 7349, 0x1cb5)
	cleanupThenUp(t, f, before)
}

// cleanupThenUp runs Cleanup on f, whose host was before (with the device bt0) and has
// tablePlan's leftovers since, checks that exactly those went (the device too), and then
// that Up and Down work.
func cleanupThenUp(t *testing.T, f *tuntest.Netlink, before string) {
	t.Helper()
	if err := tun.Cleanup(f, tablePlan); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if got := stripMTU(f.Dump()); got != stripMTU(strings.Replace(before, "link bt0 mtu 1420 down\n", "", 1)) {
		t.Fatalf("after Cleanup:\n%s\nwant\n%s", got, before)
	}
	f.AddLink("bt0", 1420)
	h := tun.NewHost(f, quiet)
	if err := h.Up(tablePlan); err != nil {
		t.Fatalf("Up after Cleanup: %v", err)
	}
	if err := h.Down(); err != nil {
		t.Fatal(err)
	}
}

// TestTunnelTableStaleRuleAfterTableChange: a crash left the tunnel's rules into table 7400,
// and the configuration now says table 7349 with the same mark. The old table is empty (its
// routes went with the device), so its rule is this mark's leftover, not another live
// instance's: Cleanup removes it, and Up works.
func TestTunnelTableStaleRuleAfterTableChange(t *testing.T) {
	f := newHostFake()
	before := f.Dump()
	leftoverRules(f, 7400, 0x1cb5)
	cleanupThenUp(t, f, before)
}

// TestTunnelTableOwnership: a table or mark another bondtun uses, or a table the
// administrator filled, makes Up fail before any change and Cleanup leave it alone.
func TestTunnelTableOwnership(t *testing.T) {
	tests := []struct {
		name    string
		seed    func(f *tuntest.Netlink)
		wantErr string
	}{
		{
			name: "same table, another instance's device",
			seed: func(f *tuntest.Netlink) {
				bt1 := f.AddLink("bt1", 1420)
				f.SetLinkUp("bt1")
				leftoverRules(f, 7349, 0x1cb5) // bt1's, identical to ours
				f.AddRoute(netlink.Route{LinkIndex: bt1, Dst: mustIPNet("10.200.0.0/24"), Table: 7349, Protocol: tun.RTProtBondtun})
			},
			wantErr: "routing table 7349 holds a route not through bt0",
		},
		{
			name: "same mark, another instance's table",
			seed: func(f *tuntest.Netlink) {
				bt1 := f.AddLink("bt1", 1420)
				f.SetLinkUp("bt1")
				f.AddRule(tunnelRule(unix.AF_INET, unix.RT_TABLE_MAIN, 0x1cb5, true, tun.TunnelRulePriority))
				f.AddRule(tunnelRule(unix.AF_INET, 7400, 0x1cb5, false, tun.TunnelRulePriority+1))
				f.AddRoute(netlink.Route{LinkIndex: bt1, Dst: mustIPNet("10.200.0.0/24"), Table: 7400, Protocol: tun.RTProtBondtun})
			},
			wantErr: "firewall mark 0x1cb5 is also used by another bondtun",
		},
		{
			name: "same table, another instance's mark",
			seed: func(f *tuntest.Netlink) {
				f.AddRule(tunnelRule(unix.AF_INET, 7349, 0x99, false, tun.TunnelRulePriority+1))
			},
			wantErr: "routing table 7349 is also used",
		},
		{
			name: "the administrator's route in the table",
			seed: func(f *tuntest.Netlink) {
				f.AddRoute(netlink.Route{LinkIndex: 2, Dst: mustIPNet("0.0.0.0/0"), Table: 7349, Protocol: unix.RTPROT_STATIC})
			},
			wantErr: "routing table 7349 holds a route not through bt0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newHostFake()
			tc.seed(f)
			before := f.Dump()
			err := tun.NewHost(f, quiet).Up(tablePlan)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Up: %v, want an error with %q", err, tc.wantErr)
			}
			if got := f.Dump(); got != before {
				t.Fatalf("failed Up changed the host:\n%s\nwant\n%s", got, before)
			}
			f.Ops()
			err = tun.Cleanup(f, tablePlan)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "left alone") {
				t.Fatalf("Cleanup: %v, want an error with %q, left alone", err, tc.wantErr)
			}
			if ops := f.Ops(); len(ops) != 1 || ops[0] != "ip link del dev bt0" {
				t.Fatalf("Cleanup made changes besides deleting its own device: %q", ops)
			}
		})
	}
}

// TestTunnelTableSetRoutes: a reload's routes go into the tunnel's table too, and Down
// leaves nothing.
func TestTunnelTableSetRoutes(t *testing.T) {
	f := newHostFake()
	before := f.Dump()
	h := tun.NewHost(f, quiet)
	if err := h.Up(tablePlan); err != nil {
		t.Fatal(err)
	}
	f.Ops()
	if _, _, err := h.SetRoutes([]netip.Prefix{pfx("10.101.0.0/16"), pfx("0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ip route add 0.0.0.0/1 dev bt0 table 7349 proto bondtun",
		"ip route add 10.101.0.0/16 dev bt0 table 7349 proto bondtun",
		"ip route add 128.0.0.0/1 dev bt0 table 7349 proto bondtun",
		"ip route del 10.100.0.0/16 dev bt0 table 7349 proto bondtun",
	}
	if got := f.Ops(); !sameSet(got, want) {
		t.Fatalf("SetRoutes ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := h.SetDefaultRoutes(false); err != nil {
		t.Fatal(err)
	}
	if got := f.Ops(); len(got) != 2 || !strings.Contains(got[0], "table 7349") {
		t.Fatalf("SetDefaultRoutes(false) ops %q, want the two halves of table 7349", got)
	}
	if err := h.Down(); err != nil {
		t.Fatal(err)
	}
	if got := f.Dump(); stripMTU(got) != stripMTU(before) {
		t.Fatalf("after Down:\n%s\nwant\n%s", got, before)
	}
}
