package tun

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var gwQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func gwPlan() GatewayPlan {
	return GatewayPlan{
		Device: "bt0", MTU: 1420, Out: []string{"eth0", "wwan0"},
		Forward4: true, Forward6: true, NAT4: true,
		Peers: []netip.Prefix{netip.MustParsePrefix("10.77.0.3/32"), netip.MustParsePrefix("10.77.0.2/32"),
			netip.MustParsePrefix("fd77::2/128"), netip.MustParsePrefix("10.78.1.0/24")},
	}
}

// TestGatewayScript holds the nft script to its exact text: IPv4 masqueraded out of two
// interfaces, IPv6 routed.
func TestGatewayScript(t *testing.T) {
	got := gwPlan().Script(map[string]string{SysctlForwardIPv4: "0", SysctlForwardIPv6: "1"})
	want := `add table inet bondtun_bt0
delete table inet bondtun_bt0
table inet bondtun_bt0 {
	comment "bondtun gateway of bt0; saved net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=1"
	set peers4 {
		type ipv4_addr
		flags interval
		elements = { 10.77.0.2/32, 10.77.0.3/32, 10.78.1.0/24 }
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		oifname "bt0" tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu
		iifname "bt0" meta nfproto ipv4 tcp flags & (syn | rst) == syn tcp option maxseg size > 1380 tcp option maxseg size set 1380
		iifname "bt0" meta nfproto ipv6 tcp flags & (syn | rst) == syn tcp option maxseg size > 1360 tcp option maxseg size set 1360
		iifname { "eth0", "wwan0" } oifname "bt0" meta nfproto ipv4 ct state != { established, related } drop
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr @peers4 oifname { "eth0", "wwan0" } masquerade
	}
}
`
	if got != want {
		t.Errorf("script:\n%s\nwant:\n%s", got, want)
	}
}

// TestGatewayScriptAnyInterface: without out, every interface but the tunnel is the
// outside; both families masqueraded.
func TestGatewayScriptAnyInterface(t *testing.T) {
	p := gwPlan()
	p.Out, p.NAT6 = nil, true
	got := p.Script(map[string]string{SysctlForwardIPv4: "0", SysctlForwardIPv6: "0"})
	for _, line := range []string{
		"\t\tiifname != \"bt0\" oifname \"bt0\" meta nfproto ipv6 ct state != { established, related } drop\n",
		"\t\tip saddr @peers4 oifname != \"bt0\" masquerade\n",
		"\t\tip6 saddr @peers6 oifname != \"bt0\" masquerade\n",
		"\t\telements = { fd77::2/128 }\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("script lacks %q:\n%s", line, got)
		}
	}
	// No IPv6 peer: no empty set (nft refuses "elements = { }") and no rule using it.
	p.Peers = p.Peers[:2]
	got = p.Script(nil)
	if strings.Contains(got, "peers6") || strings.Contains(got, "{  }") {
		t.Errorf("script without IPv6 peers:\n%s", got)
	}
}

func TestGatewayPlanValidate(t *testing.T) {
	if err := gwPlan().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*GatewayPlan){
		"quote in device":  func(p *GatewayPlan) { p.Device = `bt0" accept` },
		"out is device":    func(p *GatewayPlan) { p.Out = []string{"bt0"} },
		"brace in out":     func(p *GatewayPlan) { p.Out = []string{"eth0}"} },
		"nothing":          func(p *GatewayPlan) { p.Forward4, p.Forward6, p.NAT4 = false, false, false },
		"nat unforwarded":  func(p *GatewayPlan) { p.Forward4 = false },
		"invalid prefix":   func(p *GatewayPlan) { p.Peers = append(p.Peers, netip.Prefix{}) },
		"mtu out of range": func(p *GatewayPlan) { p.MTU = 70000 },
	} {
		p := gwPlan()
		mutate(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate passed", name)
		}
	}
}

