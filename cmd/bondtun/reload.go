package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/tun"
)

// A reload (SIGHUP, or `bondtun reload` on the control socket) re-reads the running
// `up`'s configuration file and applies what can change at run time: the log level, the
// inner routes (tun.routes and the peers' allowed_ips), on a server the peers and the
// gateway's peer sets, on a client its server (a new session) and its uplinks
// (reload_uplinks.go). Every other key is fixed for the run; a file that changes one, or
// that fails to load or validate, is refused whole and the running state is kept
// (docs/CONFIG.md "What changes at run time", docs/DECISIONS.md).

// reloadPlan is what a reload from one configuration to the next changes.
type reloadPlan struct {
	LogLevel   slog.Level
	AddRoutes  []netip.Prefix // inner routes, as installed (tun.DiffRoutes)
	DelRoutes  []netip.Prefix
	Added      []string // server: peers (by name) whose key is new
	Removed    []string // server: peers whose key is gone (a re-keyed peer is both)
	Changed    []string // server: peers whose name or allowed_ips changed
	GatewaySet bool     // the gateway's peer sets change
	Server     bool     // client: the server's name, key, endpoint or allowed_ips changed: a new session
	// client: uplinks (by name) added, removed (a changed one is both) and switched to
	// another tier (diffUplinks)
	UplinksAdded, UplinksRemoved, UplinkTiers []string
	// Metrics: metrics.listen changed (MetricsListen the new address, "" for none)
	Metrics       bool
	MetricsListen string
}

// errRestartOnly marks a reload refused because it changes a key fixed for the run.
var errRestartOnly = errors.New("changes what applies only on restart")

// planReload compares the running configuration cur with next, which has been loaded and
// validated. It fails, naming every key, when next changes one that applies only on
// restart.
func planReload(cur, next *config.Config) (reloadPlan, error) {
	if fixed := restartOnlyChanges(cur, next); len(fixed) > 0 {
		return reloadPlan{}, fmt.Errorf("%s %w (restart `up` for it); nothing was changed", strings.Join(fixed, ", "), errRestartOnly)
	}
	p := reloadPlan{LogLevel: next.LogLevel}
	if !reflect.DeepEqual(cur.Metrics, next.Metrics) {
		p.Metrics = true
		if next.Metrics != nil {
			p.MetricsListen = next.Metrics.Listen.String()
		}
	}
	oldPlan, _ := hostPlan(cur, nil)
	newPlan, _ := hostPlan(next, nil)
	p.AddRoutes, p.DelRoutes = tun.DiffRoutes(oldPlan.Routes, newPlan.Routes)
	if cur.IsClient() {
		a, b := cur.Peers[0], next.Peers[0]
		p.Server = a.Name != b.Name || a.PublicKey != b.PublicKey || a.EndpointString() != b.EndpointString() ||
			!slices.Equal(a.AllowedIPs, b.AllowedIPs)
		p.UplinksAdded, p.UplinksRemoved, p.UplinkTiers = diffUplinks(cur, next)
		return p, nil
	}
	was := make(map[crypto.PublicKey]int, len(cur.Peers)) // index in cur.Peers
	for i, peer := range cur.Peers {
		was[peer.PublicKey] = i
	}
	will := make(map[crypto.PublicKey]bool, len(next.Peers))
	for _, peer := range next.Peers {
		will[peer.PublicKey] = true
		i, ok := was[peer.PublicKey]
		switch {
		case !ok:
			p.Added = append(p.Added, peer.Name)
		case cur.Peers[i].Name != peer.Name || !slices.Equal(cur.Peers[i].AllowedIPs, peer.AllowedIPs):
			p.Changed = append(p.Changed, peer.Name)
		}
	}
	for _, peer := range cur.Peers {
		if !will[peer.PublicKey] {
			p.Removed = append(p.Removed, peer.Name)
		}
	}
	if cur.Gateway != nil {
		p.GatewaySet = !reflect.DeepEqual(gatewayPlan(cur, "").Peers, gatewayPlan(next, "").Peers)
	}
	return p, nil
}

// restartOnlyChanges lists the keys, as the file names them, that differ between cur and
// next and cannot change in a running tunnel.
func restartOnlyChanges(cur, next *config.Config) []string {
	var out []string
	differ := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, key)
		}
	}
	if cur.IsClient() != next.IsClient() {
		return []string{"listen and uplinks (a client does not become a server)"}
	}
	differ("private_key", cur.PrivateKey.Public(), next.PrivateKey.Public())
	differ("tun.name", cur.TUN.Name, next.TUN.Name)
	differ("tun.addresses", cur.TUN.Addresses, next.TUN.Addresses)
	differ("tun.mtu", cur.MTU(), next.MTU())
	differ("tun.table", cur.TUN.Table, next.TUN.Table)
	differ("tun.fwmark", cur.TUN.FWMark, next.TUN.FWMark)
	differ("scheduler", cur.Scheduler, next.Scheduler)
	if cur.IsClient() {
		differ("tun.while_down", cur.TUN.WhileDown, next.TUN.WhileDown)
		return out
	}
	differ("listen.port", cur.Listen.Port, next.Listen.Port)
	differ("listen.addresses", cur.Listen.Addresses, next.Listen.Addresses)
	differ("gateway", cur.Gateway, next.Gateway)
	return out
}

