package main

import (
	"errors"
	"log/slog"
	"net/netip"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/session"
	"github.com/bondtun/bondtun/tun"
)

// routeSetter is the part of tun.Host a reload changes.
type routeSetter interface {
	SetRoutes(routes []netip.Prefix) (added, removed int, err error)
}

// peerSetter is the part of session.Server a reload changes.
type peerSetter interface {
	SetPeers(peers []session.PeerConfig) (session.PeerChanges, error)
}

// gatewayUpdater is the part of tun.Gateway a reload changes.
type gatewayUpdater interface {
	Update(p tun.GatewayPlan) error
}

// serverApply applies a server's reload: the gateway's peer sets first, then the
// routes, each undone if a later step fails, then the peers, which cannot fail once the
// file validated (their keys are distinct). So a reload that fails leaves the running
// state as it was. gw is nil without a gateway; device is the tunnel's real name.
func serverApply(sv peerSetter, host routeSetter, gw gatewayUpdater, device string, log *slog.Logger) func(cur, next *config.Config, p reloadPlan) error {
	return func(cur, next *config.Config, p reloadPlan) error {
		gateway := p.GatewaySet && gw != nil
		if gateway {
			if err := gw.Update(gatewayPlan(next, device)); err != nil {
				return err
			}
		}
		undoGateway := func() {
			if gateway {
				if err := gw.Update(gatewayPlan(cur, device)); err != nil {
					log.Error("reload: restoring the gateway's peer sets failed", "err", err)
				}
			}
		}
		oldPlan, _ := hostPlan(cur, nil)
		newPlan, _ := hostPlan(next, nil)
		if _, _, err := host.SetRoutes(newPlan.Routes); err != nil {
			undoGateway()
			return err
		}
		ch, err := sv.SetPeers(serverConfig(next).Peers)
		if err != nil {
			if _, _, rerr := host.SetRoutes(oldPlan.Routes); rerr != nil {
				err = errors.Join(err, rerr)
			}
			undoGateway()
			return err
		}
		if len(ch.Added)+len(ch.Changed)+len(ch.Removed) > 0 {
			log.Info("reload: peers", "added", len(ch.Added), "changed", len(ch.Changed), "removed", len(ch.Removed),
				"sessions_ended", len(ch.Ended))
		}
		return nil
	}
}

// serverSetter is the part of session.Client a reload changes.
type serverSetter interface {
	SetServer(t session.ServerTarget)
}

// clientHost and clientNode are the parts of tun.Host and session.Client a client's
// reload changes.
type clientHost interface {
	routeSetter
	uplinkHost
}

type clientNode interface {
	serverSetter
	uplinkClient
}

// clientApply applies a client's reload: its routes (tun.routes, the server's
// allowed_ips), then its uplinks (applyUplinks; the routes are put back if that fails),
// then, if the server's name, key, endpoint or allowed_ips changed, a new session with it.
// running is the plan `up` installed: a server named by DNS name is resolved from its
// uplinks' sources. resolve finds the source address of an uplink named by its interface.
func clientApply(host clientHost, c clientNode, running tun.Plan, resolve func(iface string) netip.Addr, log *slog.Logger) func(cur, next *config.Config, p reloadPlan) error {
	return func(cur, next *config.Config, p reloadPlan) error {
		oldPlan, _ := hostPlan(cur, nil)
		plan, _ := hostPlan(next, nil)
		if _, _, err := host.SetRoutes(plan.Routes); err != nil {
			return err
		}
		if err := applyUplinks(host, c, cur, next, p, resolve, log); err != nil {
			if _, _, rerr := host.SetRoutes(oldPlan.Routes); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return err
		}
		if p.Server {
			peer := next.Peers[0]
			cc := session.ClientConfig{Endpoint: peer.Endpoint}
			resolveByName(&cc, next, running, log)
			c.SetServer(session.ServerTarget{Name: peer.Name, Key: peer.PublicKey, Endpoint: peer.Endpoint,
				Resolve: cc.ResolveEndpoint, AllowedIPs: peer.AllowedIPs})
		}
		return nil
	}
}
