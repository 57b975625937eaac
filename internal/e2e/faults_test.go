package e2e

import "testing"

// TestFaultsOverEmulatedLinks runs scripts/e2e-faults.sh: `up` started before its DSL
// uplink exists and before the server listens keeps running, and both join later without
// a restart, traffic flowing over both uplinks; the server restarted under the running
// client, traffic resumes without the client exiting; a wrong server key ends `up` at
// once with an error naming the key problem and exit status 3, leaving nothing behind; in whole-host mode with
// tun.while_down: direct, the default routes into the tunnel are there only with a session.
//
// It also forces a key update every second (BONDTUN_DEBUG_REKEY_INTERVAL=1s at the client)
// during a verified 6 s bonded download: at least 4 updates at each end, no datagram failing
// authentication at either end (a key phase without a key counts there too), no new session,
// and no pause: no 0.5 s interval after the first second under 0.3 × the upper quartile of
// the intervals, whose median is at least 20 Mbit/s (the DSL's rate alone).
func TestFaultsOverEmulatedLinks(t *testing.T) {
	requireRootAndTools(t)
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	got := runScript(t, "scripts/e2e-faults.sh", "FAULTS")
	for _, k := range []string{"waits_without_server", "server_late", "dsl_late", "server_restart", "direct_while_down", "rekey", "wrong_key_ends"} {
		if got[k] != "yes" {
			t.Errorf("%s = %q, want yes", k, got[k])
		}
	}
	if got["wrong_key_exit"] != "3" {
		t.Errorf("wrong_key_exit = %q, want 3 (an authenticated refusal)", got["wrong_key_exit"])
	}
}
