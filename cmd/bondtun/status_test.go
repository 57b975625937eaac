package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/session"
)

// useControlDir points controlDir at a fresh temporary directory for the test.
func useControlDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "btctl") // short: unix socket paths are limited to 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	saved := controlDir
	controlDir = dir
	t.Cleanup(func() { controlDir = saved })
	return dir
}

func testKey(t *testing.T) crypto.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// discard reads a fake TUN's packets so the node never blocks writing to it.
func discard(ch chan []byte) {
	go func() {
		for range ch {
		}
	}()
}

// liveClient runs a real server and client over loopback with fake TUNs: uplink "a" is a
// primary, "b" a backup. It returns once both client paths answer.
func liveClient(t *testing.T) *session.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	serverKey, clientKey := testKey(t), testKey(t)
	serverTUN, clientTUN := tuntest.NewChannelTUN(), tuntest.NewChannelTUN()
	discard(serverTUN.Inbound)
	discard(clientTUN.Inbound)
	sv, err := session.NewServer(session.ServerConfig{
		Identity:  serverKey,
		Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Peers:     []session.PeerConfig{{Name: "client", Key: clientKey.Public(), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.2/32")}}},
	}, serverTUN.TUN())
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); sv.Run(ctx) }()
	c, err := session.NewClient(session.ClientConfig{
		Identity:   clientKey,
		ServerName: "server",
		ServerKey:  serverKey.Public(),
		Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sv.Port())),
		Uplinks: []session.UplinkConfig{
			{Name: "a", Source: netip.MustParseAddr("127.0.0.1")},
			{Name: "b", Source: netip.MustParseAddr("127.0.0.2"), Backup: true},
		},
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
	}, clientTUN.TUN())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		clientTUN.TUN().Close()
		serverTUN.TUN().Close()
	})
	waitUntil(t, "both client paths up", func() bool {
		s := c.Session()
		if s == nil {
			return false
		}
		n := 0
		for _, p := range s.Paths() {
			if p.State == "up" {
				n++
			}
		}
		return n == 2
	})
	return c
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serveClient serves c's control socket for the config file file, on device.
func serveClient(t *testing.T, device, file string, c *session.Client, shutdown func()) *controlServer {
	t.Helper()
	srv, err := listenControl(device, file, shutdown, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.set(controller{snapshot: c.Snapshot, setTier: c.SetTier, trace: c.WriteTrace})
	return srv
}

// docFields reads docs/STATUS.md's tables: object name (the "### " heading) → field → type.
func docFields(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := os.Open("../../docs/STATUS.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([^`]+)` \\| ([^|]+) \\|")
	out := map[string]map[string]string{}
	var object string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "### "); ok {
			object = strings.TrimSpace(name)
			out[object] = map[string]string{}
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil && object != "" {
			out[object][m[1]] = strings.TrimSpace(m[2])
		}
	}
	return out
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkObject compares one JSON object with the doc's table for it, both ways, checks its
// keys are snake_case and its values of the documented type (null only where the doc says
// so), and descends into the nested objects.
func checkObject(t *testing.T, doc map[string]map[string]string, name string, obj map[string]any) {
	t.Helper()
	fields, ok := doc[name]
	if !ok || len(fields) == 0 {
		t.Fatalf("docs/STATUS.md has no table for %q", name)
	}
	for key, v := range obj {
		if !snakeCase.MatchString(key) {
			t.Errorf("%s.%s: key is not snake_case", name, key)
		}
		typ, ok := fields[key]
		if !ok {
			t.Errorf("%s.%s is in the JSON but not in docs/STATUS.md", name, key)
			continue
		}
		if v == nil {
			if !strings.HasSuffix(typ, "or null") {
				t.Errorf("%s.%s is null; docs/STATUS.md says %s (lists must be [], never null)", name, key, typ)
			}
			continue
		}
		var got string
		switch x := v.(type) {
		case string:
			got = "string"
		case bool:
			got = "boolean"
		case []any:
			got = "array"
		case map[string]any:
			got = "object"
		case float64:
			got = "number"
			if x == float64(int64(x)) && strings.HasPrefix(typ, "integer") {
				got = "integer"
			}
		}
		if !strings.HasPrefix(typ, got) {
			t.Errorf("%s.%s is a JSON %s, docs/STATUS.md says %s", name, key, got, typ)
		}
	}
	for key := range fields {
		if _, ok := obj[key]; !ok {
			t.Errorf("docs/STATUS.md documents %s.%s but the JSON has no such key", name, key)
		}
	}
	nested := map[string]string{ // key of an object or list of objects → its table
		"tunnels": "tunnel", "sessions": "session", "paths": "path", "reorder": "reorder",
		"node_counters": "node_counters",
	}
	if name == "session" {
		nested["counters"] = "session.counters"
	}
	if name == "reorder" {
		nested["counters"] = "reorder.counters"
	}
	for key, v := range obj {
		sub, ok := nested[key]
		if !ok {
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			checkObject(t, doc, sub, x)
		case []any:
			for _, e := range x {
				if m, ok := e.(map[string]any); ok {
					checkObject(t, doc, sub, m)
				}
			}
		}
	}
}

// TestStatusJSONMatchesDoc asks a live client's control socket through `bondtun status
// --json`, with and without -c, and holds the JSON to docs/STATUS.md.
func TestStatusJSONMatchesDoc(t *testing.T) {
	useControlDir(t)
	file := writeDemoVariant(t, "client.yaml", "name: bt0", "name: bt%d")
	c := liveClient(t)
	serveClient(t, "bt7", file, c, func() {})

	for _, args := range [][]string{{"status", "--json"}, {"status", "-json", "-c", file}} {
		code, out, stderr := runCLI(t, "", args...)
		if code != 0 || stderr != "" {
			t.Fatalf("%v: code %d, stderr %q", args, code, stderr)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		checkObject(t, docFields(t), "status", doc)
		if v := doc["schema_version"]; v != float64(1) {
			t.Errorf("schema_version %v, want 1", v)
		}
		tunnels, _ := doc["tunnels"].([]any)
		if len(tunnels) != 1 {
			t.Fatalf("%v: %d tunnels, want 1:\n%s", args, len(tunnels), out)
		}
		tunnel := tunnels[0].(map[string]any)
		if tunnel["device"] != "bt7" || tunnel["pid"] != float64(os.Getpid()) {
			t.Errorf("tunnel device %v pid %v, want bt7 and %d", tunnel["device"], tunnel["pid"], os.Getpid())
		}
		sessions := tunnel["sessions"].([]any)
		if len(sessions) != 1 {
			t.Fatalf("%d sessions, want 1", len(sessions))
		}
		states := map[string]string{}
		for _, p := range sessions[0].(map[string]any)["paths"].([]any) {
			p := p.(map[string]any)
			states[strings.SplitN(p["name"].(string), "→", 2)[0]] = p["state"].(string)
		}
		if states["a"] != "up" || states["b"] != "standby" {
			t.Errorf("path states %v, want a up and the backup b standby", states)
		}
	}
}

// TestStatusTextShowsStates checks the table of `bondtun status` and that it finds the
// tunnel through a pattern-named config.
func TestStatusTextShowsStates(t *testing.T) {
	useControlDir(t)
	file := writeDemoVariant(t, "client.yaml", "name: bt0", "name: bt%d")
	c := liveClient(t)
	serveClient(t, "bt3", file, c, func() {})
	code, out, stderr := runCLI(t, "", "status", "-c", file)
	if code != 0 || stderr != "" {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
	t.Logf("status:\n%s", out)
	for _, want := range []string{"bt3: client", "standby", "share_%", "reorder:  held 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output has no %q:\n%s", want, out)
		}
	}
	if code, _, stderr := runCLI(t, "", "tier", "-c", file, "b", "primary"); code != 0 {
		t.Fatalf("tier through the found socket: code %d, %s", code, stderr)
	}
}

// staleSocket leaves a socket file at path that nobody listens on, as a killed `up` does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
}