// Real nft 1.0.6 output.
const nftListTables = "table inet filter\ntable inet bondtun_bt0\ntable ip nat\ntable inet bondtun_bt-1.x\ntable ip bondtun_ip\n"
const nftListTable = `table inet bondtun_bt0 {
	comment "bondtun gateway of bt0; saved net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=1"
	set peers4 {
		type ipv4_addr
`

func TestGatewayParsing(t *testing.T) {
	if got := parseTables(nftListTables, "inet"); !reflect.DeepEqual(got, []string{"bondtun_bt0", "bondtun_bt-1.x"}) {
		t.Errorf("parseTables = %q", got)
	}
	c, ok := parseTableComment(nftListTable)
	if !ok || c != "bondtun gateway of bt0; saved net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=1" {
		t.Fatalf("parseTableComment = %q, %v", c, ok)
	}
	if got := gatewayKind.parseSaved(c); !reflect.DeepEqual(got, map[string]string{SysctlForwardIPv4: "0", SysctlForwardIPv6: "1"}) {
		t.Errorf("parseSavedComment = %v", got)
	}
	if _, ok := parseTableComment("table inet x {\n\tchain c {\n"); ok {
		t.Error("a table without a comment has one")
	}
	// Only the forwarding sysctls with small decimal values: they are written to /proc/sys.
	got := gatewayKind.parseSaved("x; saved net.ipv4.ip_forward=1;rm net.ipv6.conf.all.forwarding=1234 kernel.panic=1 net.ipv4.ip_forward")
	if len(got) != 0 {
		t.Errorf("parseSavedComment of garbage = %v", got)
	}
}

// fakeHost is nft and /proc/sys in memory: tables as scripts, sysctls as a map.
type fakeHost struct {
	tables  map[string]string // "FAMILY NAME" -> `nft list table` text
	sysctls map[string]string
	failSet string // a sysctl whose Set fails
	calls   []string
}

func newFakeHost() *fakeHost {
	return &fakeHost{tables: map[string]string{}, sysctls: map[string]string{SysctlForwardIPv4: "0", SysctlForwardIPv6: "0"}}
}

func (f *fakeHost) Get(name string) (string, error) {
	v, ok := f.sysctls[name]
	if !ok {
		return "", errors.New("no such sysctl")
	}
	return v, nil
}

func (f *fakeHost) Set(name, v string) error {
	f.calls = append(f.calls, "set "+name+"="+v)
	if name == f.failSet {
		return errors.New("permission denied")
	}
	f.sysctls[name] = v
	return nil
}

func (f *fakeHost) nft(stdin string, args ...string) ([]byte, error) {
	cmd := strings.Join(args, " ")
	f.calls = append(f.calls, "nft "+cmd)
	switch {
	case cmd == "-f -":
		// The script's last statement is "table FAMILY NAME {" with the comment next.
		i := strings.LastIndex(stdin, "\ntable ")
		fl := strings.Fields(stdin[i+1:])
		f.tables[fl[1]+" "+fl[2]] = stdin[i+1:]
	case cmd == "list tables":
		var b strings.Builder
		b.WriteString("table ip nat\n")
		for _, n := range slices.Sorted(maps.Keys(f.tables)) {
			fmt.Fprintf(&b, "table %s\n", n)
		}
		return []byte(b.String()), nil
	case strings.HasPrefix(cmd, "list table "):
		t, ok := f.tables[args[2]+" "+args[3]]
		if !ok {
			return nil, errors.New("No such file or directory")
		}
		return []byte(t), nil
	case strings.HasPrefix(cmd, "delete table "):
		if _, ok := f.tables[args[2]+" "+args[3]]; !ok {
			return nil, errors.New("No such file or directory")
		}
		delete(f.tables, args[2]+" "+args[3])
	default:
		return nil, fmt.Errorf("fake nft: %s", cmd)
	}
	return nil, nil
}

func mapsKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func TestGatewayUpDown(t *testing.T) {
	f := newFakeHost()
	f.sysctls[SysctlForwardIPv6] = "1" // already on: stays on
	g := NewGateway(f.nft, f, gwQuiet)
	if err := g.Up(gwPlan()); err != nil {
		t.Fatal(err)
	}
	if f.sysctls[SysctlForwardIPv4] != "1" || f.sysctls[SysctlForwardIPv6] != "1" {
		t.Fatalf("sysctls after Up: %v", f.sysctls)
	}
	if !strings.Contains(f.tables["inet bondtun_bt0"], "saved net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=1") {
		t.Fatalf("table does not record the values from before:\n%s", f.tables["inet bondtun_bt0"])
	}
	// The table goes in before forwarding is switched on.
	iTable := slices.Index(f.calls, "nft -f -")
	iSet := slices.Index(f.calls, "set "+SysctlForwardIPv4+"=1")
	if iTable < 0 || iSet < iTable {
		t.Errorf("order of changes: %v", f.calls)
	}
	if err := g.Up(gwPlan()); err == nil {
		t.Error("second Up succeeded")
	}
	if err := g.Down(); err != nil {
		t.Fatal(err)
	}
	if len(f.tables) != 0 || f.sysctls[SysctlForwardIPv4] != "0" || f.sysctls[SysctlForwardIPv6] != "1" {
		t.Fatalf("after Down: tables %v sysctls %v", mapsKeys(f.tables), f.sysctls)
	}
	if err := g.Down(); err != nil {
		t.Fatalf("second Down: %v", err)
	}
}

// TestGatewayCrashCleanup: the process is gone, its table stays; GatewayCleanup (from
// `down` or the next `up`) restores what the table saved and removes it, and leaves other
// tables alone.
func TestGatewayCrashCleanup(t *testing.T) {
	f := newFakeHost()
	f.tables["inet bondtun_bt7"] = "table inet bondtun_bt7 {\n\tcomment \"bondtun gateway of bt7; saved\"\n}\n"
	if err := NewGateway(f.nft, f, gwQuiet).Up(gwPlan()); err != nil {
		t.Fatal(err)
	}
	if err := GatewayCleanup(f.nft, f, "bt0", gwQuiet); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.tables["inet bondtun_bt7"]; !ok || len(f.tables) != 1 {
		t.Errorf("tables after cleanup: %v", mapsKeys(f.tables))
	}
	if f.sysctls[SysctlForwardIPv4] != "0" || f.sysctls[SysctlForwardIPv6] != "0" {
		t.Errorf("sysctls after cleanup: %v", f.sysctls)
	}
	if err := GatewayCleanup(f.nft, f, "bt0", gwQuiet); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
}

// TestTwoGateways: the second gateway takes the first's saved values, the first to go
// leaves forwarding on for the other, and the last restores the values from before both.
func TestTwoGateways(t *testing.T) {
	f := newFakeHost()
	a, b := NewGateway(f.nft, f, gwQuiet), NewGateway(f.nft, f, gwQuiet)
	pa, pb := gwPlan(), gwPlan()
	pb.Device = "bt1"
	if err := a.Up(pa); err != nil {
		t.Fatal(err)
	}
	if err := b.Up(pb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.tables["inet bondtun_bt1"], "saved net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0") {
		t.Fatalf("the second gateway saved the first's values, not those from before:\n%s", f.tables["inet bondtun_bt1"])
	}
	if err := a.Down(); err != nil {
		t.Fatal(err)
	}
	if f.sysctls[SysctlForwardIPv4] != "1" {
		t.Fatal("the first gateway to go switched forwarding off under the other")
	}
	if err := b.Down(); err != nil {
		t.Fatal(err)
	}
	if f.sysctls[SysctlForwardIPv4] != "0" || f.sysctls[SysctlForwardIPv6] != "0" || len(f.tables) != 0 {
		t.Fatalf("after both: sysctls %v tables %v", f.sysctls, mapsKeys(f.tables))
	}
}

