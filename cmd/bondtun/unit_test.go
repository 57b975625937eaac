package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/config"
)

const unitFile = "../../configs/bondtun@.service"

// unitSettings returns the [Service] settings of the unit file: key -> values in order.
func unitSettings(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			out[k] = append(out[k], v)
		}
	}
	return out
}

// TestUnitFile checks the systemd unit against what bondtun needs: the command line, the
// reload signal, the control socket directory `up` uses, the TUN device, and capabilities
// that cover what upNeeds asks for each example config on a current kernel, no more.
func TestUnitFile(t *testing.T) {
	s := unitSettings(t)
	want := map[string]string{
		"ExecStart":                "/usr/local/bin/bondtun up -c /etc/bondtun/%i.yaml",
		"ExecReload":               "/bin/kill -HUP $MAINPID",
		"Restart":                  "on-failure",
		"RuntimeDirectory":         strings.TrimPrefix(controlDir, "/run/"),
		"RuntimeDirectoryMode":     "0700", // privateDir's mode; `up` would chmod it anyway
		"RuntimeDirectoryPreserve": "yes",
		"DeviceAllow":              "/dev/net/tun rw",
		"NoNewPrivileges":          "yes",
		"ProtectSystem":            "strict",
		"ProtectHome":              "yes",
		"PrivateTmp":               "yes",
		"RestrictAddressFamilies":  "AF_INET AF_INET6 AF_NETLINK AF_UNIX",
	}
	for k, v := range want {
		if got := s[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	// The unit does not restart after the exit codes a restart cannot fix, and restarts
	// after every other failure, a refusal by the server included (its cure may be there).
	prevent := fmt.Sprint(exitUsage, " ", exitPrivilege)
	if got := s["RestartPreventExitStatus"]; len(got) != 1 || got[0] != prevent {
		t.Errorf("RestartPreventExitStatus=%q, want %q", got, prevent)
	}
	if u := s["User"]; len(u) != 1 || u[0] == "root" || u[0] == "0" {
		t.Errorf("User=%q: the unit must not run as root", u)
	}
	ambient := strings.Fields(strings.Join(s["AmbientCapabilities"], " "))
	bounding := strings.Fields(strings.Join(s["CapabilityBoundingSet"], " "))
	if !slices.Equal(ambient, bounding) {
		t.Errorf("AmbientCapabilities=%v and CapabilityBoundingSet=%v differ", ambient, bounding)
	}
	examples, _ := filepath.Glob("../../configs/*.yaml")
	if len(examples) == 0 {
		t.Fatal("no example configs")
	}
	needed := map[string]bool{}
	for _, f := range examples {
		cfg, err := config.LoadPublic(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range upNeeds(cfg, hostFacts{kernel: [2]int{6, 1}, unprivPortStart: 1024}) {
			needed[n.name] = true
			if !slices.Contains(ambient, n.name) {
				t.Errorf("%s needs %s (%s); the unit does not grant it", f, n.name, n.why)
			}
		}
	}
	for _, c := range ambient {
		if !needed[c] {
			t.Errorf("the unit grants %s, which no example config needs", c)
		}
	}
}

// TestUnitFileVerifies runs `systemd-analyze verify` on an instance of the unit, when it is
// installed. Its warnings (an unknown key, a bad value) do not change its exit status, so
// any output fails the test. The binary path is pointed at an executable that exists.
func TestUnitFileVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd); unit file not verified")
	}
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unit := strings.ReplaceAll(string(data), "/usr/local/bin/bondtun", exe)
	if err := os.WriteFile(filepath.Join(dir, "bondtun@.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", "--man=no", filepath.Join(dir, "bondtun@test.service"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil || out.Len() > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out.String())
	}
}
