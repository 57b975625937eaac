package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/config"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestGenkeyPubkey(t *testing.T) {
	code, key, stderr := runCLI(t, "", "genkey")
	if code != 0 || stderr != "" || len(strings.TrimSpace(key)) != 44 {
		t.Fatalf("genkey: code %d, key %q, stderr %q", code, key, stderr)
	}
	code, pub1, _ := runCLI(t, key, "pubkey")
	if code != 0 || len(strings.TrimSpace(pub1)) != 44 {
		t.Fatalf("pubkey: code %d, out %q", code, pub1)
	}
	_, pub2, _ := runCLI(t, key, "pubkey")
	if pub1 != pub2 {
		t.Fatal("pubkey is not deterministic")
	}
	if _, other, _ := runCLI(t, "", "genkey"); other == key {
		t.Fatal("genkey returned the same key twice")
	}
}

func TestPubkeyRejectsGarbage(t *testing.T) {
	code, out, stderr := runCLI(t, "not a key\n", "pubkey")
	if code != 1 || out != "" || !strings.HasPrefix(stderr, "bondtun pubkey: ") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("code %d, stdout %q, stderr %q: want exit 1 and one line on stderr", code, out, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, 2, "Commands:"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"up without -c", []string{"up"}, 2, "missing -c FILE"},
		{"down with extra arg", []string{"down", "-c", "x.yaml", "extra"}, 2, `unexpected argument "extra"`},
		{"genkey with arg", []string{"genkey", "x"}, 2, "takes no arguments"},
		{"status unknown flag", []string{"status", "-x"}, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, "", tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) || out != "" {
				t.Fatalf("code %d, stdout %q, stderr %q; want code %d and %q on stderr", code, out, stderr, tt.code, tt.want)
			}
		})
	}
}

func TestHelpAndVersionOnStdout(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"help", "up"}, {"version"}} {
		code, out, stderr := runCLI(t, "", args...)
		if code != 0 || out == "" || stderr != "" {
			t.Errorf("%v: code %d, stdout %q, stderr %q", args, code, out, stderr)
		}
	}
}

func TestBadConfigNamesFileLineAndField(t *testing.T) {
	file := writeDemoVariant(t, "client.yaml", "interface: up1", "interface: up0")
	code, _, stderr := runCLI(t, "", "up", "-c", file)
	if code != exitUsage || !strings.Contains(stderr, file+":") || !strings.Contains(stderr, "uplinks[1].interface") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("code %d, stderr %q: want one line naming file, line and field", code, stderr)
	}
}

func TestHostPlanFromDemoConfig(t *testing.T) {
	cfg := loadDemo(t, "client.yaml")
	plan, err := hostPlan(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Device != "bt0" || plan.MTU != 1440 || len(plan.Uplinks) != 2 {
		t.Fatalf("plan = %+v", plan)
	}
	if plan.Uplinks[0].Table == plan.Uplinks[1].Table {
		t.Fatal("uplinks share a routing table")
	}
	cc := clientConfig(cfg, plan)
	if len(cc.Uplinks) != 2 || cc.Uplinks[1].Device != "up1" || cc.Endpoint.Port() != 7350 {
		t.Fatalf("client config = %+v", cc)
	}
	sc := serverConfig(loadDemo(t, "server.yaml"))
	if len(sc.Peers) != 1 || sc.Peers[0].Key != cfg.PrivateKey.Public() {
		t.Fatal("the demo server does not accept the demo client's key")
	}
}

func loadDemo(t *testing.T, name string) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("../../configs", name))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestVersionFlagsAndFallbacks(t *testing.T) {
	_, want, _ := runCLI(t, "", "version")
	for _, flag := range []string{"--version", "-V"} {
		code, out, stderr := runCLI(t, "", flag)
		if code != 0 || out != want || stderr != "" {
			t.Errorf("%s: code %d, stdout %q, stderr %q; want the output of `bondtun version`, %q", flag, code, out, stderr, want)
		}
	}
	vcs := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	tests := []struct {
		name    string
		stamped string
		info    *debug.BuildInfo
		want    string
	}{
		{"stamped wins", "v0.3-2-gabc", vcs("0123456789abcdef0123", "false"), "v0.3-2-gabc"},
		{"go install of a tagged module", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"checkout, clean", "", vcs("0123456789abcdef0123", "false"), "0123456789ab"},
		{"checkout, dirty", "", vcs("0123456789abcdef0123", "true"), "0123456789ab-dirty"},
		{"no information", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
	}
	for _, tt := range tests {
		if got := versionString(tt.stamped, tt.info, true); got != tt.want {
			t.Errorf("%s: versionString = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := versionString("", nil, false); got != "dev" {
		t.Errorf("without build info: %q, want dev", got)
	}
}

// writeConfig writes the demo client config, changed by edit, with mode, and returns its path.
func writeConfig(t *testing.T, edit func(string) string, mode os.FileMode) string {
	t.Helper()
	data, err := os.ReadFile("../../configs/client.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte(edit(string(data))), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestUpRefusesReadableKey: `up` stops before touching the host when the YAML holding
// the key inline is readable by others, and says how to fix it.
func TestUpRefusesReadableKey(t *testing.T) {
	file := writeConfig(t, func(s string) string { return s }, 0o644)
	code, out, stderr := runCLI(t, "", "up", "-c", file)
	if code != exitUsage || out != "" || !strings.Contains(stderr, "chmod 600 "+file) ||
		!strings.Contains(stderr, file+":") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("code %d, stderr %q: want one line naming %s with the chmod", code, stderr, file)
	}
}

// TestStatusDoesNotLoadKey: status, tier and down read the config without its private
// key, so a key file that is missing (or a key that does not parse) does not matter to
// them; they fail only for what they need (here: no tunnel is running).
func TestStatusDoesNotLoadKey(t *testing.T) {
	useControlDir(t)
	cases := map[string]func(string) string{
		"missing key file": func(s string) string {
			return regexp.MustCompile(`(?m)^private_key: .*$`).ReplaceAllString(s, "private_key_file: /nonexistent/bondtun.key")
		},
		"bad inline key": func(s string) string {
			return regexp.MustCompile(`(?m)^private_key: .*$`).ReplaceAllString(s, `private_key: "not a key"`)
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			file := writeConfig(t, edit, 0o600)
			for _, args := range [][]string{{"status", "-c", file}, {"tier", "-c", file, "cable", "backup"}} {
				code, _, stderr := runCLI(t, "", args...)
				if code != 1 || !strings.Contains(stderr, "is not running") {
					t.Errorf("%v: code %d, stderr %q: want only 'is not running'", args, code, stderr)
				}
			}
			if code, _, stderr := runCLI(t, "", "up", "-c", file); code != exitUsage || !strings.Contains(stderr, "private_key") {
				t.Errorf("up: code %d, stderr %q: want the key error", code, stderr)
			}
		})
	}
}

// TestListenPrivate: the control socket lives in a 0700 directory (an older 0755 one is
// tightened before the socket exists) and is 0600 itself; a symbolic link in place of
// the directory is refused.
func TestListenPrivate(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bt0.sock")
	ln, err := listenPrivate(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700, sock: 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Errorf("socket does not accept: %v", err)
	} else {
		c.Close()
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if ln2, err := listenPrivate(filepath.Join(link, "x.sock")); err == nil {
		ln2.Close()
		t.Fatal("listened in a directory reached through a symbolic link")
	}
}
