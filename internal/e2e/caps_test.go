package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Demo keys of configs/ (public; tests only).
const (
	capsClientPriv = "J/DdsyCDTAQBOGRTyiaM7lMsmBby6yMtqJ0hB+HNoGg="
	capsClientPub  = "Tk4Lh+uLFGgRTAR4qQ8EUHQhKR1oGgMm2exjMFj1vVo="
	capsServerPriv = "dzX6GOvAXtlXf9KUBK6b+vJp9CX3upsRvDlhNjt8DYA="
	capsServerPub  = "ndeZ8zsM+51YbbCCrnJMDOy+Y4ISDlw4Oi8ELyGIh3w="
	nobody         = 65534
)

// TestUpWithOnlyNetAdmin runs a server and a client `bondtun up`, each as user nobody with
// CAP_NET_ADMIN as its only capability (what configs/bondtun@.service grants), in two network
// namespaces joined by a veth pair, and pings through the tunnel. Each runs in a mount
// namespace of its own with a fresh /run, whose bondtun directory belongs to nobody, as the
// unit's RuntimeDirectory= makes it, and a /dev/net/tun of mode 0666 as udev makes it (bound
// over the host's there when the host's is stricter, as in some containers). It also checks that without the capability `up` fails
// naming it.
func TestUpWithOnlyNetAdmin(t *testing.T) {
	requireRootAndTools(t)
	for _, tool := range []string{"setpriv", "unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux)", tool)
		}
	}
	root := repoRoot(t)
	dir, err := os.MkdirTemp("", "bondtun-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // nobody runs the binary and reads the files
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bondtun")
	build := exec.Command("go", "build", "-o", bin, "./cmd/bondtun")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	id := os.Getpid() % 100000
	nsS, nsC := fmt.Sprintf("capsS%d", id), fmt.Sprintf("capsC%d", id)
	vethS, vethC := fmt.Sprintf("cps%d", id), fmt.Sprintf("cpc%d", id)
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", nsS).Run()
		exec.Command("ip", "netns", "del", nsC).Run()
	})
	sh("ip", "netns", "add", nsS)
	sh("ip", "netns", "add", nsC)
	sh("ip", "link", "add", vethS, "netns", nsS, "type", "veth", "peer", "name", vethC, "netns", nsC)
	sh("ip", "-n", nsS, "addr", "add", "10.201.0.1/24", "dev", vethS)
	sh("ip", "-n", nsC, "addr", "add", "10.201.0.2/24", "dev", vethC)
	for _, l := range [][2]string{{nsS, vethS}, {nsS, "lo"}, {nsC, vethC}, {nsC, "lo"}} {
		sh("ip", "-n", l[0], "link", "set", l[1], "up")
	}

	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		return p
	}
	server := write("server.yaml", `version: 1
private_key: "`+capsServerPriv+`"
tun: {name: bt0, addresses: [10.78.0.1/24]}
listen: {port: 7350, addresses: [10.201.0.1]}
peers: [{name: client, public_key: "`+capsClientPub+`", allowed_ips: [10.78.0.2/32]}]
`)
	client := write("client.yaml", `version: 1
private_key: "`+capsClientPriv+`"
tun: {name: bt0, addresses: [10.78.0.2/24]}
uplinks: [{name: veth, interface: `+vethC+`, address: 10.201.0.2}]
peers: [{name: server, public_key: "`+capsServerPub+`", endpoint: "10.201.0.1:7350", allowed_ips: [10.78.0.0/24]}]
`)
	// up starts `bondtun up -c cfg` in netns ns as nobody with caps ("+net_admin" or "").
	up := func(ns, cfg, caps string) *exec.Cmd {
		capFlags := "--inh-caps=-all --ambient-caps=-all --bounding-set=-all"
		if caps != "" {
			capFlags = "--inh-caps=-all," + caps + " --ambient-caps=-all," + caps + " --bounding-set=-all," + caps
		}
		script := fmt.Sprintf(`mount -t tmpfs -o mode=0755 tmpfs /run && install -d -m 0700 -o %d -g %d /run/bondtun &&
if [ "$(stat -c %%a /dev/net/tun)" != 666 ]; then mknod -m 0666 /run/tun c 10 200 && mount --bind /run/tun /dev/net/tun; fi &&
exec setpriv --reuid=%d --regid=%d --clear-groups --no-new-privs %s %s up -c %s`, nobody, nobody, nobody, nobody, capFlags, bin, cfg)
		cmd := exec.Command("nsenter", "--net=/run/netns/"+ns, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
		cmd.Stdout, cmd.Stderr = new(bytes.Buffer), new(bytes.Buffer)
		return cmd
	}
	exited := make(chan string, 2)
	start := func(name string, cmd *exec.Cmd) {
		t.Helper()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done); exited <- name }()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			if t.Failed() { // after Wait: the buffer is complete and no longer written
				t.Logf("%s's up:\n%s", name, cmd.Stderr)
			}
		})
	}

	// Without the capability: refused, naming it.
	bare := up(nsS, server, "")
	bare.Stdout, bare.Stderr = nil, nil
	out, err := bare.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing capability CAP_NET_ADMIN") {
		t.Fatalf("up without CAP_NET_ADMIN: %v\n%s", err, out)
	}

	srv, cli := up(nsS, server, "+net_admin"), up(nsC, client, "+net_admin")
	start("server", srv)
	// Today a client's up ends if its first connect is refused: start it once the server listens.
	for deadline := time.Now().Add(10 * time.Second); ; {
		ss, _ := exec.Command("ip", "netns", "exec", nsS, "ss", "-Hltn", "sport", "= :7350").Output()
		if len(bytes.TrimSpace(ss)) > 0 {
			break
		}
		select {
		case <-exited:
			t.Fatal("the server's up exited (its output follows)")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the server's up does not listen on 7350 after 10 s")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
	start("client", cli)
	// The tunnel is up once a ping through it is answered; the session needs a handshake
	// first, so retry until a deadline.
	var ping []byte
	ok := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !ok; {
		ping, err = exec.Command("ip", "netns", "exec", nsC, "ping", "-c", "1", "-W", "1", "10.78.0.1").CombinedOutput()
		ok = err == nil
		select {
		case name := <-exited:
			t.Fatalf("the %s's up exited (its output follows)", name)
		default:
		}
	}
	if !ok {
		t.Fatalf("no ping through the tunnel of two non-root ups (their output follows):\n%s", ping)
	}
	for name, cmd := range map[string]*exec.Cmd{"server": srv, "client": cli} {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 1 && f[0] == "Uid:" && f[1] != fmt.Sprint(nobody):
				t.Errorf("%s runs as uid %s, want %d", name, f[1], nobody)
			case len(f) > 1 && f[0] == "CapEff:" && f[1] != "0000000000001000":
				t.Errorf("%s has capabilities %s, want CAP_NET_ADMIN (0x1000) only", name, f[1])
			}
		}
	}
}
