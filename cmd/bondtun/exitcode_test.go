package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/session"
)

// TestExitCodes: each kind of error `up` can end with has its own exit code, wrapped or
// not, and the help lists them all.
func TestExitCodes(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{errHelpShown, exitOK},
		{errors.New("netlink: file exists"), exitError},
		{usageErr("missing -c FILE"), exitUsage},
		{withCode(exitUsage, errors.New("client.yaml:3: tun: bad")), exitUsage},
		{fmt.Errorf("server 10.0.0.1:7350: %w: the server's key is not the configured one", session.ErrRefused), exitRefused},
		{fmt.Errorf("server 10.0.0.1:7350: %w: incompatible server: it speaks protocol version 2, we speak 1", session.ErrRefused), exitRefused},
		{withCode(exitPrivilege, errors.New("missing capability CAP_NET_ADMIN")), exitPrivilege},
		{fmt.Errorf("outer: %w", withCode(exitPrivilege, errors.New("x"))), exitPrivilege},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if withCode(exitUsage, nil) != nil {
		t.Error("withCode(code, nil) is not nil")
	}
	code, out, _ := runCLI(t, "", "--help")
	_, exitHelp, _ := runCLI(t, "", "help", "exit")
	for _, text := range []string{out, exitHelp} {
		for n := exitOK; n <= exitPrivilege; n++ {
			if !strings.Contains(text, fmt.Sprintf("\n%d  ", n)) {
				t.Errorf("help (code %d) does not list exit code %d:\n%s", code, n, text)
			}
		}
	}
}

// TestUpExitCodes: `up` tells a file that does not load (2) from other errors, before it
// touches anything.
func TestUpExitCodes(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nfoo: bar\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"up"}, {"up", "-x"}, {"up", "-c", missing}, {"up", "-c", bad}} {
		if code, _, stderr := runCLI(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d; stderr %q", args, code, exitUsage, stderr)
		}
	}
}
