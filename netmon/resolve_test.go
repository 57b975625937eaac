package netmon

import (
	"net/netip"
	"testing"
)

type fakeIface struct {
	up    bool
	addrs []netip.Prefix
}

func fakeView(m map[string]fakeIface) func(string) (bool, []netip.Prefix) {
	return func(name string) (bool, []netip.Prefix) {
		f, ok := m[name]
		if !ok {
			return false, nil
		}
		return f.up, f.addrs
	}
}

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func TestResolve(t *testing.T) {
	a := netip.MustParseAddr
	specs := []UplinkSpec{
		{Name: "cable", Interface: "eth0"},
		{Name: "dsl", Interface: "eth1", Address: a("192.168.2.10")},
	}
	tests := []struct {
		name  string
		specs []UplinkSpec
		ifs   map[string]fakeIface
		want  []UplinkState
	}{
		{"both usable", specs, map[string]fakeIface{
			"eth0": {true, pfx("10.0.0.2/24")},
			"eth1": {true, pfx("192.168.2.9/24", "192.168.2.10/24")},
		}, []UplinkState{{"cable", true, a("10.0.0.2")}, {"dsl", true, a("192.168.2.10")}}},
		{"address not there yet", specs, map[string]fakeIface{
			"eth0": {true, nil},
			"eth1": {true, pfx("192.168.2.9/24")},
		}, []UplinkState{{"cable", false, netip.Addr{}}, {"dsl", false, netip.Addr{}}}},
		{"address appears", specs, map[string]fakeIface{
			"eth0": {true, pfx("10.0.0.2/24")},
			"eth1": {true, pfx("192.168.2.10/24")},
		}, []UplinkState{{"cable", true, a("10.0.0.2")}, {"dsl", true, a("192.168.2.10")}}},
		{"DHCP renumbering: old still first", specs[:1], map[string]fakeIface{
			"eth0": {true, pfx("10.0.0.2/24", "10.0.5.7/24")},
		}, []UplinkState{{"cable", true, a("10.0.0.2")}}},
		{"DHCP renumbering: old removed", specs[:1], map[string]fakeIface{
			"eth0": {true, pfx("10.0.5.7/24")},
		}, []UplinkState{{"cable", true, a("10.0.5.7")}}},
		{"link down", specs, map[string]fakeIface{
			"eth0": {false, pfx("10.0.0.2/24")},
			"eth1": {false, pfx("192.168.2.10/24")},
		}, []UplinkState{{"cable", false, netip.Addr{}}, {"dsl", false, netip.Addr{}}}},
		{"interface missing", specs, map[string]fakeIface{}, []UplinkState{{"cable", false, netip.Addr{}}, {"dsl", false, netip.Addr{}}}},
		{"IPv6 only", specs[:1], map[string]fakeIface{
			"eth0": {true, pfx("fe80::1/64", "2001:db8::5/64")},
		}, []UplinkState{{"cable", true, a("2001:db8::5")}}},
		{"IPv4 preferred over earlier IPv6", specs[:1], map[string]fakeIface{
			"eth0": {true, pfx("2001:db8::5/64", "10.0.0.2/24")},
		}, []UplinkState{{"cable", true, a("10.0.0.2")}}},
		{"link-local only", specs[:1], map[string]fakeIface{
			"eth0": {true, pfx("fe80::1/64", "169.254.3.4/16")},
		}, []UplinkState{{"cable", false, netip.Addr{}}}},
		{"link-local skipped", specs[:1], map[string]fakeIface{
			"eth0": {true, pfx("169.254.3.4/16", "fe80::1/64", "100.64.1.2/10")},
		}, []UplinkState{{"cable", true, a("100.64.1.2")}}},
		{"configured IPv6 address", []UplinkSpec{{Name: "lte", Interface: "wwan0", Address: a("2001:db8::9")}}, map[string]fakeIface{
			"wwan0": {true, pfx("2001:db8::5/64", "2001:db8::9/64")},
		}, []UplinkState{{"lte", true, a("2001:db8::9")}}},
		{"configured link-local address is honoured", []UplinkSpec{{Name: "x", Interface: "eth9", Address: a("fe80::7")}}, map[string]fakeIface{
			"eth9": {true, pfx("fe80::7/64")},
		}, []UplinkState{{"x", true, a("fe80::7")}}},
		{"no specs", nil, nil, []UplinkState{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resolve(tt.specs, fakeView(tt.ifs))
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("[%d] got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestAppendResolveAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	specs := []UplinkSpec{{Name: "a", Interface: "eth0"}, {Name: "b", Interface: "eth1"}}
	view := fakeView(map[string]fakeIface{"eth0": {true, pfx("fe80::1/64", "10.0.0.2/24")}, "eth1": {true, pfx("2001:db8::1/64")}})
	dst := make([]UplinkState, 0, len(specs))
	if n := testing.AllocsPerRun(100, func() { dst = AppendResolve(dst[:0], specs, view) }); n != 0 {
		t.Fatalf("AppendResolve allocates %v times", n)
	}
}

func BenchmarkAppendResolve(b *testing.B) {
	specs := []UplinkSpec{{Name: "a", Interface: "eth0"}, {Name: "b", Interface: "eth1"}}
	view := fakeView(map[string]fakeIface{"eth0": {true, pfx("fe80::1/64", "10.0.0.2/24")}, "eth1": {true, pfx("2001:db8::1/64")}})
	dst := make([]UplinkState, 0, len(specs))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendResolve(dst[:0], specs, view)
	}
}
