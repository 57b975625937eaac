package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestNetnsPing runs the emulator (this test binary re-executed, see
// TestMain) between two fresh namespaces, pings across, and checks that the
// RTT is at least twice the one-way delay, and that a cut stops the pings.
// It needs root and skips otherwise.
func TestNetnsPing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("ping not installed")
	}
	sfx := fmt.Sprintf("lt%d", os.Getpid())
	nsA, nsB := "lea-"+sfx, "leb-"+sfx
	for _, ns := range []string{nsA, nsB} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("ip netns add: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}

	const delay = 15 * time.Millisecond
	sock := t.TempDir() + "/ctl.sock"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LINKEMU_TEST_MAIN=1", "LINKEMU_TEST_ARGS="+fmt.Sprintf(
		"-ns-a %s -dev-a te0 -ns-b %s -dev-b te1 -addr-a 10.201.0.2/24 -addr-b 10.201.0.1/24 "+
			"-rate 20mbit -delay %v -ctl %s", nsA, nsB, delay, sock))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	waitForSocket(t, sock)

	out := mustRun(t, "ip", "netns", "exec", nsA, "ping", "-c", "5", "-i", "0.2", "-W", "2", "10.201.0.1")
	m := regexp.MustCompile(`= ([0-9.]+)/([0-9.]+)/`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no rtt in ping output:\n%s", out)
	}
	minMs, _ := strconv.ParseFloat(m[1], 64)
	if rtt := time.Duration(minMs * float64(time.Millisecond)); rtt < 2*delay || rtt > 2*delay+20*time.Millisecond {
		t.Errorf("min RTT %v, want ≥ %v (2 × delay) and not much more", rtt, 2*delay)
	}

	if err := runCtlClient(sock, []string{"cut", "ab"}, os.Stderr); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("ip", "netns", "exec", nsA, "ping", "-c", "2", "-W", "1", "10.201.0.1").Run(); err == nil {
		t.Error("ping succeeded over a cut link")
	}
	if err := runCtlClient(sock, []string{"restore"}, os.Stderr); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "ip", "netns", "exec", nsA, "ping", "-c", "1", "-W", "2", "10.201.0.1")
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func waitForSocket(t *testing.T, path string) {
	t.Helper()
	for range 100 {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("emulator did not create %s", path)
}
