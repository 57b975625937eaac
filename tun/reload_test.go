package tun_test

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bondtun/bondtun/tun"
)

func TestDiffRoutes(t *testing.T) {
	add, del := tun.DiffRoutes(
		[]netip.Prefix{pfx("10.77.0.2/32"), pfx("10.77.0.3/32"), pfx("0.0.0.0/0")},
		[]netip.Prefix{pfx("10.77.0.2/32"), pfx("10.77.0.4/32"), pfx("0.0.0.0/1"), pfx("192.168.1.7/24")},
	)
	if want := []netip.Prefix{pfx("10.77.0.4/32"), pfx("192.168.1.0/24")}; !slices.Equal(add, want) {
		t.Errorf("add = %v, want %v", add, want)
	}
	// 0.0.0.0/1 stays: the old default route was installed as its two halves.
	if want := []netip.Prefix{pfx("10.77.0.3/32"), pfx("128.0.0.0/1")}; !slices.Equal(del, want) {
		t.Errorf("del = %v, want %v", del, want)
	}
	if add, del := tun.DiffRoutes([]netip.Prefix{pfx("fd00::/64")}, []netip.Prefix{pfx("fd00::1/64")}); add != nil || del != nil {
		t.Errorf("the same prefix, masked differently: add %v, del %v", add, del)
	}
}

func serverPlan(routes ...string) tun.Plan {
	p := tun.Plan{Device: "bt0", Addresses: []netip.Prefix{pfx("10.77.0.1/24")}}
	for _, r := range routes {
		p.Routes = append(p.Routes, pfx(r))
	}
	return p
}

