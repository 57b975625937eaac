package main

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/tun"
)

// gatewayPlan is the gateway a server with cfg.Gateway sets up on its tunnel device dev.
func gatewayPlan(cfg *config.Config, dev string) tun.GatewayPlan {
	g := cfg.Gateway
	p := tun.GatewayPlan{
		Device:   dev,
		MTU:      cfg.MTU(),
		Out:      g.Out,
		Forward4: slices.Contains(g.Forward, config.IPv4),
		Forward6: slices.Contains(g.Forward, config.IPv6),
		NAT4:     slices.Contains(g.NAT, config.IPv4),
		NAT6:     slices.Contains(g.NAT, config.IPv6),
	}
	for _, peer := range cfg.Peers {
		p.Peers = append(p.Peers, peer.AllowedIPs...)
	}
	return p
}

// startGateway removes what a crashed server on device dev left of its gateway (its nft
// table, restoring the sysctls it saved), then, when cfg has a gateway, sets it up and
// returns it (nil without one: a reload's Update needs it). The returned stop undoes it
// (run it before the host's routes go). Without a gateway in cfg a failed cleanup is only
// logged: a host without nftables must still run a server.
func startGateway(cfg *config.Config, dev string, log *slog.Logger) (gw *tun.Gateway, stop func(), err error) {
	nft, sys := tun.SystemNFT(), tun.SystemSysctls()
	if err := tun.GatewayCleanup(nft, sys, dev, log); err != nil {
		if cfg.Gateway != nil {
			return nil, nil, fmt.Errorf("removing the gateway of an earlier run: %w", err)
		}
		log.Warn("could not check for a gateway left by an earlier run", "err", err)
	}
	if cfg.Gateway == nil {
		return nil, func() {}, nil
	}
	g := tun.NewGateway(nft, sys, log)
	if err := g.Up(gatewayPlan(cfg, dev)); err != nil {
		return nil, nil, err
	}
	return g, func() {
		if err := g.Down(); err != nil {
			log.Error("removing the gateway failed; run `bondtun down`", "err", err)
		}
	}, nil
}

// checkGateway: a gateway needs the nft tool, and its out interfaces should exist (a
// warning: `up` installs the rules by name, and they apply once the interface appears).
func checkGateway(cfg *config.Config, host checkHost) []finding {
	if cfg.Gateway == nil {
		return nil
	}
	var out []finding
	if !tun.NFTInstalled() {
		out = append(out, problem(cfg.ErrorAt("gateway", "%v", tun.ErrNoNFT)))
	}
	for i, name := range cfg.Gateway.Out {
		_, err := host.nl.LinkByName(name)
		var nf netlink.LinkNotFoundError
		switch {
		case err == nil:
		case errors.As(err, &nf) || errors.Is(err, unix.ENODEV):
			out = append(out, warning(cfg.ErrorAt(fmt.Sprintf("gateway.out[%d]", i), "no interface %q on this host now; nothing is forwarded out of it until it exists", name)))
		default:
			out = append(out, problem(cfg.ErrorAt(fmt.Sprintf("gateway.out[%d]", i), "interface %q: %v", name, err)))
		}
	}
	return out
}
