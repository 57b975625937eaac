package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/tun"
	"github.com/bondtun/bondtun/tun/tuntest"
)

// lineOf is the 1-based line of the first line of file containing s.
func lineOf(t *testing.T, file, s string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", file, s)
	return 0
}

// ipnet parses an address with its prefix length, keeping the host bits.
func ipnet(s string) *net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

func fakeCheckHost(nl *tuntest.Netlink, names map[int]string) checkHost {
	return checkHost{nl: nl, linkName: func(i int) string { return names[i] }}
}

// TestCheckFindsHostConflicts runs the checks against a fake host with one uplink missing,
// one without an address, a host route to a prefix the tunnel routes too, a more specific
// one inside the tunnel's routes, one covering them, and the tunnel's table and both
// uplink tables in use by another program; and
// checks each finding names the right line and field, and nothing on the host changed.
func TestCheckFindsHostConflicts(t *testing.T) {
	useControlDir(t)
	// No uplink addresses: they are looked up on the interfaces. A /16 routed into the tunnel.
	file := writeDemoVariant(t, "client.yaml",
		"    address: 10.100.1.2\n", "",
		"    address: 10.100.2.2\n", "",
		"  mtu: 0", "  mtu: 0\n  routes: [10.50.0.0/16]")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	nl := tuntest.New()
	eth0 := nl.AddLink("eth0", 1500)
	nl.SetLinkUp("eth0")
	nl.AddLink("up1", 1500) // down, no address; up0 does not exist
	nl.AddRoute(netlink.Route{Dst: ipnet("10.77.0.0/24"), LinkIndex: eth0, Protocol: unix.RTPROT_KERNEL})
	nl.AddRoute(netlink.Route{Dst: ipnet("10.50.3.0/24"), LinkIndex: eth0, Protocol: unix.RTPROT_STATIC})
	nl.AddRoute(netlink.Route{Dst: ipnet("10.60.0.0/16"), LinkIndex: eth0, Protocol: unix.RTPROT_STATIC}) // unrelated
	nl.AddRoute(netlink.Route{Dst: ipnet("10.0.0.0/8"), LinkIndex: eth0, Protocol: unix.RTPROT_STATIC})   // covers the tunnel's
	nl.AddRule(netlink.Rule{Table: 7349, Priority: 32001})                                                // another program's, in tun.table
	nl.AddRoute(netlink.Route{LinkIndex: eth0, Table: 7351, Protocol: unix.RTPROT_STATIC})
	nl.AddRoute(netlink.Route{LinkIndex: eth0, Table: 7350, Protocol: tun.RTProtBondtun}) // bondtun's own leftover
	nl.AddRule(netlink.Rule{Table: 7350, Priority: 32000, Mark: 0xca6c, Invert: true})    // another program's
	before := nl.Dump()

	got := runChecks(cfg, fakeCheckHost(nl, map[int]string{eth0: "eth0"}))

	up0 := lineOf(t, file, "interface: up0")
	up1 := lineOf(t, file, "interface: up1")
	uplinks := lineOf(t, file, "uplinks:")
	allowed := lineOf(t, file, "allowed_ips:")
	routes := lineOf(t, file, "routes:")
	want := []struct {
		warning bool
		text    string
	}{
		{true, fmt.Sprintf("%s:%d: uplinks[0].interface: no interface \"up0\" on this host now", file, up0)},
		{true, fmt.Sprintf("%s:%d: uplinks[1].interface: interface \"up1\" is down", file, up1)},
		{true, fmt.Sprintf("%s:%d: uplinks[1].interface: tun: interface \"up1\" has no global address", file, up1)},
		// No table: line, so the nearest parent (the uplink's item, at its first key).
		{false, fmt.Sprintf("%s:%d: uplinks[0].table: table 7350 is used by another program (rule priority 32000)", file, uplinks+1)},
		{false, fmt.Sprintf("%s:%d: uplinks[1].table: table 7351 is used by another program (route dev eth0 proto 4)", file, up1-1)},
		{true, fmt.Sprintf("%s:%d: peers[0].allowed_ips[0]: the host already routes 10.77.0.0/24 (dev eth0 proto 2), and the host's route wins", file, allowed)},
		{true, fmt.Sprintf("%s:%d: tun.routes[0]: the host's route 10.0.0.0/8 (dev eth0 proto 4) covers it and wins", file, routes)},
		{true, fmt.Sprintf("%s:%d: peers[0].allowed_ips[0]: the host's route 10.0.0.0/8 (dev eth0 proto 4) covers it and wins", file, allowed)},
		{true, fmt.Sprintf("%s:%d: tun.addresses[0]: the tunnel's network 10.77.0.0/24 overlaps the host's 10.0.0.0/8", file, lineOf(t, file, "addresses:"))},
		{false, fmt.Sprintf("%s:%d: tun.table: table 7349 is used by another program (rule priority 32001)", file, lineOf(t, file, "tun:"))},
		{true, fmt.Sprintf("%s:%d: tun.addresses[0]: the tunnel's network 10.77.0.0/24 overlaps the host's 10.77.0.0/24", file, lineOf(t, file, "addresses:"))},
		{true, fmt.Sprintf("%s:%d: tun.routes[0]: the host's more specific route 10.50.3.0/24 (dev eth0 proto 4) keeps that traffic out of the tunnel", file, routes)},
	}
	var texts []string
	for _, f := range got {
		texts = append(texts, fmt.Sprintf("warning=%v %v", f.warning, f.err))
	}
	if len(got) != len(want) {
		t.Errorf("%d findings, want %d:\n%s", len(got), len(want), strings.Join(texts, "\n"))
	}
	for _, w := range want {
		found := false
		for _, f := range got {
			if f.warning == w.warning && strings.HasPrefix(f.err.Error(), w.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("no finding (warning=%v) starting %q in:\n%s", w.warning, w.text, strings.Join(texts, "\n"))
		}
	}
	if ops := nl.Ops(); len(ops) != 0 {
		t.Errorf("check changed the host: %q", ops)
	}
	if after := nl.Dump(); after != before {
		t.Errorf("host state changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestCheckCleanHost: with the uplinks present and addressed and nothing in the way, the
// demo client passes; the key file permission warning of the loader is reported.
func TestCheckCleanHost(t *testing.T) {
	useControlDir(t)
	file := writeDemoVariant(t, "client.yaml") // 0600: the checkout's mode is the clone's
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	nl := tuntest.New()
	for i, name := range []string{"up0", "up1"} {
		nl.AddLink(name, 1500)
		nl.SetLinkUp(name)
		nl.AddAddr(name, netlink.Addr{IPNet: ipnet(fmt.Sprintf("10.100.%d.2/24", i+1))})
	}
	if got := runChecks(cfg, fakeCheckHost(nl, nil)); len(got) != 0 {
		t.Fatalf("findings on a clean host: %v", got[0].err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	got := runChecks(cfg, fakeCheckHost(nl, nil))
	if len(got) != 1 || got[0].warning || !strings.Contains(got[0].err.Error(), "chmod 600 "+file) {
		t.Fatalf("findings %v; want one problem: the inline key readable by others, with the chmod", got)
	}
}

func TestCheckCommand(t *testing.T) {
	useControlDir(t)
	good := writeDemoVariant(t, "server.yaml")
	code, out, stderr := runCLI(t, "", "check", "-c", good)
	if code != 0 || !strings.Contains(out, good+": ok: server on port 7350") {
		t.Fatalf("check of the demo server: code %d, stdout %q, stderr %q", code, out, stderr)
	}
	bad := writeDemoVariant(t, "server.yaml", "port: 7350", "port: 70000")
	code, out, stderr = runCLI(t, "", "check", "-c", bad)
	if code != 1 || out != "" || !strings.Contains(stderr, bad+":") || !strings.Contains(stderr, "listen.port") {
		t.Fatalf("check of a bad file: code %d, stdout %q, stderr %q; want file, line and field", code, out, stderr)
	}
	// A key file others may read is reported, with the chmod, and never read: its
	// contents (not a key) are not parsed.
	loose := writeDemoVariant(t, "server.yaml")
	keyLine := regexp.MustCompile(`(?m)^private_key: .*$`)
	text, err := os.ReadFile(loose)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loose, keyLine.ReplaceAll(text, []byte("private_key_file: loose.key")), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(filepath.Dir(loose), "loose.key")
	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCLI(t, "", "check", "-c", loose)
	if code != 1 || out != "" || !strings.Contains(stderr, "chmod 600 "+keyFile) || strings.Contains(stderr, "bad key") {
		t.Fatalf("check with a loose key file: code %d, stdout %q, stderr %q; want the chmod, the file unread", code, out, stderr)
	}
	if code, _, stderr := runCLI(t, "", "check"); code != 2 || !strings.Contains(stderr, "missing -c FILE") {
		t.Fatalf("check without -c: code %d, stderr %q", code, stderr)
	}
}
