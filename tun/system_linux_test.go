package tun_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bondtun/bondtun/tun"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// enterFreshNetns moves the test goroutine into a new, anonymous network
// namespace, or skips the test when that is impossible (not root, no
// CLONE_NEWNET). The goroutine stays locked to its thread and never unlocks,
// so when the test ends the runtime kills the thread and the namespace dies
// with its last user: nothing is left to delete, even after a t.Fatal.
// Netlink calls from this goroutine therefore act inside the namespace.
func enterFreshNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	if lo, err := netlink.LinkByName("lo"); err == nil {
		_ = netlink.LinkSetUp(lo)
	}
}

// addUplink creates an up interface with address addr to stand in for an
// uplink. It is a TUN device because the dummy and veth drivers may be
// missing from the test kernel; the device goes when the test ends.
func addUplink(t testing.TB, name, addr string) {
	t.Helper()
	dev, _, err := tun.CreatePlain(name, 1500)
	if err != nil {
		t.Skipf("cannot create TUN: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	// NODAD: a TUN device may still run duplicate address detection on an IPv6 address,
	// which stays tentative (and unusable as a source) for a while.
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: hostNet(addr), Flags: unix.IFA_F_NODAD}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	// Even so, an IPv6 address added while the link was down may stay tentative until the
	// kernel's address worker has run for the link coming up (asynchronously): wait for
	// that, or ResolveUplinkSource skips it now and then.
	want := hostNet(addr)
	if want.IP.To4() != nil {
		return
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if a.IP.Equal(want.IP) && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: address %s still tentative after 2 s", name, addr)
		}
	}
}

// TestSystemHost applies a client plan with the real netlink inside a fresh
// network namespace, checks the kernel's view, exercises the devices with a
// ping, and checks that Down and Cleanup remove everything.
func TestSystemHost(t *testing.T) {
	enterFreshNetns(t)
	addUplink(t, "up0", "10.100.1.2/24")
	addUplink(t, "up1", "10.100.2.2/24")
	nl := tun.SystemNetlink()

	dev, name, err := tun.Create("bt%d", 1420)
	if err != nil {
		t.Skipf("cannot create TUN: %v", err)
	}
	defer dev.Close()
	if dev.BatchSize() <= 1 {
		t.Errorf("vnet-hdr device BatchSize = %d, want offloads (> 1)", dev.BatchSize())
	}
	src0, err := tun.ResolveUplinkSource(nl, "up0")
	if err != nil || src0 != ip("10.100.1.2") {
		t.Fatalf("ResolveUplinkSource(up0) = %v, %v", src0, err)
	}
	plan := tun.Plan{
		Device: name, Addresses: []netip.Prefix{pfx("10.99.0.2/24")}, MTU: 1400,
		Routes: []netip.Prefix{pfx("0.0.0.0/0")},
		Uplinks: []tun.UplinkRoute{
			{Name: "cable", Interface: "up0", Source: src0, Gateway: ip("10.100.1.1"), Table: 51820},
			{Name: "ptp", Interface: "up1", Source: ip("10.100.2.2"), Table: 51821},
		},
	}
	h := tun.NewHost(nl, quiet)
	if err := h.Up(plan); err != nil {
		t.Fatalf("Up: %v", err)
	}
	checkApplied(t, plan)
	ping(t, dev, ip("10.99.0.1"), ip("10.99.0.2"))

	if err := h.Down(); err != nil {
		t.Fatalf("Down: %v", err)
	}
	checkNoBondtunEntries(t)
	if err := h.Down(); err != nil {
		t.Fatalf("second Down: %v", err)
	}

	// A crash: Up, then the process dies (the device goes with its fd) and
	// `bondtun down` runs Cleanup.
	if err := h.Up(plan); err != nil {
		t.Fatalf("Up again: %v", err)
	}
	dev.Close()
	if err := tun.Cleanup(nl, plan); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	checkNoBondtunEntries(t)
	if err := tun.Cleanup(nl, plan); err != nil {
		t.Fatalf("second Cleanup: %v", err)
	}
}

