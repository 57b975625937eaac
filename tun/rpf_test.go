package tun

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func rpfPlan() RPFPlan { return RPFPlan{Device: "bt0", Mark: 0x1cb5, Port: 7350} }

// TestRPFScript holds the script to its exact text: every local address.
func TestRPFScript(t *testing.T) {
	got := rpfPlan().Script(map[string]string{SysctlSrcValidMark: "0"})
	want := `add table ip bondtun_bt0
delete table ip bondtun_bt0
table ip bondtun_bt0 {
	comment "bondtun reverse-path marks of bt0; saved net.ipv4.conf.all.src_valid_mark=0"
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		iifname != "bt0" meta mark 0 meta l4proto { tcp, udp } th dport 7350 fib daddr type local meta mark set 0x1cb5
		iifname != "bt0" meta mark 0 icmp type { destination-unreachable, time-exceeded, parameter-problem } @th,224,16 7350 fib daddr type local meta mark set 0x1cb5
	}
}
`
	if got != want {
		t.Fatalf("script:\n%s\nwant:\n%s", got, want)
	}
}

// TestRPFScriptAddresses: listen addresses replace "every local address", sorted, once
// each, IPv4-mapped ones unmapped.
func TestRPFScriptAddresses(t *testing.T) {
	p := rpfPlan()
	p.Port = 443
	p.Addresses = []netip.Addr{netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("::ffff:192.0.2.7"), netip.MustParseAddr("198.51.100.9")}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	s := p.Script(nil)
	for _, want := range []string{
		`comment "bondtun reverse-path marks of bt0; saved"`,
		`meta l4proto { tcp, udp } th dport 443 ip daddr { 192.0.2.7, 198.51.100.9 } meta mark set 0x1cb5`,
		`@th,224,16 443 ip daddr { 192.0.2.7, 198.51.100.9 } meta mark set 0x1cb5`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "fib") {
		t.Errorf("script with addresses matches every local address:\n%s", s)
	}
}

func TestRPFPlanValidate(t *testing.T) {
	if err := rpfPlan().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*RPFPlan){
		"device":      func(p *RPFPlan) { p.Device = `bt0" accept` },
		"no mark":     func(p *RPFPlan) { p.Mark = 0 },
		"port 0":      func(p *RPFPlan) { p.Port = 0 },
		"port big":    func(p *RPFPlan) { p.Port = 65536 },
		"IPv6 listen": func(p *RPFPlan) { p.Addresses = []netip.Addr{netip.MustParseAddr("2001:db8::1")} },
		"invalid":     func(p *RPFPlan) { p.Addresses = []netip.Addr{{}} },
	} {
		p := rpfPlan()
		mutate(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate passed", name)
		}
	}
}

