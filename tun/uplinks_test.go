package tun_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/tun"
)

// TestAddRemoveUplink: a reload's uplink added to a running host gets its table route and
// rule (the next free preference), one removed loses exactly its own, the other uplink's
// are never touched, one not ready is added without them and installed by RefreshUplink,
// and Down leaves the host as before.
func TestAddRemoveUplink(t *testing.T) {
	f := newHostFake()
	before := f.Dump()
	h := tun.NewHost(f, quiet)
	plan := hostCases[0].plan
	plan.Uplinks = plan.Uplinks[:1] // cable only
	dsl := hostCases[0].plan.Uplinks[1]
	if err := h.AddUplink(dsl); err == nil {
		t.Fatal("AddUplink before Up succeeded")
	}
	if err := h.Up(plan); err != nil {
		t.Fatal(err)
	}
	f.Ops()
	if err := h.AddUplink(dsl); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ip route add default via 10.100.2.1 dev up1 table 51821 proto bondtun",
		"ip rule add from 10.100.2.2 lookup 51821 pref 10001 proto bondtun",
	}
	if got := f.Ops(); !slices.Equal(got, want) {
		t.Errorf("AddUplink ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, bad := range []tun.UplinkRoute{
		dsl, // the name is taken
		{Name: "lte", Interface: "up1", Source: ip("10.100.2.3"), Table: 51821}, // the table is
	} {
		if err := h.AddUplink(bad); err == nil {
			t.Errorf("AddUplink(%+v) succeeded", bad)
		}
	}
	if got := f.Ops(); len(got) != 0 {
		t.Errorf("refused additions made calls: %v", got)
	}

	// Removing cable frees preference 10000, which the next uplink takes.
	if err := h.RemoveUplink("cable"); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"ip rule del from 10.100.1.2 lookup 51820 pref 10000 proto bondtun",
		"ip route del default via 10.100.1.1 dev up0 table 51820 proto bondtun",
	}
	if got := f.Ops(); !slices.Equal(got, want) {
		t.Errorf("RemoveUplink ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := h.RemoveUplink("cable"); err == nil {
		t.Error("a second RemoveUplink succeeded")
	}
	// An uplink without its address yet: in the plan, nothing installed until it has one.
	lte := tun.UplinkRoute{Name: "lte", Interface: "up0", Table: 51830}
	if err := h.AddUplink(lte); err != nil {
		t.Fatal(err)
	}
	if got := f.Ops(); len(got) != 0 {
		t.Errorf("an uplink without an address made calls: %v", got)
	}
	if err := h.RefreshUplink("lte", ip("10.100.1.9")); err != nil {
		t.Fatal(err)
	}
	ops := strings.Join(f.Ops(), "\n")
	if !strings.Contains(ops, "rule add from 10.100.1.9 lookup 51830 pref 10000") {
		t.Errorf("RefreshUplink of the added uplink:\n%s", ops)
	}
	names := func() (out []string) {
		for _, u := range h.Uplinks() {
			out = append(out, u.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"dsl", "lte"}) {
		t.Errorf("Uplinks() = %v", got)
	}
	if err := h.RemoveUplink("lte"); err != nil {
		t.Fatal(err)
	}
	if err := h.Down(); err != nil {
		t.Fatal(err)
	}
	if got := f.Dump(); stripMTU(got) != stripMTU(before) {
		t.Errorf("after Down:\n%s\nwant\n%s", got, before)
	}
}
