package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/session"
)

// addr is the endpoint's address, or "" without one.
func (m *metricsEndpoint) addr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srv == nil {
		return ""
	}
	return m.srv.Addr().String()
}

// freePort returns a loopback TCP address nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrape fetches /metrics from addr and reports whether it answered with bondtun's metrics.
func scrape(addr string) bool {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == 200 && bytes.Contains(b, []byte("bondtun_node_info"))
}

// TestReloadMovesMetrics: a reload starts the endpoint, moves it (the old address stops
// answering, the new one serves the node's snapshot), refuses a busy address with the old
// endpoint still serving and nothing else changed, and stops it.
func TestReloadMovesMetrics(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "server.yaml")
	write := func(metrics string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(serverYAML(metrics, "a=1=10.77.0.2/32")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	cur, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	mx, err := startMetrics(cur, log)
	if err != nil {
		t.Fatal(err)
	}
	defer mx.Close()
	mx.set(func() session.Snapshot { return session.Snapshot{} })
	rl := newReloader(cur, new(slog.LevelVar), false, log)
	rl.setMetrics(mx)
	rl.setApply(serverApply(&fakeNode{}, &fakeNode{}, nil, "bt0", log))
	if mx.addr() != "" {
		t.Fatal("an endpoint without metrics.listen")
	}

	first, second := freePort(t), freePort(t)
	write("metrics:\n  listen: " + first + "\n")
	sum, err := rl.reload()
	if err != nil || !strings.Contains(sum, "metrics endpoint on "+first) || !scrape(first) {
		t.Fatalf("start: %q, %v; scrape %v", sum, err, scrape(first))
	}
	write("metrics:\n  listen: " + second + "\n")
	if sum, err := rl.reload(); err != nil || !strings.Contains(sum, "metrics endpoint on "+second) {
		t.Fatalf("move: %q, %v", sum, err)
	}
	if !scrape(second) || scrape(first) {
		t.Fatalf("after the move: new address serves %v, old one %v", scrape(second), scrape(first))
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	running := rl.cur
	write("metrics:\n  listen: " + busy.Addr().String() + "\n")
	if _, err := rl.reload(); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
		t.Fatalf("a busy address: %v, want the bind error", err)
	}
	if rl.cur != running || mx.addr() != second || !scrape(second) {
		t.Fatalf("a refused move changed the endpoint: now %q", mx.addr())
	}

	write("")
	if sum, err := rl.reload(); err != nil || !strings.Contains(sum, "metrics endpoint stopped") {
		t.Fatalf("stop: %q, %v", sum, err)
	}
	if scrape(second) || mx.addr() != "" {
		t.Fatal("the endpoint still serves after metrics was removed")
	}
}