// summary is the one line `bondtun reload` prints for a reload that p describes.
func (p reloadPlan) summary() string {
	var parts []string
	list := func(what string, names []string) {
		if len(names) > 0 {
			parts = append(parts, fmt.Sprintf("%s %d (%s)", what, len(names), abbreviate(names)))
		}
	}
	list("peers added", p.Added)
	list("changed", p.Changed)
	list("removed", p.Removed)
	list("uplinks added", p.UplinksAdded)
	list("uplinks removed", p.UplinksRemoved)
	list("uplink tiers changed", p.UplinkTiers)
	if n := len(p.AddRoutes) + len(p.DelRoutes); n > 0 {
		parts = append(parts, fmt.Sprintf("routes +%d -%d", len(p.AddRoutes), len(p.DelRoutes)))
	}
	if p.GatewaySet {
		parts = append(parts, "gateway peer sets updated")
	}
	if p.Server {
		parts = append(parts, "server changed: new session")
	}
	switch {
	case p.Metrics && p.MetricsListen == "":
		parts = append(parts, "metrics endpoint stopped")
	case p.Metrics:
		parts = append(parts, "metrics endpoint on "+p.MetricsListen)
	}
	parts = append(parts, "log_level "+strings.ToLower(p.LogLevel.String()))
	return strings.Join(parts, "; ")
}

// abbreviate joins up to five names and says how many more there are.
func abbreviate(names []string) string {
	if len(names) <= 5 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:5], ", "), len(names)-5)
}

// reloader re-reads and applies the configuration of a running `up`, one reload at a
// time.
type reloader struct {
	mu     sync.Mutex
	cur    *config.Config
	level  *slog.LevelVar
	pinned bool // -v: the level stays debug
	log    *slog.Logger
	load   func(path string) (*config.Config, error)
	// metrics is `up`'s endpoint, which a reload moves (nil: tests, or not yet bound).
	metrics *metricsEndpoint
	// apply changes the running node from cur to next as p says; on error the running
	// state must be as before. nil until the node runs: only the log level changes.
	apply func(cur, next *config.Config, p reloadPlan) error
}

// newReloader returns the reloader of the running configuration cfg, which it keeps for
// the whole run (without its field lines: they are for errors about the file, and a
// server of many peers would keep them for nothing).
func newReloader(cfg *config.Config, level *slog.LevelVar, pinned bool, log *slog.Logger) *reloader {
	keepForRun(cfg)
	return &reloader{cur: cfg, level: level, pinned: pinned, log: log, load: loadForReload}
}

// loadForReload loads the file as `up` does, key file permissions included.
func loadForReload(path string) (*config.Config, error) {
	return config.LoadPrivate(path)
}

// setMetrics gives the reloader `up`'s metrics endpoint, to move on a reload.
func (r *reloader) setMetrics(m *metricsEndpoint) {
	r.mu.Lock()
	r.metrics = m
	r.mu.Unlock()
}

// setApply installs the node's apply function once the node exists.
func (r *reloader) setApply(apply func(cur, next *config.Config, p reloadPlan) error) {
	r.mu.Lock()
	r.apply = apply
	r.mu.Unlock()
}

