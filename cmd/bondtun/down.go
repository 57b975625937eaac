package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/tun"
)

// downWait is how long `down` waits for a running `up` to finish its teardown after the
// shutdown request.
const downWait = 20 * time.Second

// runDown stops the running `up` of the file, if any, through its control socket, and then
// removes what a crashed one left: the policy rules and routes marked with bondtun's
// protocol number in the file's tables, the device, and stale control sockets.
//
// It asks over the socket rather than signalling a recorded PID: the socket is found from
// the file and this network namespace, so it names exactly this tunnel's process, it
// cannot hit an unrelated process that reused a stale PID, and it works across PID
// namespaces. The process ID it reports comes from the socket's peer credentials.
func runDown(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfigFlag("down", args, stderr, config.LoadPublic)
	if err != nil {
		return err
	}
	if err := requireCaps([]capNeed{{needNetAdmin.cap, needNetAdmin.name, "to remove the device, routes and policy rules"}}); err != nil {
		return err
	}
	socks, err := listControlSockets(cfg.Path)
	if err != nil {
		return err
	}
	var devices, stale []string
	for _, s := range socks {
		devices = append(devices, s.Device)
		pid, err := stopRunning(s.Path)
		switch {
		case errors.Is(err, errStaleSocket):
			stale = append(stale, s.Path)
		case errors.Is(err, os.ErrNotExist):
			// ended on its own since it was listed
		case err != nil:
			return err
		default:
			fmt.Fprintf(stdout, "stopped the running bondtun up of %s (pid %d, device %s)\n", cfg.Path, pid, s.Device)
		}
	}
	if !strings.Contains(cfg.TUN.Name, "%") && !slices.Contains(devices, cfg.TUN.Name) {
		devices = append(devices, cfg.TUN.Name)
	}
	what, err := cleanupAfter(cfg, devices)
	if err != nil {
		return err
	}
	for _, s := range stale {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	fmt.Fprintf(stdout, "removed what bondtun had set up for %s (%s", cfg.Path, what)
	if len(stale) > 0 {
		fmt.Fprintf(stdout, ", stale control socket %s", strings.Join(stale, ", "))
	}
	fmt.Fprintln(stdout, ")")
	return nil
}

// stopRunning asks the `up` listening on the socket at path to shut down and waits until
// it has closed the socket, which it does after its teardown. It returns the process ID,
// errStaleSocket if nobody listens, or an error matching os.ErrNotExist if the file is gone.
func stopRunning(path string) (int, error) {
	c, err := dialControl(path)
	if err != nil {
		return 0, err
	}
	pid := peerPID(c)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(c, "shutdown\n")
	var answer []byte
	if err == nil {
		answer, err = io.ReadAll(c)
	}
	c.Close()
	if err != nil {
		return pid, fmt.Errorf("asking pid %d to shut down: %w", pid, err)
	}
	if msg := strings.TrimSpace(string(answer)); msg != "ok" {
		return pid, fmt.Errorf("pid %d refused to shut down: %s", pid, msg)
	}
	for deadline := time.Now().Add(downWait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c, err := dialControl(path)
		if err != nil {
			return pid, nil // closed (gone, or stale if the process died mid-teardown)
		}
		c.Close()
	}
	return pid, fmt.Errorf("pid %d still serves %s %v after the shutdown request; is it stuck? (kill -TERM %d)", pid, path, downWait, pid)
}

// cleanupAfter removes the leftovers of cfg's tunnel on each of devices (tun.Cleanup); with
// no device (a pattern name and no socket telling the real one) only the rules and routes.
// It returns a description of what it cleaned.
func cleanupAfter(cfg *config.Config, devices []string) (string, error) {
	nl := tun.SystemNetlink()
	// An uplink named only by its interface gets the source it has now, so that Cleanup
	// removes only this instance's rules; if it has none, its table's bondtun rules are
	// taken as this instance's (tables are per instance, see table_base).
	plan, err := hostPlan(cfg, func(iface string) (netip.Addr, error) {
		a, err := tun.ResolveUplinkSource(nl, iface)
		if err != nil {
			return netip.Addr{}, nil
		}
		return a, nil
	})
	if err != nil {
		return "", err
	}
	var errs []error
	plan.Device = ""
	for _, d := range devices {
		plan.Device = d
		errs = append(errs, tun.Cleanup(nl, plan))
		if !cfg.IsClient() {
			// A server's gateway table and the sysctls it saved. Without gateway in the
			// file there is normally none; a host without nftables is no error then.
			err := tun.GatewayCleanup(tun.SystemNFT(), tun.SystemSysctls(), d, slog.New(slog.DiscardHandler))
			if cfg.Gateway != nil {
				errs = append(errs, err)
			}
			// The reverse-path marks of a server under strict rp_filter; without strict
			// filtering there are normally none, and an unusable nft is no error then.
			err = tun.RPFCleanup(tun.SystemNFT(), tun.SystemSysctls(), d, slog.New(slog.DiscardHandler))
			if conf, cerr := tun.ReadRPFilter(); cerr != nil || len(tun.StrictRPF(conf, d)) > 0 {
				errs = append(errs, err)
			}
		}
	}
	if len(devices) == 0 {
		errs = append(errs, tun.Cleanup(nl, plan))
	}
	parts := []string{"routes"}
	if len(devices) > 0 {
		parts = []string{"device " + strings.Join(devices, ", ")}
	}
	for _, u := range plan.Uplinks {
		parts = append(parts, fmt.Sprintf("table %d", u.Table))
	}
	return strings.Join(parts, ", "), errors.Join(errs...)
}
