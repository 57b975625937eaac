package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"bondtun/session"
)

// statusDir holds one unix socket per running tunnel, named after its device.
const statusDir = "/run/bondtun"

// statusSocket names the socket after the device and the configuration file, so that
// tunnels in different network namespaces (which share /run) do not collide.
func statusSocket(device, configPath string) string {
	abs, err := filepath.Abs(configPath)
	if err != nil {
		abs = configPath
	}
	h := fnv.New32a()
	h.Write([]byte(abs))
	return filepath.Join(statusDir, fmt.Sprintf("%s-%08x.sock", device, h.Sum32()))
}

// serveStatus answers every connection on the device's status socket with a JSON snapshot.
// It returns a function that closes the socket and removes its file.
func serveStatus(device, configPath string, snap func() session.Snapshot, log *slog.Logger) (func(), error) {
	if err := os.MkdirAll(statusDir, 0o755); err != nil {
		return nil, err
	}
	path := statusSocket(device, configPath)
	os.Remove(path) // a leftover of a crashed run; the device check proved none is running
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	os.Chmod(path, 0o600)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			if err := json.NewEncoder(c).Encode(snap()); err != nil {
				log.Debug("status write failed", "err", err)
			}
			c.Close()
		}
	}()
	return func() { ln.Close(); os.Remove(path) }, nil
}

func runStatus(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var asJSON bool
	rest := args[:0:0]
	for _, a := range args {
		if a == "-json" || a == "--json" {
			asJSON = true
			continue
		}
		rest = append(rest, a)
	}
	cfg, _, err := loadConfigFlag("status", rest, stderr)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("unix", statusSocket(cfg.TUN.Name, cfg.Path), 2*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s is not up (no %s)", cfg.TUN.Name, statusSocket(cfg.TUN.Name, cfg.Path))
		}
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	raw, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if asJSON {
		_, err := stdout.Write(raw)
		return err
	}
	var snap session.Snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		return err
	}
	printStatus(stdout, cfg.TUN.Name, snap)
	return nil
}

func printStatus(w io.Writer, dev string, snap session.Snapshot) {
	fmt.Fprintf(w, "%s: %s, %d session(s)\n", dev, snap.Role, len(snap.Sessions))
	for _, s := range snap.Sessions {
		fmt.Fprintf(w, "\npeer %s (%s)\n", s.Peer, s.Cipher)
		fmt.Fprintf(w, "  %-28s %-6s %9s %9s %10s %8s %8s %8s\n", "path", "state", "srtt_ms", "min_ms", "rate_mbit", "tx", "lost", "rx")
		for _, p := range s.Paths {
			state := "down"
			switch {
			case p.Usable:
				state = "up"
			case p.Validated:
				state = "quiet"
			}
			fmt.Fprintf(w, "  %-28s %-6s %9.1f %9.1f %10.1f %8d %8d %8d\n", p.Name, state,
				ms(p.SRTT), ms(p.MinRTT), p.RateBps/1e6, p.TxPackets, p.TxLost, p.RxPackets)
		}
		fmt.Fprintf(w, "  counters: %s\n", kv(s.Counters))
		fmt.Fprintf(w, "  reorder:  %s\n", kv(s.Reorder))
	}
	fmt.Fprintf(w, "\nnode: %s\n", kv(snap.Node))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func kv(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}
