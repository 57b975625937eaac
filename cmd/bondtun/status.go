package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/session"
)

// answer serves the control requests that need the running node (controlServer.answer
// handles shutdown).
func answer(w io.Writer, cmd []string, info tunnelInfo, ctl controller) error {
	switch {
	case len(cmd) == 0 || cmd[0] == "status":
		return json.NewEncoder(w).Encode(newStatusDoc(info, ctl.snapshot(), time.Now()))
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
	sock, err := liveSocket(cfg.Path)
	if err != nil {
		return err
	}
	out, err := ask(sock.Path, "tier "+pos[0]+" "+pos[1])
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
	file, _, err := parseConfigFlags("status", rest, stderr)
	if err != nil {
		return err
	}
	var socks []controlSocket
	if file != "" {
		cfg, err := config.LoadPublic(file)
		if err != nil {
			return err
		}
		sock, err := liveSocket(cfg.Path)
		if err != nil {
			return err
		}
		socks = []controlSocket{sock}
	} else if socks, err = listControlSockets(""); err != nil {
		return err
	}
	if traceFile != "" {
		if len(socks) != 1 {
			return usageErr("%d control sockets in %s: name the tunnel with -c FILE", len(socks), controlDir)
		}
		return writeTrace(socks[0], traceFile, stdout)
	}
	doc, err := collectStatus(socks)
	if asJSON {
		if jerr := json.NewEncoder(stdout).Encode(doc); jerr != nil {
			return jerr
		}
		return err
	}
	printStatus(stdout, doc)
	return err
}

// collectStatus asks each socket for its tunnel's status and merges the answers; sockets
// nobody listens on are listed as stale. The error joins those of the sockets that could
// not be asked; the document holds the rest.
func collectStatus(socks []controlSocket) (statusDoc, error) {
	doc := statusDoc{SchemaVersion: statusSchemaVersion, Tunnels: []tunnelStatus{}, StaleSockets: []string{}}
	var errs []error
	for _, s := range socks {
		raw, err := ask(s.Path, "status")
		if errors.Is(err, errStaleSocket) {
			doc.StaleSockets = append(doc.StaleSockets, s.Path)
			continue
		}
		if errors.Is(err, os.ErrNotExist) {
			continue // ended since it was listed
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var one statusDoc
		if err := json.Unmarshal(raw, &one); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", s.Path, strings.TrimSpace(string(raw))))
			continue
		}
		if one.SchemaVersion == 0 {
			errs = append(errs, fmt.Errorf("%s: the running bondtun answers status without a schema_version (an older version; this one reads schema %d)",
				s.Path, statusSchemaVersion))
			continue
		}
		if one.SchemaVersion != statusSchemaVersion {
			errs = append(errs, fmt.Errorf("%s: the running bondtun answers status schema %d, this one reads %d (docs/STATUS.md)",
				s.Path, one.SchemaVersion, statusSchemaVersion))
			continue
		}
		doc.Tunnels = append(doc.Tunnels, one.Tunnels...)
	}
	return doc, errors.Join(errs...)
}

// writeTrace fetches a running tunnel's flight recorder and writes it to file (- for
// stdout).
func writeTrace(sock controlSocket, file string, stdout io.Writer) error {
	raw, err := ask(sock.Path, "trace")
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
	fmt.Fprintf(stdout, "flight recorder of %s written to %s (%d bytes); plot it with scripts/plot-trace.sh\n", sock.Device, file, len(raw))
	return nil
}

// dumpTraceOnSignal writes the flight recorder to a file beside the control socket each
// time the process gets SIGUSR1, until ctx ends.
func dumpTraceOnSignal(ctx context.Context, sock string, trace func(io.Writer) error, log *slog.Logger) {
	onSignal(ctx, syscall.SIGUSR1, func() {
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
	})
}

func printStatus(w io.Writer, doc statusDoc) {
	if len(doc.Tunnels) == 0 && len(doc.StaleSockets) == 0 {
		fmt.Fprintf(w, "no bondtun tunnel is running (no control socket in %s)\n", controlDir)
	}
	for i, t := range doc.Tunnels {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s: %s, up %s, pid %d, %s, %d session(s)\n", t.Device, t.Role,
			(time.Duration(t.UptimeS) * time.Second).String(), t.PID, t.Config, len(t.Sessions))
		for _, s := range t.Sessions {
			fmt.Fprintf(w, "\npeer %s (%s)\n", s.Peer, s.Cipher)
			fmt.Fprintf(w, "  %-28s %-10s %-8s %8s %8s %10s %7s %7s %9s %8s %9s\n",
				"path", "state", "tier", "srtt_ms", "min_ms", "rate_mbit", "loss_%", "share_%", "tx", "lost", "rx")
			for _, p := range s.Paths {
				fmt.Fprintf(w, "  %-28s %-10s %-8s %8.1f %8.1f %10.1f %7.2f %7.1f %9d %8d %9d\n", p.Name, p.State, p.Tier,
					p.SRTTMs, p.MinRTTMs, p.RateBps/1e6, 100*p.LossRatio, 100*p.TxShare, p.TxPackets, p.TxLostPackets, p.RxPackets)
			}
			r := s.Reorder
			fmt.Fprintf(w, "  reorder:  held %d, hold %.1f ms (max %.1f ms), %s\n", r.HeldPackets, r.HoldMs, r.HoldMaxMs, kv(r.Counters))
			fmt.Fprintf(w, "  counters: %s\n", kv(s.Counters))
		}
		fmt.Fprintf(w, "\nnode: %s\n", kv(t.NodeCounters))
	}
	for _, s := range doc.StaleSockets {
		fmt.Fprintf(w, "stale control socket %s: its `up` is gone; `bondtun down -c FILE` cleans up after it\n", s)
	}
}

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
