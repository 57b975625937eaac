package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bondtun/bondtun/config"
)

// capSet is a set of Linux capabilities: bit i is capability i (capabilities(7)).
type capSet uint64

func (s capSet) has(c int) bool { return s&(1<<uint(c)) != 0 }

// effectiveCaps returns this process's effective capability set (capget(2)). The kernel
// checks that set, not the user ID: root without CAP_NET_ADMIN (in a container) cannot
// create a TUN device, and any user with it (from the systemd unit's AmbientCapabilities,
// or `setcap cap_net_admin+ep` on the binary) can.
func effectiveCaps() (capSet, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // version 3: two 32-bit words
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("reading this process's capabilities: %w", err)
	}
	return capSet(data[0].Effective) | capSet(data[1].Effective)<<32, nil
}

// capNeed is a capability a command needs, and what for.
type capNeed struct {
	cap  int
	name string // as in capabilities(7): "CAP_NET_ADMIN"
	why  string
}

var needNetAdmin = capNeed{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN", "to create the TUN device and set its addresses, routes and policy rules"}

// hostFacts is what upNeeds needs to know of the host.
type hostFacts struct {
	kernel          [2]int // major, minor; zero if unknown
	unprivPortStart int    // net.ipv4.ip_unprivileged_port_start: lower ports need CAP_NET_BIND_SERVICE
}

// upNeeds returns the capabilities `up` needs for cfg on host h:
//   - CAP_NET_ADMIN, always (the TUN device, addresses, routes, rules, and the large
//     socket buffers of SO_RCVBUFFORCE);
//   - CAP_NET_RAW on a client binding an uplink to its interface (SO_BINDTODEVICE) on a
//     kernel before 5.7, which required it for every such bind; since 5.7 binding a
//     socket not yet bound to a device needs no capability, and bondtun binds each socket
//     once, when it creates it;
//   - CAP_NET_BIND_SERVICE on a server listening below ip_unprivileged_port_start.
func upNeeds(cfg *config.Config, h hostFacts) []capNeed {
	needs := []capNeed{needNetAdmin}
	if cfg.IsClient() && h.kernel != [2]int{} && (h.kernel[0] < 5 || h.kernel[0] == 5 && h.kernel[1] < 7) {
		for _, u := range cfg.Uplinks {
			if u.Interface != "" && u.Tier != config.TierDisabled {
				needs = append(needs, capNeed{unix.CAP_NET_RAW, "CAP_NET_RAW",
					fmt.Sprintf("to bind uplink sockets to their interfaces (SO_BINDTODEVICE) on Linux %d.%d; 5.7 and later need no capability for it", h.kernel[0], h.kernel[1])})
				break
			}
		}
	}
	if cfg.Listen != nil && cfg.Listen.Port < h.unprivPortStart {
		needs = append(needs, capNeed{unix.CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE",
			fmt.Sprintf("to listen on port %d, below net.ipv4.ip_unprivileged_port_start (%d)", cfg.Listen.Port, h.unprivPortStart)})
	}
	return needs
}

// checkCaps returns nil if have holds every capability of needs, else an error naming each
// missing one, what it is for, and how to grant it to exe (the bondtun binary).
func checkCaps(have capSet, needs []capNeed, exe string) error {
	var missing []capNeed
	for _, n := range needs {
		if !have.has(n.cap) {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	names := make([]string, len(missing))
	whys := make([]string, len(missing))
	for i, n := range missing {
		names[i], whys[i] = n.name, n.name+" ("+n.why+")"
	}
	what, them := "capability "+missing[0].name+", needed "+missing[0].why, "it"
	if len(missing) > 1 {
		what, them = "capabilities "+strings.Join(whys, ", "), "them"
	}
	return fmt.Errorf("missing %s; run it as root, from the systemd unit configs/bondtun@.service (AmbientCapabilities=), "+
		"or grant %s to the binary with `setcap %s+ep %s`",
		what, them, strings.ToLower(strings.Join(names, ",")), shellWord(exe))
}

// requireCaps checks this process's effective capabilities against needs.
func requireCaps(needs []capNeed) error {
	have, err := effectiveCaps()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "bondtun"
	}
	return checkCaps(have, needs, exe)
}

// currentHost reads the facts upNeeds needs; what it cannot read is left at its default
// (kernel unknown, ports below 1024 privileged).
func currentHost() hostFacts {
	h := hostFacts{unprivPortStart: 1024}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.kernel = parseKernelRelease(unix.ByteSliceToString(u.Release[:]))
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			h.unprivPortStart = n
		}
	}
	return h
}

// parseKernelRelease returns the major and minor version of a release such as
// "6.1.0-18-amd64", or zeros if it does not start with them.
func parseKernelRelease(s string) [2]int {
	major, rest, ok := strings.Cut(s, ".")
	if !ok {
		return [2]int{}
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	a, err1 := strconv.Atoi(major)
	b, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil {
		return [2]int{}
	}
	return [2]int{a, b}
}

// shellWord quotes s for a POSIX shell when it has characters other than safe ones.
func shellWord(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./-+=:,@", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