func TestStaleAndLiveSockets(t *testing.T) {
	dir := useControlDir(t)
	file := writeDemoVariant(t, "client.yaml")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stale := controlSocketPath("bt0", file)
	staleSocket(t, stale)

	code, _, stderr := runCLI(t, "", "status", "-c", file)
	if code != 1 || !strings.Contains(stderr, "stale control socket") || !strings.Contains(stderr, "bondtun down -c") {
		t.Fatalf("status of a crashed tunnel: code %d, stderr %q", code, stderr)
	}
	code, out, _ := runCLI(t, "", "status", "--json")
	var doc statusDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 {
		t.Fatalf("status --json: code %d, %v\n%s", code, err, out)
	}
	if len(doc.Tunnels) != 0 || len(doc.StaleSockets) != 1 || doc.StaleSockets[0] != stale {
		t.Fatalf("status --json = %+v; want no tunnel and the stale socket %s", doc, stale)
	}

	// up removes the stale socket ...
	if err := claimControlSockets(file, log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale socket still there after claim: %v", err)
	}
	// ... but refuses to start while a live one owns the file's socket, whatever its device.
	srv, err := listenControl("bt4", file, func() {}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	err = claimControlSockets(file, log)
	if err == nil || !strings.Contains(err.Error(), "already running") || !strings.Contains(err.Error(), "bondtun down -c") {
		t.Fatalf("claim with a live socket: %v; want an error that says it is already running", err)
	}
	// Another file's socket is no obstacle.
	other := writeDemoVariant(t, "server.yaml")
	if err := claimControlSockets(other, log); err != nil {
		t.Fatalf("claim of another file: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files in the control directory, want the live socket only", len(entries))
	}
}

// TestShutdownRequest is `down`'s first half: the request reaches the run, which ends
// (here: closes its socket, as runUp does after its teardown), and stopRunning returns
// only then, with the listener's process ID.
func TestShutdownRequest(t *testing.T) {
	useControlDir(t)
	file := writeDemoVariant(t, "client.yaml")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var srv *controlServer
	var tornDown atomic.Bool
	srv, err := listenControl("bt0", file, func() {
		go func() {
			time.Sleep(100 * time.Millisecond) // a teardown
			tornDown.Store(true)
			srv.Close()
		}()
	}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := stopRunning(srv.info.Socket)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("stopRunning: pid %d, %v; want %d", pid, err, os.Getpid())
	}
	if !tornDown.Load() {
		t.Fatal("stopRunning returned before the run's teardown ended")
	}
	if _, err := os.Stat(srv.info.Socket); !os.IsNotExist(err) {
		t.Fatalf("socket file left after the run ended: %v", err)
	}
	if _, err := stopRunning(srv.info.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stopRunning of a gone run: %v, want not-exist", err)
	}
}