// TestSystemPlainDevice checks CreatePlain (no vnet header) end to end, and
// Cleanup deleting a device that still exists.
func TestSystemPlainDevice(t *testing.T) {
	enterFreshNetns(t)
	nl := tun.SystemNetlink()
	dev, name, err := tun.CreatePlain("bp%d", 1400)
	if err != nil {
		t.Skipf("cannot create TUN: %v", err)
	}
	defer dev.Close()
	if dev.BatchSize() != 1 {
		t.Errorf("plain device BatchSize = %d, want 1", dev.BatchSize())
	}
	plan := tun.Plan{Device: name, Addresses: []netip.Prefix{pfx("10.98.0.1/24")},
		Routes: []netip.Prefix{pfx("192.168.50.0/24")}}
	if err := tun.NewHost(nl, quiet).Up(plan); err != nil {
		t.Fatalf("Up: %v", err)
	}
	checkApplied(t, plan)
	ping(t, dev, ip("10.98.0.7"), ip("10.98.0.1"))
	if err := tun.Cleanup(nl, plan); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if _, err := netlink.LinkByName(name); err == nil {
		t.Errorf("device %s still exists after Cleanup", name)
	}
	checkNoBondtunEntries(t)
}

func checkApplied(t *testing.T, p tun.Plan) {
	t.Helper()
	link, err := netlink.LinkByName(p.Device)
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 || (p.MTU > 0 && link.Attrs().MTU != p.MTU) {
		t.Errorf("device %s: flags %v mtu %d, want up and mtu %d", p.Device, link.Attrs().Flags, link.Attrs().MTU, p.MTU)
	}
	addrs, _ := netlink.AddrList(link, netlink.FAMILY_ALL)
	for _, want := range p.Addresses {
		found := false
		for _, a := range addrs {
			found = found || a.IPNet.String() == want.String()
		}
		if !found {
			t.Errorf("address %v missing on %s: %v", want, p.Device, addrs)
		}
	}
	// Ask the kernel where packets go: inner traffic into the device,
	// traffic from an uplink's source through that uplink.
	for _, r := range p.Routes {
		dst := net.IP(r.Masked().Addr().Next().AsSlice())
		got, err := netlink.RouteGet(dst)
		if err != nil || len(got) == 0 || got[0].LinkIndex != link.Attrs().Index {
			t.Errorf("route get %v = %v, %v; want dev %s", dst, got, err, p.Device)
		}
	}
	for _, u := range p.Uplinks {
		ul, _ := netlink.LinkByName(u.Interface)
		got, err := netlink.RouteGetWithOptions(net.ParseIP("198.51.100.9"),
			&netlink.RouteGetOptions{SrcAddr: net.IP(u.Source.AsSlice())})
		if err != nil || len(got) == 0 || got[0].LinkIndex != ul.Attrs().Index ||
			(u.Gateway.IsValid() && !got[0].Gw.Equal(net.IP(u.Gateway.AsSlice()))) {
			t.Errorf("route get from %v = %v, %v; want dev %s via %v", u.Source, got, err, u.Interface, u.Gateway)
		}
	}
	rules, _ := netlink.RuleList(netlink.FAMILY_V4)
	n := 0
	for _, r := range rules {
		if r.Protocol == tun.RTProtBondtun {
			n++
		}
	}
	if n != len(p.Uplinks) {
		t.Errorf("%d bondtun rules, want %d: %v", n, len(p.Uplinks), rules)
	}
}

// checkNoBondtunEntries asserts that no route or rule carries bondtun's
// protocol number in any table.
func checkNoBondtunEntries(t *testing.T) {
	t.Helper()
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteListFiltered(family, &netlink.Route{Protocol: tun.RTProtBondtun},
			netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL) // Table 0 with the flag: all tables
		if err != nil || len(routes) != 0 {
			t.Errorf("bondtun routes left: %v %v", routes, err)
		}
		rules, err := netlink.RuleList(family)
		for _, r := range rules {
			if r.Protocol == tun.RTProtBondtun {
				t.Errorf("bondtun rule left: %v %v", r, err)
			}
		}
	}
}

