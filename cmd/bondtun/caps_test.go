package main

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bondtun/bondtun/config"
)

func capsOf(cs ...int) capSet {
	var s capSet
	for _, c := range cs {
		s |= 1 << uint(c)
	}
	return s
}

func TestUpNeeds(t *testing.T) {
	client := &config.Config{Uplinks: []config.Uplink{{Name: "cable", Interface: "eth0", Tier: config.TierPrimary}}}
	addrOnly := &config.Config{Uplinks: []config.Uplink{{Name: "a", Address: netip.MustParseAddr("192.0.2.2"), Tier: config.TierPrimary},
		{Name: "b", Interface: "eth1", Tier: config.TierDisabled}}}
	server := func(port int) *config.Config { return &config.Config{Listen: &config.Listen{Port: port}} }
	cases := []struct {
		name string
		cfg  *config.Config
		h    hostFacts
		want []string
	}{
		{"client, new kernel", client, hostFacts{[2]int{6, 1}, 1024}, []string{"CAP_NET_ADMIN"}},
		{"client, 5.7", client, hostFacts{[2]int{5, 7}, 1024}, []string{"CAP_NET_ADMIN"}},
		{"client, 5.4 binds to device", client, hostFacts{[2]int{5, 4}, 1024}, []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}},
		{"client, 4.19", client, hostFacts{[2]int{4, 19}, 1024}, []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}},
		{"client, kernel unknown", client, hostFacts{[2]int{}, 1024}, []string{"CAP_NET_ADMIN"}},
		{"client, 5.4, no enabled interface", addrOnly, hostFacts{[2]int{5, 4}, 1024}, []string{"CAP_NET_ADMIN"}},
		{"server, high port", server(7350), hostFacts{[2]int{4, 19}, 1024}, []string{"CAP_NET_ADMIN"}},
		{"server, port 443", server(443), hostFacts{[2]int{6, 1}, 1024}, []string{"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"}},
		{"server, port 443, unprivileged from 0", server(443), hostFacts{[2]int{6, 1}, 0}, []string{"CAP_NET_ADMIN"}},
		{"server, port 1024", server(1024), hostFacts{[2]int{6, 1}, 1024}, []string{"CAP_NET_ADMIN"}},
	}
	for _, c := range cases {
		var got []string
		for _, n := range upNeeds(c.cfg, c.h) {
			got = append(got, n.name)
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: upNeeds = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCheckCaps(t *testing.T) {
	bind := capNeed{unix.CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE", "to listen on port 443"}
	needs := []capNeed{needNetAdmin, bind}
	if err := checkCaps(capsOf(unix.CAP_NET_ADMIN, unix.CAP_NET_BIND_SERVICE), needs, "/usr/local/bin/bondtun"); err != nil {
		t.Errorf("all held: %v", err)
	}
	// Root's full set passes; what counts is the set, not the user.
	if err := checkCaps(^capSet(0), needs, "bondtun"); err != nil {
		t.Errorf("full set: %v", err)
	}
	// The CAP_NET_RAW a process may hold does not stand in for CAP_NET_ADMIN.
	err := checkCaps(capsOf(unix.CAP_NET_RAW, unix.CAP_NET_BIND_SERVICE), needs, "/usr/local/bin/bondtun")
	if err == nil {
		t.Fatal("CAP_NET_ADMIN missing: no error")
	}
	for _, want := range []string{"missing capability CAP_NET_ADMIN, needed to create the TUN device",
		"setcap cap_net_admin+ep /usr/local/bin/bondtun", "configs/bondtun@.service"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "BIND") {
		t.Errorf("error %q names a capability that is held", err)
	}
	err = checkCaps(0, needs, "/opt/my tools/bondtun")
	for _, want := range []string{"missing capabilities CAP_NET_ADMIN (to create the TUN device",
		"CAP_NET_BIND_SERVICE (to listen on port 443)", "setcap cap_net_admin,cap_net_bind_service+ep '/opt/my tools/bondtun'"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// TestEffectiveCaps checks capget against the kernel's other report of the same set, the
// CapEff line of /proc/self/status.
func TestEffectiveCaps(t *testing.T) {
	have, err := effectiveCaps()
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			want, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			if uint64(have) != want {
				t.Errorf("effectiveCaps() = %#x, /proc/self/status CapEff = %#x", uint64(have), want)
			}
			return
		}
	}
	t.Fatal("no CapEff line in /proc/self/status")
}

func TestParseKernelRelease(t *testing.T) {
	for in, want := range map[string][2]int{
		"6.1.0-18-amd64": {6, 1}, "5.7": {5, 7}, "4.19.0": {4, 19}, "6.18.44-fc-v1045": {6, 18},
		"5.10+": {5, 10}, "": {}, "six.1": {}, "6": {}, "6.x": {},
	} {
		if got := parseKernelRelease(in); got != want {
			t.Errorf("parseKernelRelease(%q) = %v, want %v", in, got, want)
		}
	}
}
