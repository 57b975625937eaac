package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/session"
	"github.com/bondtun/bondtun/tun"
)

// parseConfigFlags parses the -c FILE and -v flags of a command; FILE may be empty.
func parseConfigFlags(name string, args []string, stderr io.Writer) (file string, verbose bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&file, "c", "", "configuration file (YAML)")
	fs.BoolVar(&verbose, "v", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", false, errHelpShown
		}
		return "", false, usageErr("%v", err)
	}
	if fs.NArg() > 0 {
		return "", false, usageErr("unexpected argument %q", fs.Arg(0))
	}
	return file, verbose, nil
}

// loadConfigFlag parses the flags of a command that needs -c FILE and loads the file with
// load: config.LoadPrivate (the private key, refused if others may read it) for `up`,
// config.LoadPublic for every other command that needs no key.
func loadConfigFlag(name string, args []string, stderr io.Writer, load func(string) (*config.Config, error)) (*config.Config, bool, error) {
	file, verbose, err := parseConfigFlags(name, args, stderr)
	if err != nil {
		return nil, false, err
	}
	if file == "" {
		return nil, false, usageErr("missing -c FILE")
	}
	cfg, err := load(file)
	if err != nil {
		return nil, false, err
	}
	return cfg, verbose, nil
}

// runUp is `bondtun up`: it loads the configuration, checks the privileges, makes SIGHUP
// reload, refuses to run beside a live `up` of the same file, starts the metrics endpoint
// and runs the tunnel (runTunnel) until SIGINT, SIGTERM or `bondtun down` ends it.
func runUp(args []string, _ io.Reader, _, stderr io.Writer) error {
	cfg, verbose, err := loadConfigFlag("up", args, stderr, config.LoadPrivate)
	if err != nil {
		return withCode(exitUsage, err)
	}
	level, log := upLogger(cfg, verbose, stderr)
	if err := requireCaps(upNeeds(cfg, currentHost())); err != nil {
		return withCode(exitPrivilege, err)
	}
	// SIGINT and SIGTERM end the run, which removes what it set up; SIGHUP reloads what
	// can be reloaded and never ends it.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, shutdown := context.WithCancel(ctx) // `bondtun down`'s request on the control socket
	defer shutdown()
	rl := newReloader(cfg, level, verbose, log)
	reloadOnHangup(ctx, rl)
	if err := claimControlSockets(cfg.Path, log); err != nil {
		return err
	}
	mx, err := startMetrics(cfg, log)
	if err != nil {
		return err
	}
	defer mx.Close()
	rl.setMetrics(mx)
	return runTunnel(ctx, cfg, shutdown, rl, mx, log)
}

// upLogger is the logger of `up`, to stderr, at cfg's log level or, with -v, at debug;
// the level is returned too, for a reload to change.
func upLogger(cfg *config.Config, verbose bool, stderr io.Writer) (*slog.LevelVar, *slog.Logger) {
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	if verbose {
		level.Set(slog.LevelDebug)
	}
	return level, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}

// runTunnel creates the TUN device, listens on the control socket, brings the host's
// routes and rules up and runs the client or the server on them until ctx ends; then it
// takes the host down, closes the device and, last, the control socket.
func runTunnel(ctx context.Context, cfg *config.Config, shutdown func(), rl *reloader, mx *metricsEndpoint, log *slog.Logger) error {
	nl := tun.SystemNetlink()
	plan, err := upPlan(cfg, nl, log)
	if err != nil {
		return err
	}
	dev, err := createDevice(cfg, nl, &plan)
	if err != nil {
		return err
	}
	// The control socket is closed last, after the teardown: `down` takes its
	// disappearance for the end of the run.
	ctl, err := listenControl(plan.Device, cfg.Path, shutdown, rl.reload, log)
	if err != nil {
		dev.Close()
		return err
	}
	defer ctl.Close()
	host := tun.NewHost(nl, log)
	if err := host.Up(plan); err != nil {
		dev.Close()
		return err
	}
	defer func() {
		if err := host.Down(); err != nil {
			log.Error("removing routes and rules failed; run `bondtun down`", "err", err)
		}
		dev.Close()
		log.Info("tunnel down")
	}()
	log.Info("tunnel device up", "device", plan.Device, "mtu", plan.MTU, "addresses", fmt.Sprint(plan.Addresses))

	r := &upRun{ctx: ctx, cfg: cfg, plan: plan, dev: dev, nl: nl, host: host, ctl: ctl, rl: rl, mx: mx, log: log}
	if cfg.IsClient() {
		return r.client()
	}
	return r.server()
}

// upPlan is the host plan of cfg. An uplink whose interface is missing or has no address
// yet (a modem still syncing, DHCP not done) is no reason to stop: it joins when netmon
// sees it (docs/DEPLOY.md "Boot order and outages").
func upPlan(cfg *config.Config, nl tun.Netlink, log *slog.Logger) (tun.Plan, error) {
	plan, err := hostPlan(cfg, func(iface string) (netip.Addr, error) {
		a, err := tun.ResolveUplinkSource(nl, iface)
		if err != nil {
			log.Warn("uplink not ready at start; it joins when it has an address", "interface", iface, "err", err)
			return netip.Addr{}, nil
		}
		return a, nil
	})
	if err != nil {
		return plan, err
	}
	plan.DeferDefault = whileDownDirect(cfg) // no session yet: the default routes wait for one
	return plan, nil
}