// ping writes an ICMP echo request from peer to local into dev at
// tun.PacketOffset and waits for the kernel's echo reply.
func ping(t *testing.T, dev wgtun.Device, peer, local netip.Addr) {
	t.Helper()
	req := icmpEcho(peer, local, 0x4242, 7)
	buf := make([]byte, tun.PacketOffset+len(req), tun.PacketOffset+65535)
	copy(buf[tun.PacketOffset:], req)
	// Write returns bytes, not packets, and on a vnet-hdr device they
	// include the virtio-net header of each write(2).
	want := len(req)
	if dev.BatchSize() > 1 {
		want += tun.VirtioNetHdrLen
	}
	if n, err := dev.Write([][]byte{buf}, tun.PacketOffset); err != nil || n != want {
		t.Fatalf("Write = %d, %v; want %d bytes", n, err, want)
	}
	replies := make(chan []byte, 1)
	go func() {
		bufs := [][]byte{make([]byte, tun.PacketOffset+65535)}
		sizes := make([]int, 1)
		for range 20 { // skip unrelated packets such as IPv6 router solicitations
			n, err := dev.Read(bufs, sizes, tun.PacketOffset)
			if err != nil {
				break
			}
			if pkt := bufs[0][tun.PacketOffset : tun.PacketOffset+sizes[0]]; n == 1 && isEchoReply(pkt, 0x4242, 7) {
				replies <- pkt
				return
			}
		}
		close(replies)
	}()
	select {
	case pkt, ok := <-replies:
		if !ok {
			t.Fatal("device read ended without an echo reply")
		}
		if src, _ := netip.AddrFromSlice(pkt[12:16]); src != local {
			t.Errorf("reply from %v, want %v", src, local)
		}
	case <-time.After(10 * time.Second): // a hang guard only; a reply takes microseconds
		t.Fatal("no echo reply from the kernel")
	}
}

func icmpEcho(src, dst netip.Addr, id, seq uint16) []byte {
	p := make([]byte, 20+8+8)
	p[0], p[8], p[9] = 0x45, 64, unix.IPPROTO_ICMP
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:16], src.AsSlice())
	copy(p[16:20], dst.AsSlice())
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20]))
	icmp := p[20:]
	icmp[0] = 8 // echo request
	binary.BigEndian.PutUint16(icmp[4:], id)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	copy(icmp[8:], "bondtun!")
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	return p
}