func TestSetRoutes(t *testing.T) {
	f := newHostFake()
	before := f.Dump()
	h := tun.NewHost(f, quiet)
	if err := h.Up(serverPlan("10.78.0.2/32", "10.78.0.3/32")); err != nil {
		t.Fatal(err)
	}
	f.Ops()
	added, removed, err := h.SetRoutes([]netip.Prefix{pfx("10.78.0.2/32"), pfx("10.78.0.4/32")})
	if err != nil || added != 1 || removed != 1 {
		t.Fatalf("SetRoutes = %d, %d, %v; want 1 added, 1 removed", added, removed, err)
	}
	want := []string{
		"ip route add 10.78.0.4/32 dev bt0 proto bondtun",
		"ip route del 10.78.0.3/32 dev bt0 proto bondtun",
	}
	if got := f.Ops(); !slices.Equal(got, want) {
		t.Errorf("ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := h.Routes(); !slices.Equal(got, []netip.Prefix{pfx("10.78.0.2/32"), pfx("10.78.0.4/32")}) {
		t.Errorf("Routes() = %v", got)
	}
	// Nothing changes: no call.
	if _, _, err := h.SetRoutes([]netip.Prefix{pfx("10.78.0.4/32"), pfx("10.78.0.2/32")}); err != nil {
		t.Fatal(err)
	}
	if got := f.Ops(); len(got) != 0 {
		t.Errorf("an unchanged set made calls: %v", got)
	}
	// Down removes what SetRoutes added, and not what it removed.
	if err := h.Down(); err != nil {
		t.Fatal(err)
	}
	if got := f.Dump(); stripMTU(got) != stripMTU(before) {
		t.Errorf("after Down:\n%s\nwant\n%s", got, before)
	}
}

// TestSetRoutesAllOrNothing: an addition that fails (an administrator's route to the
// prefix) undoes the additions before it and keeps the running routes.
func TestSetRoutesAllOrNothing(t *testing.T) {
	f := newHostFake()
	h := tun.NewHost(f, quiet)
	if err := h.Up(serverPlan("10.78.0.2/32")); err != nil {
		t.Fatal(err)
	}
	f.AddRoute(netlink.Route{LinkIndex: 2, Dst: mustIPNet("10.78.0.9/32"), Gw: net.ParseIP("10.100.1.9").To4(), Protocol: unix.RTPROT_STATIC})
	running := f.Dump()
	_, _, err := h.SetRoutes([]netip.Prefix{pfx("10.78.0.5/32"), pfx("10.78.0.9/32")})
	if err == nil || !strings.Contains(err.Error(), "was not made by this bondtun") {
		t.Fatalf("SetRoutes error %v, want the administrator's route named", err)
	}
	if got := f.Dump(); got != running {
		t.Errorf("a refused SetRoutes changed the host:\n%s\nwant\n%s", got, running)
	}
	if got := h.Routes(); !slices.Equal(got, []netip.Prefix{pfx("10.78.0.2/32")}) {
		t.Errorf("Routes() = %v after a refused change", got)
	}
}

// TestSetRoutesDeferDefault: with DeferDefault (tun.while_down: direct), a default route a
// reload adds while the tunnel is down waits for SetDefaultRoutes(true) like the one at Up,
// one it removes is no longer added back, a /1 half that becomes a route of its own is
// installed at once, and Down leaves the host as it was.
func TestSetRoutesDeferDefault(t *testing.T) {
	f := newHostFake()
	before := f.Dump()
	plan := tun.Plan{
		Device: "bt0", Addresses: []netip.Prefix{pfx("10.99.0.2/24")},
		Routes:       []netip.Prefix{pfx("10.77.0.0/24")},
		Uplinks:      []tun.UplinkRoute{{Name: "cable", Interface: "up0", Source: ip("10.100.1.2"), Gateway: ip("10.100.1.1"), Table: 7350}},
		DeferDefault: true,
	}
	h := tun.NewHost(f, quiet)
	if err := h.Up(plan); err != nil {
		t.Fatal(err)
	}
	f.Ops()
	expect := func(what string, want ...string) {
		t.Helper()
		got := f.Ops()
		slices.Sort(got) // the halves in either order
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: ops\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// Down: the reload's default route waits.
	if _, _, err := h.SetRoutes([]netip.Prefix{pfx("10.77.0.0/24"), pfx("0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	expect("default route added while down")
	if err := h.SetDefaultRoutes(true); err != nil {
		t.Fatal(err)
	}
	expect("session up", "ip route add 0.0.0.0/1 dev bt0 proto bondtun", "ip route add 128.0.0.0/1 dev bt0 proto bondtun")
	if err := h.SetDefaultRoutes(false); err != nil {
		t.Fatal(err)
	}
	expect("session down", "ip route del 0.0.0.0/1 dev bt0 proto bondtun", "ip route del 128.0.0.0/1 dev bt0 proto bondtun")
	// 0.0.0.0/1 on its own is an ordinary inner route: in place while down.
	if _, _, err := h.SetRoutes([]netip.Prefix{pfx("10.77.0.0/24"), pfx("0.0.0.0/1")}); err != nil {
		t.Fatal(err)
	}
	ops := f.Ops()
	if !slices.Contains(ops, "ip route add 0.0.0.0/1 dev bt0 proto bondtun") || slices.Contains(ops, "ip route add 128.0.0.0/1 dev bt0 proto bondtun") {
		t.Fatalf("default route replaced by 0.0.0.0/1 while down: ops\n%s", strings.Join(ops, "\n"))
	}
	if err := h.SetDefaultRoutes(true); err != nil {
		t.Fatal(err)
	}
	expect("session up without a default route")
	// Up: a default route added now goes in at once; while down it is taken out again.
	if _, _, err := h.SetRoutes([]netip.Prefix{pfx("10.77.0.0/24"), pfx("0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	expect("default route added while up", "ip route add 128.0.0.0/1 dev bt0 proto bondtun")
	if err := h.SetDefaultRoutes(false); err != nil {
		t.Fatal(err)
	}
	expect("session down again", "ip route del 0.0.0.0/1 dev bt0 proto bondtun", "ip route del 128.0.0.0/1 dev bt0 proto bondtun")
	// Removed while down: a session coming up does not add it back.
	if _, _, err := h.SetRoutes([]netip.Prefix{pfx("10.77.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	f.Ops()
	if err := h.SetDefaultRoutes(true); err != nil {
		t.Fatal(err)
	}
	expect("session up after the default route's removal")
	if err := h.Down(); err != nil {
		t.Fatal(err)
	}
	if got := f.Dump(); stripMTU(got) != stripMTU(before) {
		t.Errorf("after Down:\n%s\nwant\n%s", got, before)
	}
}

// DiffRoutes is the difference of two sets of inner routes, sorted.
func TestDiffRoutesIsSetDifference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	random := func() []netip.Prefix {
		out := make([]netip.Prefix, r.IntN(12))
		for i := range out {
			if r.IntN(3) == 0 {
				out[i] = netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 15: byte(r.IntN(4))}), []int{0, 64, 126, 128}[r.IntN(4)])
			} else {
				out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(8))}), []int{0, 1, 30, 32}[r.IntN(4)])
			}
		}
		return out
	}
	set := func(ps []netip.Prefix) map[netip.Prefix]bool {
		m := map[netip.Prefix]bool{}
		for _, p := range ps { // as installed: masked, a default route as its two halves
			switch p = p.Masked(); {
			case p.Bits() != 0:
				m[p] = true
			case p.Addr().Is4():
				m[pfx("0.0.0.0/1")], m[pfx("128.0.0.0/1")] = true, true
			default:
				m[pfx("::/1")], m[pfx("8000::/1")] = true, true
			}
		}
		return m
	}
	minus := func(a, b map[netip.Prefix]bool) []netip.Prefix {
		var out []netip.Prefix
		for p := range a {
			if !b[p] {
				out = append(out, p)
			}
		}
		slices.SortFunc(out, func(x, y netip.Prefix) int {
			if c := x.Addr().Compare(y.Addr()); c != 0 {
				return c
			}
			return x.Bits() - y.Bits()
		})
		return out
	}
	for range 3000 {
		old, next := random(), random()
		add, del := tun.DiffRoutes(old, next)
		if want := minus(set(next), set(old)); !slices.Equal(add, want) {
			t.Fatalf("DiffRoutes(%v, %v): add %v, want %v", old, next, add, want)
		}
		if want := minus(set(old), set(next)); !slices.Equal(del, want) {
			t.Fatalf("DiffRoutes(%v, %v): del %v, want %v", old, next, del, want)
		}
	}
}
