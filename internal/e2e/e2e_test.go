// Package e2e runs bondtun's end-to-end test: the real bondtun, linkemu and btperf binaries
// in two network namespaces joined by two emulated links (scripts/e2e.sh). It needs root and
// skips without it.
package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "scripts/e2e.sh")); err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	return root
}

func requireRootAndTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and TUN devices")
	}
	for _, tool := range []string{"ip", "ping", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/setup.sh installs it)", tool)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("needs /dev/net/tun")
	}
}

// TestTunnelOverEmulatedLinks runs scripts/e2e.sh and checks what it reports: ping through
// the tunnel, a verified transfer each way, both uplinks carrying tunnel traffic in both
// directions, a verified transfer across a cable cut, the cable coming back after a restore,
// after its address was removed and re-added and after it was renumbered (the server follows
// the new outer address), `bondtun check` on a good and a clashing config, status of a
// pattern-named device, /metrics scraped and parsed, the server's reload of a broken file,
// of a restart-only change and of an added peer while the tunnel runs, one reload that
// adds a peer and removes another while the client (a third) pings every 20 ms (no ping
// lost or delayed a second, no new session, table 7349's routes following), SIGHUP keeping
// the client's tunnel, a clean exit on SIGTERM, `bondtun down` stopping a running up, and a
// full cleanup by `bondtun down` after SIGKILL.
func TestTunnelOverEmulatedLinks(t *testing.T) {
	requireRootAndTools(t)
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	got := runScript(t, "scripts/e2e.sh", "E2E")
	for _, k := range []string{"clean_exit", "crash_cleanup", "verified", "check", "status_pattern", "metrics", "hup_kept", "reload_refused_kept", "reload_applied", "reload_swap", "down_stops",
		"cable_after_restore", "cable_after_readd", "cable_after_renumber", "cable_after_renumber_back"} {
		if got[k] != "yes" {
			t.Errorf("%s = %q, want yes", k, got[k])
		}
	}
	for _, k := range []string{"cable_rx_bytes", "dsl_rx_bytes", "cable_tx_bytes", "dsl_tx_bytes"} {
		n, err := strconv.ParseInt(got[k], 10, 64)
		if err != nil || n <= 500_000 {
			t.Errorf("%s = %q, want > 500000 (both uplinks carry tunnel traffic)", k, got[k])
		}
	}
	// The links carry traffic roughly in proportion to their rates (cable 50, DSL 20 Mbit/s:
	// 71 % on the cable); loose bounds, since the transfers are short and start in slow start.
	for _, dir := range []string{"rx", "tx"} {
		cable, _ := strconv.ParseFloat(got["cable_"+dir+"_bytes"], 64)
		dsl, _ := strconv.ParseFloat(got["dsl_"+dir+"_bytes"], 64)
		if share := cable / (cable + dsl); !(share > 0.5 && share < 0.9) {
			t.Errorf("cable's share of the tunnel's %s bytes = %.2f, want between 0.5 and 0.9 (rates 50:20)", dir, share)
		}
	}
	if got["ping_loss_pct"] != "0" {
		t.Errorf("ping loss through the tunnel = %q%%, want 0", got["ping_loss_pct"])
	}
	if got["reload_swap_ping_loss_pct"] != "0" {
		t.Errorf("ping loss across the reload that added and removed a peer = %q%%, want 0", got["reload_swap_ping_loss_pct"])
	}
}

// TestGatewayOverEmulatedLinks runs scripts/e2e-gateway.sh: a whole-host client that
// names its server by DNS name reaches, over IPv4 and IPv6, an address behind a server
// whose gateway masquerades it; the outside cannot open a connection to the client; and
// after the server's SIGTERM, `bondtun down` of a running server and `bondtun down` after a
// SIGKILL, the server's nft ruleset, rules, routes and sysctls are exactly as before, as
// are the client's after its SIGTERM. Both ends filter reverse paths strictly
// (rp_filter=1): the server's marks let a peer whose outer address its tunnel routes in.
func TestGatewayOverEmulatedLinks(t *testing.T) {
	requireRootAndTools(t)
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	for _, tool := range []string{"nft", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/setup.sh installs nftables)", tool)
		}
	}
	got := runScript(t, "scripts/e2e-gateway.sh", "GW")
	for _, k := range []string{"resolved_name", "reach_ipv4", "reach_ipv6", "verified", "inbound_refused",
		"rpf_marks", "far_client_outer_inside_allowed_ips", "sigterm_clean", "down_clean", "crash_clean", "client_clean"} {
		if got[k] != "yes" {
			t.Errorf("%s = %q, want yes", k, got[k])
		}
	}
}

// runScript builds the commands into a temporary directory, runs the end-to-end script
// (relative to the repository root) with BIN pointing there, fails the test if it exits
// with an error or does not print "PREFIX PASS", and returns the KEY=VALUE fields of its
// lines that start with PREFIX.
func runScript(t *testing.T, script, prefix string) map[string]string {
	t.Helper()
	root := repoRoot(t)
	bin := t.TempDir()
	build := exec.Command("bash", "-c", `source scripts/lib/version.sh && bt_build -o "$1/" ./cmd/bondtun ./cmd/linkemu ./cmd/btperf`, "build", bin)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "BIN="+bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("%s output:\n%s", script, out)
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			for _, f := range strings.Fields(rest) {
				if k, v, ok := strings.Cut(f, "="); ok {
					got[k] = v
				}
			}
		}
	}
	if !strings.Contains(string(out), prefix+" PASS") {
		t.Fatalf("%s did not report PASS", script)
	}
	return got
}
