package e2e

import "testing"

// TestUplinksReloadOverEmulatedLinks runs scripts/e2e-uplinks.sh: a reload adds the DSL to
// a client running on the cable alone, then removes it, while a verified download runs;
// the DSL's policy rule comes and goes, it carries traffic only while configured, the
// session is never replaced and the download completes intact.
func TestUplinksReloadOverEmulatedLinks(t *testing.T) {
	requireRootAndTools(t)
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	got := runScript(t, "scripts/e2e-uplinks.sh", "UPLINKS")
	for _, k := range []string{"added", "removed", "verified"} {
		if got[k] != "yes" {
			t.Errorf("%s = %q, want yes", k, got[k])
		}
	}
	if got["sessions"] != "1" {
		t.Errorf("sessions = %q, want 1", got["sessions"])
	}
}
