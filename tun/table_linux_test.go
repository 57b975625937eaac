package tun_test

import (
	"net"
	"testing"

	"github.com/bondtun/bondtun/tun"

	"github.com/vishvananda/netlink"
)

// TestSystemTunnelTable applies a plan with its own table and mark to the kernel of a
// fresh namespace whose outer network (10.100.1.0/24, default route via 10.100.1.1) lies
// inside a tunnel route (10.100.0.0/16, as a peer's allowed_ips may): the kernel then
// routes unmarked traffic into the tunnel, traffic with the mark out of the uplink, and
// the main table's specific routes still win. Down, and Cleanup after a crash, leave no
// bondtun entry.
func TestSystemTunnelTable(t *testing.T) {
	enterFreshNetns(t)
	addUplink(t, "up0", "10.100.1.2/24")
	up0, err := netlink.LinkByName("up0")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: up0.Attrs().Index, Gw: net.ParseIP("10.100.1.1").To4()}); err != nil {
		t.Fatalf("default route: %v", err)
	}
	dev, name, err := tun.Create("bt%d", 1420)
	if err != nil {
		t.Skipf("cannot create TUN: %v", err)
	}
	defer dev.Close()
	plan := tablePlan
	plan.Device = name
	plan.Routes = append(plan.Routes, pfx("0.0.0.0/0"))
	nl := tun.SystemNetlink()
	h := tun.NewHost(nl, quiet)
	if err := h.Up(plan); err != nil {
		t.Fatalf("Up: %v", err)
	}
	via := func(dst string, mark uint32) string {
		t.Helper()
		routes, err := netlink.RouteGetWithOptions(net.ParseIP(dst), &netlink.RouteGetOptions{Mark: mark})
		if err != nil || len(routes) == 0 {
			t.Fatalf("route get %s mark %#x: %v", dst, mark, err)
		}
		l, err := netlink.LinkByIndex(routes[0].LinkIndex)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Name
	}
	for _, c := range []struct {
		dst  string
		mark uint32
		want string
	}{
		{"10.100.9.9", 0, name},          // the tunnel route over the outer network
		{"10.100.9.9", plan.Mark, "up0"}, // ... which the tunnel's own traffic never sees
		{"192.0.2.1", 0, name},           // the default route's halves
		{"192.0.2.1", plan.Mark, "up0"},
		{"10.100.1.7", 0, "up0"}, // main's specific route (the uplink's own network) wins
		{"10.99.0.5", plan.Mark, name},
	} {
		if got := via(c.dst, c.mark); got != c.want {
			t.Errorf("route to %s with mark %#x leaves through %s, want %s", c.dst, c.mark, got, c.want)
		}
	}
	if err := h.Down(); err != nil {
		t.Fatalf("Down: %v", err)
	}
	checkNoBondtunEntries(t)
	if got := via("10.100.9.9", 0); got != "up0" {
		t.Errorf("after Down the route to 10.100.9.9 goes through %s, want up0", got)
	}

	// A crash: the device goes with its fd, the rules stay; Cleanup removes them.
	if err := h.Up(plan); err != nil {
		t.Fatalf("Up again: %v", err)
	}
	dev.Close()
	if err := tun.Cleanup(nl, plan); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	checkNoBondtunEntries(t)
}