// TestGatewayUpUndone: a sysctl that cannot be set undoes the whole Up.
func TestGatewayUpUndone(t *testing.T) {
	f := newFakeHost()
	f.failSet = SysctlForwardIPv6
	if err := NewGateway(f.nft, f, gwQuiet).Up(gwPlan()); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Up = %v", err)
	}
	if len(f.tables) != 0 || f.sysctls[SysctlForwardIPv4] != "0" {
		t.Fatalf("after a failed Up: tables %v sysctls %v", mapsKeys(f.tables), f.sysctls)
	}
}

// TestGatewayCleanupWithoutNFT: no nft tool, no table to remove.
func TestGatewayCleanupWithoutNFT(t *testing.T) {
	none := func(string, ...string) ([]byte, error) { return nil, ErrNoNFT }
	if err := GatewayCleanup(none, newFakeHost(), "bt0", gwQuiet); err != nil {
		t.Fatal(err)
	}
}

// FuzzGatewayParse feeds nft's listings to the parsers: no panic, only gateway tables,
// and saved values that are safe to write to /proc/sys. Seeds in testdata/fuzz.
func FuzzGatewayParse(f *testing.F) {
	f.Add(nftListTables)
	f.Add(nftListTable)
	f.Fuzz(func(t *testing.T, s string) {
		for _, fam := range []string{"inet", "ip"} {
			for _, n := range parseTables(s, fam) {
				if !strings.HasPrefix(n, GatewayTablePrefix) {
					t.Fatalf("table %q", n)
				}
			}
		}
		c, _ := parseTableComment(s)
		for _, text := range []string{s, c} {
			for _, kind := range []tableKind{gatewayKind, rpfKind} {
				for k, v := range kind.parseSaved(text) {
					if !slices.Contains(kind.sysctls, k) || v == "" || len(v) > 3 || strings.Trim(v, "0123456789") != "" {
						t.Fatalf("%s saved %q=%q", kind.what, k, v)
					}
				}
			}
		}
	})
}

// TestGatewayCommentRoundTrip: what Script writes, the parsers read back.
func TestGatewayCommentRoundTrip(t *testing.T) {
	for _, saved := range []map[string]string{
		{}, {SysctlForwardIPv4: "0"}, {SysctlForwardIPv6: "2"}, {SysctlForwardIPv4: "1", SysctlForwardIPv6: "0"},
	} {
		script := gwPlan().Script(saved)
		c, ok := parseTableComment(script[strings.LastIndex(script, "\ntable inet ")+1:])
		if !ok {
			t.Fatalf("no comment in\n%s", script)
		}
		if got := gatewayKind.parseSaved(c); !reflect.DeepEqual(got, saved) {
			t.Errorf("saved %v read back as %v", saved, got)
		}
	}
}

// TestGatewayUpdate: a reload replaces the peer sets in the table and keeps the sysctl
// values saved at Up, without touching the sysctls.
func TestGatewayUpdate(t *testing.T) {
	f := newFakeHost()
	g := NewGateway(f.nft, f, gwQuiet)
	p := gwPlan()
	if err := g.Update(p); err == nil {
		t.Fatal("Update of a gateway that is not up succeeded")
	}
	if err := g.Up(p); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	p.Peers = []netip.Prefix{netip.MustParsePrefix("10.77.0.9/32")}
	if err := g.Update(p); err != nil {
		t.Fatal(err)
	}
	table := f.tables["inet bondtun_bt0"]
	if !strings.Contains(table, "elements = { 10.77.0.9/32 }") || !strings.Contains(table, "saved net.ipv4.ip_forward=0") {
		t.Fatalf("table after Update:\n%s", table)
	}
	for _, c := range f.calls {
		if strings.HasPrefix(c, "set ") {
			t.Errorf("Update changed a sysctl: %s", c)
		}
	}
	if err := g.Down(); err != nil {
		t.Fatal(err)
	}
	if f.sysctls[SysctlForwardIPv4] != "0" {
		t.Fatalf("Down after Update restored %s=%s, want 0", SysctlForwardIPv4, f.sysctls[SysctlForwardIPv4])
	}
}
