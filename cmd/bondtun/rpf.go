package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/tun"
)

// Strict reverse-path filtering (docs/DECISIONS.md "Strict rp_filter"): a server whose
// IPv4 filter is strict on some interface marks what comes in for its port and turns on
// src_valid_mark, so a peer whose outer address the tunnel routes is not dropped; a
// client needs nothing (its uplinks' source rules). Nothing is done where no interface
// is strict.

// rpfPlan is what a server with cfg on device dev sets up under strict reverse-path
// filtering; false when it listens on no IPv4 address (the filter is IPv4's only).
func rpfPlan(cfg *config.Config, dev string) (tun.RPFPlan, bool) {
	p := tun.RPFPlan{Device: dev, Mark: cfg.TUN.FWMark, Port: cfg.Listen.Port}
	for _, a := range cfg.Listen.Addresses {
		if a.Unmap().Is4() {
			p.Addresses = append(p.Addresses, a.Unmap())
		}
	}
	return p, len(cfg.Listen.Addresses) == 0 || len(p.Addresses) > 0
}

// startRPF removes what a crashed server on dev left of its reverse-path marks, then,
// when the server needs them now (strict rp_filter on an interface, an IPv4 listen
// address), sets them up. The returned stop undoes it. A server runs on without them,
// saying so, where they cannot be set up: only peers whose outer address the tunnel
// routes suffer.
func startRPF(cfg *config.Config, dev string, log *slog.Logger) (stop func()) {
	nft, sys := tun.SystemNFT(), tun.SystemSysctls()
	if err := tun.RPFCleanup(nft, sys, dev, log); err != nil {
		log.Warn("could not remove the reverse-path marks of an earlier run", "err", err)
	}
	none := func() {}
	plan, v4 := rpfPlan(cfg, dev)
	if !v4 {
		return none
	}
	conf, err := tun.ReadRPFilter()
	if err != nil {
		log.Warn("could not read the reverse-path filter settings", "err", err)
		return none
	}
	strict := tun.StrictRPF(conf, dev)
	if len(strict) == 0 {
		return none
	}
	const harm = "peers whose outer address the tunnel routes are dropped by the kernel"
	if !tun.NFTInstalled() {
		log.Warn("strict reverse-path filtering and no nft tool: "+harm, "interfaces", strings.Join(strict, ","), "err", tun.ErrNoNFT)
		return none
	}
	r := tun.NewRPF(nft, sys, log)
	if err := r.Up(plan); err != nil {
		log.Error("could not set up the reverse-path marks: "+harm, "interfaces", strings.Join(strict, ","), "err", err)
		return none
	}
	return func() {
		if err := r.Down(); err != nil {
			log.Error("removing the reverse-path marks failed; run `bondtun down`", "err", err)
		}
	}
}

// checkRPF reports what `up` will do about strict reverse-path filtering.
func checkRPF(cfg *config.Config, host checkHost) []finding {
	if host.rpFilter == nil {
		return nil
	}
	conf, err := host.rpFilter()
	if err != nil {
		return []finding{warning(fmt.Errorf("cannot read the reverse-path filter settings: %w", err))}
	}
	strict := tun.StrictRPF(conf, cfg.TUN.Name)
	if len(strict) == 0 {
		return nil
	}
	on := fmt.Sprintf("strict reverse-path filtering (rp_filter=1) on %s", strings.Join(strict, ", "))
	if cfg.IsClient() {
		return []finding{note(cfg.ErrorAt("uplinks", "%s: nothing to do on a client: each uplink's source rule routes the reverse path of what the server sends out of that uplink", on))}
	}
	plan, v4 := rpfPlan(cfg, cfg.TUN.Name)
	if !v4 {
		return []finding{note(cfg.ErrorAt("listen.addresses", "%s: nothing to do: no IPv4 listen address, and the filter is IPv4's", on))}
	}
	if !tun.NFTInstalled() {
		return []finding{warning(cfg.ErrorAt("listen", "%s and %v: peers whose outer address the tunnel routes will be dropped (or set rp_filter to 2)", on, tun.ErrNoNFT))}
	}
	now := "?"
	if host.sysctl != nil {
		if v, err := host.sysctl(tun.SysctlSrcValidMark); err == nil {
			now = v
		}
	}
	return []finding{note(cfg.ErrorAt("listen", "%s: `up` will mark what comes in for port %d with tun.fwmark %#x (nftables table ip %s) and set %s=1 (now %s), both undone on exit, so that peers whose outer address the tunnel routes pass the filter",
		on, plan.Port, plan.Mark, tun.RPFTable(cfg.TUN.Name), tun.SysctlSrcValidMark, now))}
}