func isEchoReply(p []byte, id, seq uint16) bool {
	return len(p) >= 28 && p[0]>>4 == 4 && p[9] == unix.IPPROTO_ICMP &&
		p[20] == 0 && binary.BigEndian.Uint16(p[24:]) == id && binary.BigEndian.Uint16(p[26:]) == seq
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// TestSystemHostIPv6 applies a dual-stack client plan with an IPv6 uplink
// and checks that the kernel routes the uplink's source through its table.
func TestSystemHostIPv6(t *testing.T) {
	enterFreshNetns(t)
	addUplink(t, "up0", "10.100.1.2/24")
	addUplink(t, "up1", "2001:db8:1::2/64") // without DAD (addUplink), usable at once
	nl := tun.SystemNetlink()
	dev, name, err := tun.Create("bt%d", 1420)
	if err != nil {
		t.Skipf("cannot create TUN: %v", err)
	}
	defer dev.Close()
	src6, err := tun.ResolveUplinkSource(nl, "up1")
	if err != nil || src6 != ip("2001:db8:1::2") {
		t.Fatalf("ResolveUplinkSource(up1) = %v, %v", src6, err)
	}
	plan := tun.Plan{
		Device: name, Addresses: []netip.Prefix{pfx("10.99.0.2/24"), pfx("fd00:99::2/64")},
		Routes: []netip.Prefix{pfx("0.0.0.0/0"), pfx("::/0")},
		Uplinks: []tun.UplinkRoute{
			{Name: "cable", Interface: "up0", Source: ip("10.100.1.2"), Gateway: ip("10.100.1.1"), Table: 51820},
			{Name: "fiber6", Interface: "up1", Source: src6, Gateway: ip("fe80::1"), Table: 51821},
		},
	}
	h := tun.NewHost(nl, quiet)
	if err := h.Up(plan); err != nil {
		t.Fatalf("Up: %v", err)
	}
	link, _ := netlink.LinkByName(name)
	up1, _ := netlink.LinkByName("up1")
	if got, err := netlink.RouteGet(net.ParseIP("2001:db8:ffff::1")); err != nil || len(got) == 0 || got[0].LinkIndex != link.Attrs().Index {
		t.Errorf("IPv6 route get = %v, %v; want dev %s", got, err, name)
	}
	got, err := netlink.RouteGetWithOptions(net.ParseIP("2001:db8:ffff::1"),
		&netlink.RouteGetOptions{SrcAddr: net.ParseIP("2001:db8:1::2")})
	if err != nil || len(got) == 0 || got[0].LinkIndex != up1.Attrs().Index || !got[0].Gw.Equal(net.ParseIP("fe80::1")) {
		t.Errorf("IPv6 route get from uplink = %v, %v; want via fe80::1 dev up1", got, err)
	}
	if err := h.Down(); err != nil {
		t.Fatalf("Down: %v", err)
	}
	checkNoBondtunEntries(t)
}

// TestSystemRouteOwnership checks the route ownership rules against the real kernel in a
// fresh namespace: "ip route add" refuses a route the administrator made to an inner
// destination (Up fails and leaves it), and a bondtun-marked leftover in the instance's
// own uplink table is replaced (a crash left it, the route is found with the kernel's
// own representation of a default route), as is the kernel's prefix route of the device's
// address when an inner route has that prefix.
func TestSystemRouteOwnership(t *testing.T) {
	enterFreshNetns(t)
	addUplink(t, "up0", "10.100.1.2/24")
	nl := tun.SystemNetlink()
	dev, name, err := tun.Create("bt%d", 1420)
	if err != nil {
		t.Skipf("cannot create TUN: %v", err)
	}
	defer dev.Close()
	up0, err := netlink.LinkByName("up0")
	if err != nil {
		t.Fatal(err)
	}
	plan := tun.Plan{
		Device: name, Addresses: []netip.Prefix{pfx("10.99.0.2/24")},
		Routes:  []netip.Prefix{pfx("192.168.50.0/24"), pfx("10.99.0.0/24")}, // the second is the address's prefix
		Uplinks: []tun.UplinkRoute{{Name: "cable", Interface: "up0", Source: ip("10.100.1.2"), Gateway: ip("10.100.1.1"), Table: 7350}},
	}

	admin := &netlink.Route{LinkIndex: up0.Attrs().Index, Dst: mustIPNet("192.168.50.0/24"),
		Gw: net.ParseIP("10.100.1.9").To4(), Protocol: unix.RTPROT_STATIC}
	if err := netlink.RouteAdd(admin); err != nil {
		t.Fatal(err)
	}
	h := tun.NewHost(nl, quiet)
	if err := h.Up(plan); err == nil || !strings.Contains(err.Error(), "was not made by this bondtun") {
		t.Fatalf("Up over the administrator's route: %v", err)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: admin.Dst}, netlink.RT_FILTER_DST)
	if err != nil || len(routes) != 1 || routes[0].Protocol != unix.RTPROT_STATIC || !routes[0].Gw.Equal(admin.Gw) {
		t.Fatalf("the administrator's route changed: %+v, %v", routes, err)
	}
	if err := netlink.RouteDel(admin); err != nil {
		t.Fatal(err)
	}

	leftover := &netlink.Route{LinkIndex: up0.Attrs().Index, Dst: mustIPNet("0.0.0.0/0"), Gw: net.ParseIP("10.100.1.7").To4(),
		Table: 7350, Protocol: tun.RTProtBondtun}
	if err := netlink.RouteAdd(leftover); err != nil {
		t.Fatal(err)
	}
	if err := h.Up(plan); err != nil {
		t.Fatalf("Up over its own leftover: %v", err)
	}
	routes, err = netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 7350}, netlink.RT_FILTER_TABLE)
	if err != nil || len(routes) != 1 || !routes[0].Gw.Equal(net.ParseIP("10.100.1.1")) {
		t.Fatalf("table 7350 after Up: %+v, %v; want only the plan's default route", routes, err)
	}
	if err := h.Down(); err != nil {
		t.Fatal(err)
	}
	checkNoBondtunEntries(t)
}
