package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/session"
	"github.com/bondtun/bondtun/tun"
)

// seedKey is the public key of a fixed seed n, so the files of one test agree.
func seedKey(n int) string {
	seed := [32]byte{byte(n), byte(n >> 8), 7}
	k, err := crypto.ParsePrivateKey(base64.StdEncoding.EncodeToString(seed[:]))
	if err != nil {
		panic(err)
	}
	return k.Public().String()
}

// serverYAML is a server file with the peers given as NAME=KEYSEED=PREFIX, and extra
// top-level lines.
func serverYAML(extra string, peers ...string) string {
	var b strings.Builder
	b.WriteString("version: 1\nprivate_key: \"dzX6GOvAXtlXf9KUBK6b+vJp9CX3upsRvDlhNjt8DYA=\"\nlog_level: info\n")
	b.WriteString("tun:\n  name: bt0\n  addresses: [10.77.0.1/24]\nlisten:\n  port: 7350\n  addresses: [10.99.0.1]\n")
	b.WriteString(extra)
	b.WriteString("peers:\n")
	for _, p := range peers {
		f := strings.Split(p, "=")
		var seed int
		fmt.Sscan(f[1], &seed)
		fmt.Fprintf(&b, "  - name: %s\n    public_key: %q\n    allowed_ips: [%s]\n", f[0], seedKey(seed), f[2])
	}
	return b.String()
}