// TestStrictRPF: an interface is strict when the larger of its value and all's is 1.
func TestStrictRPF(t *testing.T) {
	for _, tc := range []struct {
		name string
		conf map[string]string
		want []string
	}{
		{"kernel default", map[string]string{"all": "0", "default": "0", "lo": "0", "eth0": "0"}, nil},
		{"systemd's loose", map[string]string{"all": "2", "default": "2", "lo": "2", "eth0": "2"}, nil},
		{"all strict", map[string]string{"all": "1", "default": "0", "lo": "0", "eth0": "0", "bt0": "0"}, []string{"default", "eth0"}},
		{"all loose wins over one strict", map[string]string{"all": "2", "default": "1", "eth0": "1"}, nil},
		{"one strict", map[string]string{"all": "0", "default": "0", "eth0": "1", "wwan0": "2", "bt0": "1", "lo": "1"}, []string{"eth0"}},
		{"only future interfaces", map[string]string{"all": "0", "default": "1", "eth0": "0"}, []string{"default"}},
		{"garbage", map[string]string{"all": "x", "eth0": " 1\n", "eth1": "-1"}, []string{"eth0"}},
		{"nothing read", nil, nil},
	} {
		if got := StrictRPF(tc.conf, "bt0"); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: StrictRPF = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func newRPFHost() *fakeHost {
	f := newFakeHost()
	f.sysctls[SysctlSrcValidMark] = "0"
	return f
}

// TestRPFUpDown: Up installs the table with the value from before, then sets the sysctl;
// Down restores it and deletes only its own table, not the gateway's of the same name.
func TestRPFUpDown(t *testing.T) {
	f := newRPFHost()
	if err := NewGateway(f.nft, f, gwQuiet).Up(gwPlan()); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	r := NewRPF(f.nft, f, gwQuiet)
	if err := r.Up(rpfPlan()); err != nil {
		t.Fatal(err)
	}
	if err := r.Up(rpfPlan()); err == nil {
		t.Error("a second Up succeeded")
	}
	if !strings.Contains(f.tables["ip bondtun_bt0"], "saved net.ipv4.conf.all.src_valid_mark=0") || f.sysctls[SysctlSrcValidMark] != "1" {
		t.Fatalf("after Up: %s=%s, table\n%s", SysctlSrcValidMark, f.sysctls[SysctlSrcValidMark], f.tables["ip bondtun_bt0"])
	}
	if i, j := slices.Index(f.calls, "nft -f -"), slices.Index(f.calls, "set "+SysctlSrcValidMark+"=1"); i < 0 || j < i {
		t.Errorf("the sysctl before the table: %q", f.calls)
	}
	if err := r.Down(); err != nil {
		t.Fatal(err)
	}
	if err := r.Down(); err != nil {
		t.Fatal(err)
	}
	if f.sysctls[SysctlSrcValidMark] != "0" {
		t.Errorf("after Down %s=%s, want 0", SysctlSrcValidMark, f.sysctls[SysctlSrcValidMark])
	}
	if _, ok := f.tables["ip bondtun_bt0"]; ok {
		t.Error("table ip bondtun_bt0 left")
	}
	if _, ok := f.tables["inet bondtun_bt0"]; !ok || f.sysctls[SysctlForwardIPv4] != "1" {
		t.Error("Down of the reverse-path marks touched the gateway")
	}
}

// TestRPFAlreadyOn: a src_valid_mark already 1 is not written, and stays 1.
func TestRPFAlreadyOn(t *testing.T) {
	f := newRPFHost()
	f.sysctls[SysctlSrcValidMark] = "1"
	r := NewRPF(f.nft, f, gwQuiet)
	if err := r.Up(rpfPlan()); err != nil {
		t.Fatal(err)
	}
	if err := r.Down(); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.calls {
		if strings.HasPrefix(c, "set ") {
			t.Errorf("a sysctl written: %s", c)
		}
	}
	if f.sysctls[SysctlSrcValidMark] != "1" {
		t.Errorf("%s=%s, want 1", SysctlSrcValidMark, f.sysctls[SysctlSrcValidMark])
	}
}

// TestRPFCrashCleanup: the table a killed instance left is removed with the value it
// saved restored; a failed Set undoes Up.
func TestRPFCrashCleanup(t *testing.T) {
	f := newRPFHost()
	if err := NewRPF(f.nft, f, gwQuiet).Up(rpfPlan()); err != nil {
		t.Fatal(err)
	}
	// The process is gone; `down` or the next `up` cleans.
	if err := RPFCleanup(f.nft, f, "bt0", gwQuiet); err != nil {
		t.Fatal(err)
	}
	if len(f.tables) != 0 || f.sysctls[SysctlSrcValidMark] != "0" {
		t.Fatalf("after cleanup: tables %v, %s=%s", mapsKeys(f.tables), SysctlSrcValidMark, f.sysctls[SysctlSrcValidMark])
	}
	if err := RPFCleanup(f.nft, f, "bt0", gwQuiet); err != nil {
		t.Fatalf("second cleanup: %v", err)
	}
	f.failSet = SysctlSrcValidMark
	if err := NewRPF(f.nft, f, gwQuiet).Up(rpfPlan()); err == nil {
		t.Fatal("Up with a failing sysctl succeeded")
	}
	if len(f.tables) != 0 {
		t.Errorf("a failed Up left tables %v", mapsKeys(f.tables))
	}
	none := func(string, ...string) ([]byte, error) { return nil, ErrNoNFT }
	if err := RPFCleanup(none, f, "bt0", gwQuiet); err != nil {
		t.Fatal(err)
	}
}

// TestTwoRPF: a second instance saves the first's value from before, not the 1 the first
// set; whichever goes first leaves the sysctl on, the last restores it.
func TestTwoRPF(t *testing.T) {
	f := newRPFHost()
	a, b := NewRPF(f.nft, f, gwQuiet), NewRPF(f.nft, f, gwQuiet)
	pa, pb := rpfPlan(), rpfPlan()
	pb.Device, pb.Port = "bt1", 7351
	if err := a.Up(pa); err != nil {
		t.Fatal(err)
	}
	if err := b.Up(pb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.tables["ip bondtun_bt1"], "src_valid_mark=0") {
		t.Fatalf("the second saved the first's 1:\n%s", f.tables["ip bondtun_bt1"])
	}
	if err := a.Down(); err != nil {
		t.Fatal(err)
	}
	if f.sysctls[SysctlSrcValidMark] != "1" {
		t.Fatal("the first to go turned the sysctl off under the second")
	}
	if err := b.Down(); err != nil {
		t.Fatal(err)
	}
	if f.sysctls[SysctlSrcValidMark] != "0" || len(f.tables) != 0 {
		t.Fatalf("after both: %s=%s, tables %v", SysctlSrcValidMark, f.sysctls[SysctlSrcValidMark], mapsKeys(f.tables))
	}
}

// TestRPFCommentRoundTrip: what Script writes, the parsers read back; the gateway's
// sysctls in an rpf table's comment are not taken, nor src_valid_mark in a gateway's.
func TestRPFCommentRoundTrip(t *testing.T) {
	for _, saved := range []map[string]string{{}, {SysctlSrcValidMark: "0"}, {SysctlSrcValidMark: "1"}} {
		script := rpfPlan().Script(saved)
		c, ok := parseTableComment(script[strings.LastIndex(script, "\ntable ip ")+1:])
		if !ok {
			t.Fatalf("no comment in\n%s", script)
		}
		if got := rpfKind.parseSaved(c); !reflect.DeepEqual(got, saved) {
			t.Errorf("saved %v read back as %v", saved, got)
		}
	}
	mixed := "x; saved net.ipv4.ip_forward=0 net.ipv4.conf.all.src_valid_mark=0"
	if got := rpfKind.parseSaved(mixed); !reflect.DeepEqual(got, map[string]string{SysctlSrcValidMark: "0"}) {
		t.Errorf("rpf parseSaved = %v", got)
	}
	if got := gatewayKind.parseSaved(mixed); !reflect.DeepEqual(got, map[string]string{SysctlForwardIPv4: "0"}) {
		t.Errorf("gateway parseSaved = %v", got)
	}
	if got := parseTables(nftListTables, "ip"); !reflect.DeepEqual(got, []string{"bondtun_ip"}) {
		t.Errorf("parseTables ip = %q", got)
	}
}
