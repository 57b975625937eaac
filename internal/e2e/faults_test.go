package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestFaultsOverEmulatedLinks runs scripts/e2e-faults.sh: `up` started before its DSL
// uplink exists and before the server listens keeps running, and both join later without
// a restart, traffic flowing over both uplinks; the server restarted under the running
// client, traffic resumes without the client exiting; a wrong server key ends `up` at
// once with an error naming the key problem, leaving nothing behind; in whole-host mode with
// tun.while_down: direct, the default routes into the tunnel are there only with a session.
func TestFaultsOverEmulatedLinks(t *testing.T) {
	requireRootAndTools(t)
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	root := repoRoot(t)
	bin := t.TempDir()
	build := exec.Command("bash", "-c", `source scripts/lib/version.sh && bt_build -o "$1/" ./cmd/bondtun ./cmd/linkemu ./cmd/btperf`, "build", bin)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", "scripts/e2e-faults.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "BIN="+bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("e2e-faults output:\n%s", out)
	if err != nil {
		t.Fatalf("scripts/e2e-faults.sh: %v\n%s", err, stderr.String())
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "FAULTS "); ok {
			for _, f := range strings.Fields(rest) {
				if k, v, ok := strings.Cut(f, "="); ok {
					got[k] = v
				}
			}
		}
	}
	if !strings.Contains(string(out), "FAULTS PASS") {
		t.Fatal("scripts/e2e-faults.sh did not report PASS")
	}
	for _, k := range []string{"waits_without_server", "server_late", "dsl_late", "server_restart", "direct_while_down", "wrong_key_ends"} {
		if got[k] != "yes" {
			t.Errorf("%s = %q, want yes", k, got[k])
		}
	}
}
