package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/session"
	"github.com/bondtun/bondtun/tun"
)

// clientYAML is a client file with the given uplinks (YAML list items, indented).
func clientYAML(uplinks ...string) string {
	return "version: 1\nprivate_key: \"J/DdsyCDTAQBOGRTyiaM7lMsmBby6yMtqJ0hB+HNoGg=\"\n" +
		"tun:\n  addresses: [10.77.0.2/24]\nuplinks:\n" + strings.Join(uplinks, "") +
		"peers:\n  - name: server\n    public_key: \"ndeZ8zsM+51YbbCCrnJMDOy+Y4ISDlw4Oi8ELyGIh3w=\"\n" +
		"    endpoint: 10.99.0.1:7350\n    allowed_ips: [10.77.0.0/24]\n"
}

func parseClient(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("client.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const (
	upCable = "  - {name: cable, interface: up0, address: 10.100.1.2, gateway: 10.100.1.1, table: 100}\n"
	upDSL   = "  - {name: dsl, interface: up1, gateway: 10.100.2.1, table: 101}\n"
	upLTE   = "  - {name: lte, interface: wwan0, table: 102}\n"
)

// TestPlanReloadUplinks: uplinks are told apart by name; a changed one is removed and
// added, a tier change is only that, a disabled one is absent, and the other keys of a
// client's file that a reload may change are not refused.
func TestPlanReloadUplinks(t *testing.T) {
	cur := parseClient(t, clientYAML(upCable, upDSL))
	cases := []struct {
		name                   string
		next                   string
		added, removed, tiered string
	}{
		{"unchanged", clientYAML(upCable, upDSL), "[]", "[]", "[]"},
		{"one added", clientYAML(upCable, upDSL, upLTE), "[lte]", "[]", "[]"},
		{"one removed", clientYAML(upDSL), "[]", "[cable]", "[]"},
		{"moved in the file", clientYAML(upDSL, upCable), "[]", "[]", "[]"},
		{"gateway changed", clientYAML(upCable, strings.Replace(upDSL, "10.100.2.1", "10.100.2.254", 1)), "[dsl]", "[dsl]", "[]"},
		{"tier changed", clientYAML(upCable, strings.Replace(upDSL, "}", ", tier: backup}", 1)), "[]", "[]", "[dsl]"},
		{"disabled", clientYAML(upCable, strings.Replace(upDSL, "}", ", tier: disabled}", 1)), "[]", "[dsl]", "[]"},
		{"replaced", clientYAML(upLTE), "[lte]", "[cable dsl]", "[]"},
	}
	for _, tc := range cases {
		p, err := planReload(cur, parseClient(t, tc.next))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := fmt.Sprint(p.UplinksAdded, p.UplinksRemoved, p.UplinkTiers)
		if want := fmt.Sprint(tc.added, " ", tc.removed, " ", tc.tiered); got != want {
			t.Errorf("%s: added, removed, tiers = %s, want %s", tc.name, got, want)
		}
	}
	// Without explicit tables, removing the first uplink renumbers the second's table:
	// it is replaced too.
	a := parseClient(t, strings.NewReplacer(", table: 100", "", ", table: 101", "").Replace(clientYAML(upCable, upDSL)))
	b := parseClient(t, strings.NewReplacer(", table: 101", "").Replace(clientYAML(upDSL)))
	p, err := planReload(a, b)
	if err != nil || fmt.Sprint(p.UplinksAdded, p.UplinksRemoved) != "[dsl] [cable dsl]" {
		t.Errorf("first of two implicit-table uplinks removed: %+v, %v; want dsl replaced", p, err)
	}
	if s := p.summary(); !strings.Contains(s, "uplinks added 1 (dsl); uplinks removed 2 (cable, dsl)") {
		t.Errorf("summary %q", s)
	}
}

// fakeUplinks records a client reload's calls to the host and the session, and fails the
// calls named in failOn.
type fakeUplinks struct {
	calls  []string
	failOn string
}

func (f *fakeUplinks) do(call string) error {
	f.calls = append(f.calls, call)
	if call == f.failOn {
		return errors.New("injected: " + call)
	}
	return nil
}

func (f *fakeUplinks) SetRoutes(r []netip.Prefix) (int, int, error) {
	return 0, 0, f.do(fmt.Sprint("routes ", r))
}
func (f *fakeUplinks) SetServer(session.ServerTarget) { f.do("server") }
func (f *fakeUplinks) AddUplink(u tun.UplinkRoute) error {
	return f.do(fmt.Sprintf("host add %s %v table %d", u.Name, u.Source, u.Table))
}
func (f *fakeUplinks) RemoveUplink(name string) error { return f.do("remove " + name) }
func (f *fakeUplinks) SetTier(name string, tier uint8) error {
	return f.do(fmt.Sprintf("tier %s %d", name, tier))
}

// fakeSession is the session side of fakeUplinks (AddUplink takes another type).
type fakeSession struct{ *fakeUplinks }

func (f fakeSession) AddUplink(u session.UplinkConfig) error {
	return f.do(fmt.Sprintf("session add %s %v follow=%v", u.Name, u.Source, u.FollowAddress))
}
func (f fakeSession) RemoveUplink(name string) error { return f.do("session remove " + name) }

// TestClientApplyUplinks: the reload removes (session, then host), adds (host, then
// session; an interface-only uplink's source resolved), and on a failure undoes what it did,
// newest first, routes included.
func TestClientApplyUplinks(t *testing.T) {
	cur := parseClient(t, clientYAML(upCable, upDSL))
	next := parseClient(t, clientYAML(upDSL, upLTE))
	p, err := planReload(cur, next)
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(iface string) netip.Addr {
		if iface == "wwan0" {
			return netip.MustParseAddr("100.64.0.9")
		}
		return netip.Addr{}
	}
	f := &fakeUplinks{}
	apply := clientApply(f, struct {
		serverSetter
		uplinkClient
	}{f, fakeSession{f}}, tun.Plan{}, resolve, slog.New(slog.DiscardHandler))
	if err := apply(cur, next, p); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"routes [10.77.0.0/24]",
		"session remove cable", "remove cable",
		"host add lte 100.64.0.9 table 102", "session add lte 100.64.0.9 follow=true",
	}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}

	f = &fakeUplinks{failOn: "session add lte 100.64.0.9 follow=true"}
	apply = clientApply(f, struct {
		serverSetter
		uplinkClient
	}{f, fakeSession{f}}, tun.Plan{}, resolve, slog.New(slog.DiscardHandler))
	if err := apply(cur, next, p); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("apply = %v, want the injected error", err)
	}
	want = []string{
		"routes [10.77.0.0/24]",
		"session remove cable", "remove cable",
		"host add lte 100.64.0.9 table 102", "session add lte 100.64.0.9 follow=true", "remove lte",
		// undone: cable back, then the routes
		"host add cable 10.100.1.2 table 100", "session add cable 10.100.1.2 follow=false",
		"routes [10.77.0.0/24]",
	}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls after a failure:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
}

// TestClientApplyUplinkTiersUndone: a tier switch that fails undoes the switches before it
// (back to the running file's tiers), newest first, as additions and removals are.
func TestClientApplyUplinkTiersUndone(t *testing.T) {
	backup := func(u string) string { return strings.Replace(u, "}", ", tier: backup}", 1) }
	cur := parseClient(t, clientYAML(upCable, upDSL))
	next := parseClient(t, clientYAML(backup(upCable), backup(upDSL)))
	p, err := planReload(cur, next)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUplinks{failOn: "tier dsl 1"}
	apply := clientApply(f, struct {
		serverSetter
		uplinkClient
	}{f, fakeSession{f}}, tun.Plan{}, nil, slog.New(slog.DiscardHandler))
	if err := apply(cur, next, p); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("apply = %v, want the injected error", err)
	}
	want := []string{
		"routes [10.77.0.0/24]",
		"tier cable 1", "tier dsl 1",
		"tier cable 0", // undone
		"routes [10.77.0.0/24]",
	}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls after a failure:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
}
