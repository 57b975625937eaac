package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"bondtun/config"
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

// controller is what the control socket can reach in a running node.
type controller struct {
	snapshot func() session.Snapshot
	setTier  func(uplink string, tier uint8) error // nil on a server
	trace    func(io.Writer) error                 // the flight recorder as CSV (docs/TRACE.md)
}

// serveStatus serves the device's control socket: each connection sends one line, "status"
// (answered with a JSON snapshot), "trace" (the flight recorder as CSV) or "tier UPLINK
// TIER" (answered "ok" or "error: …").
// It returns a function that closes the socket and removes its file.
func serveStatus(device, configPath string, ctl controller, log *slog.Logger) (func(), error) {
	path := statusSocket(device, configPath)
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(io.LimitReader(c, 512)).ReadString('\n')
			if err := answer(c, strings.Fields(line), ctl); err != nil {
				log.Debug("control socket", "err", err)
			}
			c.Close()
		}
	}()
	return func() { ln.Close(); os.Remove(path) }, nil
}

// listenPrivate listens on the unix socket path inside a directory only this user may
// enter, so the socket is never reachable by others, not even for the moment between
// bind(2) (which creates it with the process's umask) and a chmod. The directory is
// created 0700, or tightened to 0700 if an older bondtun made it 0755, and must be a
// real directory (not a symbolic link) owned by this user. The socket is then made 0600
// as well. Changing the umask instead would race with every other goroutine creating
// files (umask is per process); see docs/DECISIONS.md.
func listenPrivate(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := privateDir(dir); err != nil {
		return nil, err
	}
	os.Remove(path) // a leftover of a crashed run; the device check proved none is running
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// privateDir makes dir a directory of mode 0700 owned by the effective user.
func privateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user", dir, sys.Uid)
	}
	if st.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

func answer(w io.Writer, cmd []string, ctl controller) error {
	switch {
	case len(cmd) == 0 || cmd[0] == "status":
		return json.NewEncoder(w).Encode(ctl.snapshot())
	case cmd[0] == "trace" && len(cmd) == 1 && ctl.trace != nil:
		return ctl.trace(w)
	case cmd[0] == "tier" && len(cmd) == 3:
		tier, err := session.ParseTier(cmd[2])
		if err == nil && ctl.setTier == nil {
			err = errors.New("tiers are set on the client side")
		}
		if err == nil {
			err = ctl.setTier(cmd[1], tier)
		}
		if err != nil {
			_, werr := fmt.Fprintf(w, "error: %v\n", err)
			return werr
		}
		_, err = fmt.Fprintln(w, "ok")
		return err
	}
	_, err := fmt.Fprintf(w, "error: unknown command %q\n", strings.Join(cmd, " "))
	return err
}

// ask sends one command line to the control socket of cfg's tunnel and returns the answer.
func ask(device, configPath, line string) ([]byte, error) {
	c, err := net.DialTimeout("unix", statusSocket(device, configPath), 2*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not up (no %s)", device, statusSocket(device, configPath))
		}
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

func runTier(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var rest, pos []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-c" && i+1 < len(args) {
			rest = append(rest, args[i], args[i+1])
			i++
			continue
		}
		pos = append(pos, args[i])
	}
	if len(pos) != 2 {
		return usageErr("want UPLINK and TIER (primary, backup or disabled)")
	}
	if _, err := session.ParseTier(pos[1]); err != nil {
		return usageErr("%v", err)
	}
	cfg, _, err := loadConfigFlag("tier", rest, stderr, config.LoadPublic)
	if err != nil {
		return err
	}
	out, err := ask(cfg.TUN.Name, cfg.Path, "tier "+pos[0]+" "+pos[1])
	if err != nil {
		return err
	}
	msg := strings.TrimSpace(string(out))
	if msg != "ok" {
		return errors.New(strings.TrimPrefix(msg, "error: "))
	}
	fmt.Fprintf(stdout, "uplink %s is now %s\n", pos[0], pos[1])
	return nil
}

func runStatus(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var asJSON bool
	var traceFile string
	rest := args[:0:0]
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-json" || a == "--json":
			asJSON = true
		case a == "-trace" || a == "--trace":
			if i+1 == len(args) {
				return usageErr("%s needs a file name (- for standard output)", a)
			}
			traceFile = args[i+1]
			i++
		case strings.HasPrefix(a, "-trace=") || strings.HasPrefix(a, "--trace="):
			_, traceFile, _ = strings.Cut(a, "=")
		default:
			rest = append(rest, a)
		}
	}
	cfg, _, err := loadConfigFlag("status", rest, stderr, config.LoadPublic)
	if err != nil {
		return err
	}
	if traceFile != "" {
		return writeTrace(cfg.TUN.Name, cfg.Path, traceFile, stdout)
	}
	raw, err := ask(cfg.TUN.Name, cfg.Path, "status")
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

// writeTrace fetches the running tunnel's flight recorder and writes it to file (- for
// stdout).
func writeTrace(device, configPath, file string, stdout io.Writer) error {
	raw, err := ask(device, configPath, "trace")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(raw), "#") && !strings.HasPrefix(string(raw), "t_ms") {
		return fmt.Errorf("trace: %s", strings.TrimPrefix(strings.TrimSpace(string(raw)), "error: "))
	}
	if file == "-" {
		_, err := stdout.Write(raw)
		return err
	}
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "flight recorder of %s written to %s (%d bytes); plot it with scripts/plot-trace.sh\n", device, file, len(raw))
	return nil
}

// dumpTraceOnSignal writes the flight recorder to a file beside the control socket each
// time the process gets SIGUSR1, until ctx ends.
func dumpTraceOnSignal(ctx context.Context, device, configPath string, trace func(io.Writer) error, log *slog.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				sock := statusSocket(device, configPath)
				file := strings.TrimSuffix(sock, ".sock") + "-trace-" + time.Now().UTC().Format("20060102T150405Z") + ".csv"
				f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err == nil {
					err = trace(f)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				if err != nil {
					log.Warn("flight recorder dump failed", "file", file, "err", err)
				} else {
					log.Info("flight recorder written", "file", file)
				}
			}
		}
	}()
}

func printStatus(w io.Writer, dev string, snap session.Snapshot) {
	fmt.Fprintf(w, "%s: %s, %d session(s)\n", dev, snap.Role, len(snap.Sessions))
	for _, s := range snap.Sessions {
		fmt.Fprintf(w, "\npeer %s (%s)\n", s.Peer, s.Cipher)
		fmt.Fprintf(w, "  %-28s %-6s %-8s %9s %9s %10s %8s %8s %8s\n", "path", "state", "tier", "srtt_ms", "min_ms", "rate_mbit", "tx", "lost", "rx")
		for _, p := range s.Paths {
			state := "down"
			switch {
			case p.Usable:
				state = "up"
			case p.Validated:
				state = "quiet"
			}
			fmt.Fprintf(w, "  %-28s %-6s %-8s %9.1f %9.1f %10.1f %8d %8d %8d\n", p.Name, state, p.Tier,
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