// reload re-reads the running configuration's file and applies it, or refuses it and
// changes nothing. It returns the summary of what changed.
func (r *reloader) reload() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer deferGC()()
	start := time.Now()
	path := r.cur.Path
	next, err := r.load(path)
	if err != nil {
		r.log.Error("reload: configuration refused; running state unchanged", "err", err)
		return "", err
	}
	keepForRun(next)
	loaded := time.Now()
	p, err := planReload(r.cur, next)
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
		r.log.Error("reload: configuration refused; running state unchanged", "err", err)
		return "", err
	}
	if p.Metrics && r.metrics != nil {
		if err := r.metrics.update(next.Metrics); err != nil {
			err = fmt.Errorf("%s: metrics.listen: %w", path, err)
			r.log.Error("reload: configuration refused; running state unchanged", "err", err)
			return "", err
		}
	}
	undoMetrics := func() {
		if p.Metrics && r.metrics != nil {
			if err := r.metrics.update(r.cur.Metrics); err != nil {
				r.log.Error("reload: restoring the metrics endpoint failed", "err", err)
			}
		}
	}
	if r.apply != nil {
		if err := r.apply(r.cur, next, p); err != nil {
			undoMetrics()
			r.log.Error("reload: applying failed; running state unchanged", "err", err)
			return "", err
		}
	} else if len(p.AddRoutes)+len(p.DelRoutes)+len(p.Added)+len(p.Removed)+len(p.Changed)+
		len(p.UplinksAdded)+len(p.UplinksRemoved)+len(p.UplinkTiers) > 0 || p.Server {
		err := errors.New("the tunnel is still starting; only the log level and metrics can change now")
		undoMetrics()
		r.log.Error("reload: refused", "err", err)
		return "", err
	}
	if r.pinned {
		p.LogLevel = slog.LevelDebug
	} else {
		r.level.Set(next.LogLevel)
	}
	r.cur = next
	s := p.summary()
	now := time.Now()
	r.log.Info("reload: applied", "file", path, "changes", s, "took", now.Sub(start).Round(time.Microsecond),
		"load", loaded.Sub(start).Round(time.Microsecond), "apply", now.Sub(loaded).Round(time.Microsecond))
	go releaseMemory()
	return s, nil
}

// keepForRun readies a configuration `up` keeps for the run: without its field lines,
// and with its peers' names and allowed_ips moved out of the decoder's allocations into two
// contiguous arrays (the server's peer table shares them). Left where the decoder put them,
// among ten to fifty times as many bytes of its garbage, each would keep a page of it
// resident; with 10 000 peers that doubled the RSS.
func keepForRun(cfg *config.Config) {
	cfg.ForgetLines()
	n, size := 0, 0
	for _, p := range cfg.Peers {
		n += len(p.AllowedIPs)
		size += len(p.Name)
	}
	ips := make([]netip.Prefix, 0, n)
	var b strings.Builder
	b.Grow(size)
	for _, p := range cfg.Peers {
		b.WriteString(p.Name)
	}
	names := b.String()
	peers := make([]config.Peer, len(cfg.Peers))
	for i, p := range cfg.Peers {
		start := len(ips)
		ips = append(ips, p.AllowedIPs...)
		p.AllowedIPs = ips[start:len(ips):len(ips)]
		p.Name, names = names[:len(p.Name)], names[len(p.Name):]
		peers[i] = p
	}
	cfg.Peers = peers
}

// reloadGCPercent is the GOGC a reload runs with (deferGC).
const reloadGCPercent = 400

// deferGC raises the garbage collector's target to reloadGCPercent until the returned
// function is called, unless GOGC is already higher or off. A reload allocates about as
// much as `up` holds (10 000 peers: 15 MB, of the file's node tree and the new tables), so
// at the default 100 the collector would run once or twice in the middle of it, marking
// the whole heap each time, for garbage that releaseMemory collects right after anyway;
// with 10 000 peers that was a fifth of the reload's time. The heap may grow by what the
// reload allocates before that collection, no more than without the raise.
func deferGC() (restore func()) {
	old := debug.SetGCPercent(reloadGCPercent)
	if old < 0 || old >= reloadGCPercent {
		debug.SetGCPercent(old)
		return func() {}
	}
	return func() { debug.SetGCPercent(old) }
}

// releaseMemory returns the garbage of a configuration's parsing to the system at once,
// rather than leaving it to the runtime's gradual scavenging: decoding allocates about 12
// times the file's size (10 000 peers: 1.1 MB of file, 13 MB allocated, a few MB kept; 50
// times with yaml.v3, for a file outside the fast parser's subset), which would otherwise
// stay in the RSS of a long-running `up` for minutes. It runs
// after `up` has started and after every reload, off their path; a collection of the
// heap of a server of 10 000 peers takes a few milliseconds.
func releaseMemory() { debug.FreeOSMemory() }

// runReload asks the running `up` of FILE to reload it (as SIGHUP does) and prints what
// changed, or the error that made it refuse the file, exiting 1. FILE is not read here:
// it names the tunnel (its control socket), and the running `up` reads it.
func runReload(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	file, _, err := parseConfigFlags("reload", args, stderr)
	if err != nil {
		return err
	}
	if file == "" {
		return usageErr("missing -c FILE")
	}
	sock, err := liveSocket(file)
	if err != nil {
		return err
	}
	out, err := ask(sock.Path, "reload")
	if err != nil {
		return err
	}
	msg := strings.TrimSpace(string(out))
	sum, ok := strings.CutPrefix(msg, "ok: ")
	if !ok {
		return fmt.Errorf("refused, the tunnel runs on unchanged: %s", strings.TrimPrefix(msg, "error: "))
	}
	fmt.Fprintf(stdout, "reloaded %s on %s: %s\n", file, sock.Device, sum)
	return nil
}
