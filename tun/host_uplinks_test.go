package tun_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/tun"
)

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
