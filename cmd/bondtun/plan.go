package main

import (
	"fmt"
	"net/netip"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/path"
	"github.com/bondtun/bondtun/session"
	"github.com/bondtun/bondtun/tun"
)

// hostPlan is what `up` installs and `down` removes for cfg. resolve looks up an uplink's
// source address when the config names only its interface (nil: leave it unset).
func hostPlan(cfg *config.Config, resolve func(iface string) (netip.Addr, error)) (tun.Plan, error) {
	p := tun.Plan{
		Device:    cfg.TUN.Name,
		Addresses: cfg.TUN.Addresses,
		MTU:       cfg.MTU(),
		Table:     cfg.TUN.Table,
		Mark:      cfg.TUN.FWMark,
	}
	n := len(cfg.TUN.Routes)
	for _, peer := range cfg.Peers {
		n += len(peer.AllowedIPs)
	}
	if n > 0 {
		p.Routes = make([]netip.Prefix, 0, n) // sized once: a server may have 10 000 peers
	}
	p.Routes = append(p.Routes, cfg.TUN.Routes...)
	for _, peer := range cfg.Peers {
		p.Routes = append(p.Routes, peer.AllowedIPs...)
	}
	if !cfg.IsClient() {
		return p, nil
	}
	for _, u := range cfg.Uplinks {
		if u.Tier == config.TierDisabled {
			continue
		}
		src := u.Address
		if !src.IsValid() && resolve != nil {
			a, err := resolve(u.Interface)
			if err != nil {
				return p, fmt.Errorf("uplink %s: %w", u.Name, err)
			}
			src = a
		}
		p.Uplinks = append(p.Uplinks, tun.UplinkRoute{
			Name:      u.Name,
			Interface: u.Interface,
			Source:    src,
			Gateway:   u.Gateway,
			Table:     u.Table,
		})
	}
	return p, nil
}

// clientConfig maps the YAML to the session layer's client settings, with the uplink
// sources the plan resolved.
func clientConfig(cfg *config.Config, plan tun.Plan) session.ClientConfig {
	peer := cfg.Peers[0]
	cc := session.ClientConfig{
		Identity:   cfg.PrivateKey,
		ServerName: peer.Name,
		ServerKey:  peer.PublicKey,
		Endpoint:   peer.Endpoint,
		AllowedIPs: peer.AllowedIPs,
		Scheduler:  cfg.Scheduler,
		// Every outer socket carries the mark, which the rules into the tunnel's table
		// skip: the tunnel's own traffic never enters the tunnel (tun/table.go).
		Network: path.MarkedHost(cfg.TUN.FWMark),
	}
	i := 0
	for _, u := range cfg.Uplinks {
		if u.Tier == config.TierDisabled {
			continue
		}
		cc.Uplinks = append(cc.Uplinks, session.UplinkConfig{
			Name:          u.Name,
			Device:        u.Interface,
			Source:        plan.Uplinks[i].Source,
			Backup:        u.Tier == config.TierBackup,
			FollowAddress: !u.Address.IsValid() && u.Interface != "",
		})
		i++
	}
	return cc
}

func serverConfig(cfg *config.Config) session.ServerConfig {
	sc := session.ServerConfig{
		Identity:  cfg.PrivateKey,
		Port:      cfg.Listen.Port,
		Addresses: cfg.Listen.Addresses,
		Scheduler: cfg.Scheduler,
		Network:   path.MarkedHost(cfg.TUN.FWMark), // as the client's
	}
	if len(cfg.Peers) > 0 {
		sc.Peers = make([]session.PeerConfig, 0, len(cfg.Peers))
	}
	for _, p := range cfg.Peers {
		sc.Peers = append(sc.Peers, session.PeerConfig{Name: p.Name, Key: p.PublicKey, AllowedIPs: p.AllowedIPs})
	}
	return sc
}