// whileDownDirect: a client with tun.while_down: direct, whose default routes follow the
// session.
func whileDownDirect(cfg *config.Config) bool {
	return cfg.IsClient() && cfg.TUN.WhileDown == config.WhileDownDirect
}

// createDevice removes what a crashed run of plan left behind and creates its TUN device;
// plan.Device becomes the device's name (a pattern such as bt%d resolved).
func createDevice(cfg *config.Config, nl tun.Netlink, plan *tun.Plan) (wgtun.Device, error) {
	if _, err := nl.LinkByName(plan.Device); err == nil {
		return nil, fmt.Errorf("device %s already exists: is bondtun already running? (`bondtun down -c %s` stops it or removes leftovers)", plan.Device, cfg.Path)
	}
	// Leftover rules and routes of a crashed run would make Up fail; they are ours (marked
	// with bondtun's protocol number, in this config's tables), so remove them.
	if err := tun.Cleanup(nl, *plan); err != nil {
		return nil, fmt.Errorf("removing leftovers of an earlier run: %w", err)
	}
	dev, name, err := tun.Create(plan.Device, plan.MTU)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			// CAP_NET_ADMIN is there (checked before): the device node's mode stops this user.
			return nil, withCode(exitPrivilege, fmt.Errorf("create TUN %s: %w (a user other than root needs read and write access to /dev/net/tun; udev makes it 0666)", plan.Device, err))
		}
		return nil, fmt.Errorf("create TUN %s: %w", plan.Device, err)
	}
	plan.Device = name
	return dev, nil
}

// upRun is what `up` has set up once the device, its routes and the control socket are
// in place: the client or the server then runs on it until ctx ends.
type upRun struct {
	ctx  context.Context
	cfg  *config.Config
	plan tun.Plan
	dev  wgtun.Device
	nl   tun.Netlink
	host *tun.Host
	ctl  *controlServer
	rl   *reloader
	mx   *metricsEndpoint
	log  *slog.Logger
}

// client runs the client. Run opens the first session itself and waits out an
// unreachable server; only an authenticated refusal (wrong key, incompatible server) ends
// it with an error.
func (r *upRun) client() error {
	cc := clientConfig(r.cfg, r.plan)
	cc.Logger = r.log
	cc.OnUplinkChange = r.host.RefreshUplink
	if whileDownDirect(r.cfg) {
		cc.OnSessionChange = func(up bool) { routeWhileDown(r.host, up, r.log) }
	}
	resolveByName(&cc, r.cfg, r.plan, r.log)
	c, err := session.NewClient(cc, r.dev)
	if err != nil {
		return err
	}
	r.ctl.set(controller{snapshot: c.Snapshot, setTier: c.SetTier, trace: c.WriteTrace})
	r.rl.setApply(clientApply(r.host, c, r.plan, func(iface string) netip.Addr {
		a, err := tun.ResolveUplinkSource(r.nl, iface)
		if err != nil {
			r.log.Warn("reload: uplink not ready; it joins when it has an address", "interface", iface, "err", err)
		}
		return a
	}, r.log))
	r.mx.set(c.Snapshot)
	dumpTraceOnSignal(r.ctx, r.ctl.info.Socket, c.WriteTrace, r.log)
	return c.Run(r.ctx)
}

// server runs the server, with its strict-rp_filter marks and its gateway.
func (r *upRun) server() error {
	name := r.plan.Device
	stopRPF := startRPF(r.cfg, name, r.log) // strict rp_filter: marks before the peers come
	defer stopRPF()
	gw, stopGateway, err := startGateway(r.cfg, name, r.log)
	if err != nil {
		return err
	}
	defer stopGateway()
	var gwu gatewayUpdater // nil, not a nil *tun.Gateway, without a gateway
	if gw != nil {
		gwu = gw
	}
	sc := serverConfig(r.cfg)
	sc.Logger = r.log
	sv, err := session.NewServer(sc, r.dev)
	if err != nil {
		return err
	}
	r.ctl.set(controller{snapshot: sv.Snapshot, trace: sv.WriteTrace})
	r.rl.setApply(serverApply(sv, r.host, gwu, name, r.log))
	r.mx.set(sv.Snapshot)
	dumpTraceOnSignal(r.ctx, r.ctl.info.Socket, sv.WriteTrace, r.log)
	r.log.Info("listening", "port", sc.Port, "addresses", fmt.Sprint(sc.Addresses), "peers", len(sc.Peers))
	go releaseMemory()
	return sv.Run(r.ctx)
}

// routeWhileDown follows the session for tun.while_down: direct: the tunnel's default
// routes are in place while a session is, and out of the way while there is none.
func routeWhileDown(host *tun.Host, up bool, log *slog.Logger) {
	if err := host.SetDefaultRoutes(up); err != nil {
		log.Error("tun.while_down: direct: default routes not changed", "session", up, "err", err)
		return
	}
	if up {
		log.Info("tunnel up: default route through the tunnel again")
	} else {
		log.Warn("tunnel down: traffic goes directly out of the uplinks until it is back (tun.while_down: direct)")
	}
}