func parseServer(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("server.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPlanReload(t *testing.T) {
	cur := parseServer(t, serverYAML("", "a=1=10.77.0.2/32", "b=2=10.77.0.3/32", "d=4=10.77.0.5/32"))
	next := parseServer(t, strings.Replace(serverYAML("", "a=1=10.77.0.2/32", "c=3=10.77.0.4/32", "d2=4=10.77.0.6/32, 10.80.0.0/16"),
		"log_level: info", "log_level: debug", 1))
	p, err := planReload(cur, next)
	if err != nil {
		t.Fatal(err)
	}
	want := reloadPlan{
		LogLevel:  slog.LevelDebug,
		AddRoutes: []netip.Prefix{netip.MustParsePrefix("10.77.0.4/32"), netip.MustParsePrefix("10.77.0.6/32"), netip.MustParsePrefix("10.80.0.0/16")},
		DelRoutes: []netip.Prefix{netip.MustParsePrefix("10.77.0.3/32"), netip.MustParsePrefix("10.77.0.5/32")},
		Added:     []string{"c"},
		Removed:   []string{"b"},
		Changed:   []string{"d2"},
	}
	if fmt.Sprint(p) != fmt.Sprint(want) {
		t.Fatalf("plan\n%+v\nwant\n%+v", p, want)
	}
	if got := p.summary(); got != "peers added 1 (c); changed 1 (d2); removed 1 (b); routes +3 -2; log_level debug" {
		t.Errorf("summary %q", got)
	}

	// A re-keyed peer is its old key removed and its new key added.
	rekeyed := parseServer(t, serverYAML("", "a=9=10.77.0.2/32", "b=2=10.77.0.3/32", "d=4=10.77.0.5/32"))
	if p, err := planReload(cur, rekeyed); err != nil || !slices.Equal(p.Added, []string{"a"}) || !slices.Equal(p.Removed, []string{"a"}) ||
		len(p.AddRoutes)+len(p.DelRoutes) != 0 {
		t.Errorf("re-keyed: %+v, %v", p, err)
	}

	// The gateway's sets follow the peers.
	gw := "gateway:\n  out: eth0\n"
	gcur := parseServer(t, serverYAML(gw, "a=1=10.77.0.2/32"))
	gnext := parseServer(t, serverYAML(gw, "a=1=10.77.0.2/32", "c=3=10.77.0.4/32"))
	if p, err := planReload(gcur, gnext); err != nil || !p.GatewaySet {
		t.Errorf("gateway: %+v, %v; want its sets changed", p, err)
	}
	if p, err := planReload(gcur, gcur); err != nil || p.GatewaySet || p.summary() != "log_level info" {
		t.Errorf("unchanged: %+v, %v", p, err)
	}
}

func TestPlanReloadRefusesRestartOnlyKeys(t *testing.T) {
	base := serverYAML("", "a=1=10.77.0.2/32")
	cur := parseServer(t, base)
	for _, tc := range []struct{ old, new, key string }{
		{"name: bt0", "name: bt1", "tun.name"},
		{"addresses: [10.77.0.1/24]", "addresses: [10.77.0.1/16]", "tun.addresses"},
		{"addresses: [10.77.0.1/24]", "addresses: [10.77.0.1/24]\n  table: 7000", "tun.table"},
		{"addresses: [10.77.0.1/24]", "addresses: [10.77.0.1/24]\n  fwmark: 0x7000", "tun.fwmark"},
		{"port: 7350", "port: 7351", "listen.port"},
		{"addresses: [10.99.0.1]", "addresses: [10.99.0.2]", "listen.addresses"},
		{"log_level: info", "log_level: info\nscheduler: drr", "scheduler"},
		{"log_level: info", "log_level: info\ngateway:\n  out: eth0", "gateway"},
	} {
		next := parseServer(t, strings.Replace(base, tc.old, tc.new, 1))
		_, err := planReload(cur, next)
		if !errors.Is(err, errRestartOnly) || !strings.HasPrefix(err.Error(), tc.key+" ") {
			t.Errorf("%s changed: err %v, want it named as restart-only", tc.key, err)
		}
	}
	client, err := config.Parse("client.yaml", mustRead(t, "../../configs/client.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := planReload(client, cur); !errors.Is(err, errRestartOnly) {
		t.Errorf("client to server: %v", err)
	}
	moved, err := config.Parse("client.yaml", bytes.Replace(mustRead(t, "../../configs/client.yaml"), []byte("10.99.0.1:7350"), []byte("10.99.0.2:7350"), 1))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := planReload(client, moved); err != nil || !p.Server {
		t.Errorf("client endpoint changed: %+v, %v; want a new session", p, err)
	}
	if p, err := planReload(client, client); err != nil || p.Server {
		t.Errorf("client unchanged: %+v, %v; want no new session", p, err)
	}
	ups, err := config.Parse("client.yaml", bytes.Replace(mustRead(t, "../../configs/client.yaml"), []byte("interface: up1"), []byte("interface: up2"), 1))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := planReload(client, ups); err != nil || fmt.Sprint(p.UplinksRemoved, p.UplinksAdded) != "[dsl] [dsl]" {
		t.Errorf("client uplink's interface changed: %+v, %v; want dsl removed and added", p, err)
	}
	direct, err := config.Parse("client.yaml", bytes.Replace(mustRead(t, "../../configs/client.yaml"), []byte("  mtu: 0"), []byte("  while_down: direct\n  mtu: 0"), 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := planReload(client, direct); !errors.Is(err, errRestartOnly) || !strings.HasPrefix(err.Error(), "tun.while_down ") {
		t.Errorf("client tun.while_down changed: %v", err)
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeNode records what a reload asked of the server, the host and the gateway.
type fakeNode struct {
	routes   []netip.Prefix
	peers    []session.PeerConfig
	gateway  []netip.Prefix
	failAt   string // "routes", "peers" or "gateway": that call fails
	routeSet int    // calls of SetRoutes
}

func (f *fakeNode) SetRoutes(routes []netip.Prefix) (int, int, error) {
	f.routeSet++
	if f.failAt == "routes" {
		return 0, 0, errors.New("route exists")
	}
	f.routes = routes
	return 0, 0, nil
}

func (f *fakeNode) SetPeers(peers []session.PeerConfig) (session.PeerChanges, error) {
	if f.failAt == "peers" {
		return session.PeerChanges{}, errors.New("duplicate key")
	}
	f.peers = peers
	return session.PeerChanges{}, nil
}

func (f *fakeNode) Update(p tun.GatewayPlan) error {
	if f.failAt == "gateway" {
		return errors.New("nft failed")
	}
	f.gateway = p.Peers
	return nil
}

func peerNames(ps []session.PeerConfig) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// TestReloadKeepsRunningStateOnBrokenConfig: a file that fails to validate, changes a
// fixed key, or whose application fails changes nothing, and the next good file applies.
func TestReloadKeepsRunningStateOnBrokenConfig(t *testing.T) {
	gw := "gateway:\n  out: eth0\n"
	dir := t.TempDir()
	file := filepath.Join(dir, "server.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(serverYAML(gw, "a=1=10.77.0.2/32", "b=2=10.77.0.3/32"))
	cur, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	var logs bytes.Buffer
	rl := newReloader(cur, level, false, slog.New(slog.NewTextHandler(&logs, nil)))
	node := &fakeNode{}
	rl.setApply(serverApply(node, node, node, "bt0", rl.log))

	broken := []struct{ name, yaml, want string }{
		{"overlapping allowed_ips", strings.Replace(serverYAML(gw, "a=1=10.77.0.2/32", "c=3=10.77.0.2/32"), "log_level: info", "log_level: debug", 1), "overlaps"},
		{"syntax", "version: 1\npeers: [", "server.yaml"},
		{"restart-only", strings.Replace(serverYAML(gw, "a=1=10.77.0.2/32"), "port: 7350", "port: 7000", 1), "listen.port"},
	}
	for _, tc := range broken {
		write(tc.yaml)
		if _, err := rl.reload(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one mentioning %q", tc.name, err, tc.want)
		}
		if node.routeSet != 0 || node.peers != nil || level.Level() != slog.LevelInfo || rl.cur != cur {
			t.Fatalf("%s: the refused file changed the running state", tc.name)
		}
	}

	// Applying fails half-way: what was done is undone, the running config stays.
	write(serverYAML(gw, "a=1=10.77.0.2/32", "c=3=10.77.0.4/32"))
	node.failAt = "routes"
	if _, err := rl.reload(); err == nil || rl.cur != cur {
		t.Fatalf("a failed route change: err %v, config replaced %v", err, rl.cur != cur)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.77.0.2/32"), netip.MustParsePrefix("10.77.0.3/32")}; !slices.Equal(node.gateway, want) {
		t.Fatalf("gateway sets after a failed reload: %v, want the running ones %v", node.gateway, want)
	}
	if node.peers != nil {
		t.Fatal("peers changed by a failed reload")
	}

	node.failAt = ""
	sum, err := rl.reload()
	if err != nil {
		t.Fatal(err)
	}
	if got := peerNames(node.peers); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("peers %v after the good file", got)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.77.0.2/32"), netip.MustParsePrefix("10.77.0.4/32")}; !slices.Equal(node.routes, want) {
		t.Errorf("routes %v, want %v", node.routes, want)
	}
	if !strings.Contains(sum, "peers added 1 (c)") || !strings.Contains(sum, "removed 1 (b)") || !strings.Contains(sum, "gateway") {
		t.Errorf("summary %q", sum)
	}
}

// TestReloadCommand: `bondtun reload` prints what the running up applied, or its error
// and exits 1.
func TestReloadCommand(t *testing.T) {
	useControlDir(t)
	file := writeDemoVariant(t, "server.yaml")
	answer := func() (string, error) { return "routes +1 -0; log_level info", nil }
	srv, err := listenControl("bt0", file, func() {}, func() (string, error) { return answer() }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"reload", "-c", file}, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "routes +1 -0") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	answer = func() (string, error) {
		return "", errors.Join(errors.New("server.yaml:9: peers[1].allowed_ips[0]: overlaps"), errors.New("second line"))
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"reload", "-c", file}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "server.yaml:9: peers[1].allowed_ips[0]: overlaps; second line") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and the error", code, out.String(), errOut.String())
	}
}

// BenchmarkReload10000Peers is a server's reload of a file of 10 000 peers in which one
// peer changed, without the host (scripts/bench-scale.sh measures it with the host).
func BenchmarkReload10000Peers(b *testing.B) {
	peers := make([]string, 10000)
	for i := range peers {
		peers[i] = fmt.Sprintf("p%d=%d=10.%d.%d.%d/32", i, i, 64+i/62500, i/250%250, 1+i%250)
	}
	a := serverYAML("", peers...)
	peers[0] = "p0=0=10.126.0.1/32"
	c := serverYAML("", peers...)
	dir := b.TempDir()
	file := filepath.Join(dir, "server.yaml")
	if err := os.WriteFile(file, []byte(a), 0o600); err != nil {
		b.Fatal(err)
	}
	cur, err := config.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	rl := newReloader(cur, new(slog.LevelVar), false, slog.New(slog.DiscardHandler))
	node := &fakeNode{}
	rl.setApply(serverApply(node, node, nil, "bt0", rl.log))
	i := 0
	for b.Loop() {
		b.StopTimer()
		data := a
		if i%2 == 0 {
			data = c
		}
		i++
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := rl.reload(); err != nil {
			b.Fatal(err)
		}
	}
}
