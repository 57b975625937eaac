package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/path"
	"github.com/bondtun/bondtun/session"
	"github.com/bondtun/bondtun/tun"
)

// resolveTimeout bounds one resolution of the server's name; the connect that asked for
// it then fails like an unreachable server and is retried as one.
const resolveTimeout = 10 * time.Second

// lookupFunc returns the addresses of a host name (net.Resolver.LookupNetIP for "ip").
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// endpointResolver is the session.ClientConfig.ResolveEndpoint of a client whose server
// is named hostport ("vpn.example.com:7350", as config checked it): the client calls it
// at each connect and while every path has failed. Each call looks the name up and picks the first address (in the resolver's RFC 6724 order) of a family
// the uplinks' sources can reach; it logs when the answer changes.
func endpointResolver(hostport string, sources []netip.Addr, lookup lookupFunc, log *slog.Logger) func(context.Context) (netip.AddrPort, error) {
	host, portText, _ := net.SplitHostPort(hostport)
	port, _ := strconv.ParseUint(portText, 10, 16)
	var last netip.AddrPort // the client makes one call at a time (connect, or every path failed)
	return func(ctx context.Context) (netip.AddrPort, error) {
		ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		defer cancel()
		addrs, err := lookup(ctx, host)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("resolve server name %s: %w", host, err)
		}
		a, ok := pickAddr(addrs, sources)
		if !ok {
			return netip.AddrPort{}, fmt.Errorf("resolve server name %s: none of %v is of the uplinks' address family", host, addrs)
		}
		ep := netip.AddrPortFrom(a, uint16(port))
		if ep != last {
			log.Info("server name resolved", "name", host, "endpoint", ep, "addresses", len(addrs))
			last = ep
		}
		return ep, nil
	}
}

// pickAddr returns the first usable unicast address of addrs whose family one of sources
// has; with no valid source, any family will do.
func pickAddr(addrs []netip.Addr, sources []netip.Addr) (netip.Addr, bool) {
	var v4, v6 bool
	for _, s := range sources {
		if s.IsValid() {
			v4 = v4 || s.Unmap().Is4()
			v6 = v6 || !s.Unmap().Is4()
		}
	}
	if !v4 && !v6 {
		v4, v6 = true, true
	}
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			continue
		}
		if a.Is4() && v4 || !a.Is4() && v6 {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// uplinkLookup is the system resolver (/etc/hosts, then the name servers of
// /etc/resolv.conf, in Go), with its queries to a name server that is not on loopback
// sent from an uplink's source address: the uplink's policy rule then routes them out
// of that uplink, not into the tunnel, which in whole-host mode carries the default
// route and is down exactly when the name must be re-resolved. A source that is gone
// (renumbered) is skipped; with none left the query goes out by the host's routing,
// still outside the tunnel: every query carries the tunnel's mark (tun.fwmark).
func uplinkLookup(sources []netip.Addr, mark uint32) lookupFunc {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		for _, d := range uplinkDialers(network, address, sources, mark) {
			if c, err := d.DialContext(ctx, network, address); err == nil {
				return c, nil
			}
		}
		d := net.Dialer{Control: path.MarkControl(mark)}
		return d.DialContext(ctx, network, address)
	}}
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		return r.LookupNetIP(ctx, "ip", host)
	}
}

// uplinkDialers returns one dialer per source of the name server's family, bound to that
// source and marked with mark; none for a name server on loopback (a local cache such as
// systemd-resolved).
func uplinkDialers(network, address string, sources []netip.Addr, mark uint32) []*net.Dialer {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || ap.Addr().IsLoopback() {
		return nil
	}
	var out []*net.Dialer
	for _, s := range sources {
		if !s.IsValid() || s.Unmap().Is4() != ap.Addr().Unmap().Is4() {
			continue
		}
		var local net.Addr = &net.UDPAddr{IP: s.Unmap().AsSlice()}
		if network == "tcp" || network == "tcp4" || network == "tcp6" {
			local = &net.TCPAddr{IP: s.Unmap().AsSlice()}
		}
		out = append(out, &net.Dialer{LocalAddr: local, Control: path.MarkControl(mark)})
	}
	return out
}

// resolveByName sets cc.ResolveEndpoint when cfg names its server by DNS name, resolving
// with the system's resolver from the plan's uplink sources.
func resolveByName(cc *session.ClientConfig, cfg *config.Config, plan tun.Plan, log *slog.Logger) {
	name := cfg.Peers[0].EndpointName
	if name == "" {
		return
	}
	var sources []netip.Addr
	for _, u := range plan.Uplinks {
		sources = append(sources, u.Source)
	}
	cc.ResolveEndpoint = endpointResolver(name, sources, uplinkLookup(sources, cfg.TUN.FWMark), log)
}
