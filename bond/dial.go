package bond

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/bondtun/bondtun/session"
)

// Dial connects to the Listener at remote ("host:port"; the host may be a name) over every
// uplink of cfg, and returns once the session is established. ctx bounds the connection
// only; it does not end the Conn. The connection then lives until Close or until the
// listener closes it; if its control channel breaks, it is re-established on its own
// (messages written meanwhile wait, those in flight may be lost).
//
// It fails with an error wrapping session.ErrRejected when the listener refused the key
// (or is not bondtun), and with other errors for network problems.
func Dial(ctx context.Context, remote string, cfg *Config) (*Conn, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cm, err := newCommon(cfg.MaxMessageSize, cfg.ReceiveQueue, cfg.Scheduler, cfg.Logger)
	if err != nil {
		return nil, err
	}
	ep, err := resolve(ctx, remote)
	if err != nil {
		return nil, err
	}
	var uplinks []session.UplinkConfig
	for _, u := range cfg.Uplinks {
		src := u.Addr
		if !src.IsValid() && u.Interface != "" {
			if src, err = interfaceAddr(u.Interface, ep.Addr().Is4()); err != nil {
				return nil, err
			}
		}
		uplinks = append(uplinks, session.UplinkConfig{Name: u.name(), Device: u.Interface, Source: src})
	}
	if len(uplinks) == 0 {
		uplinks = []session.UplinkConfig{{Name: "default"}}
	}
	c := newConn(remote, cm)
	cl, err := session.NewMessageClient(session.ClientConfig{
		Identity:   cfg.PrivateKey,
		ServerName: remote,
		ServerKey:  cfg.PeerKey,
		Endpoint:   ep,
		Uplinks:    uplinks,
		Scheduler:  cm.scheduler,
		Logger:     cm.log,
	}, c.in)
	if err != nil {
		return nil, fmt.Errorf("bond: %w", err)
	}
	if err := cl.Connect(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("bond: %w", err)
	}
	c.out = clientSender{cl}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// ErrPeerClosed, or a refusal (session.ErrRefused) on a reconnect: either way
		// the connection is over.
		if err := cl.Run(runCtx); err != nil {
			c.peerEnded()
		}
	}()
	c.closeFn = func() {
		cancel() // Run says BYE and closes the sockets
		<-done
	}
	return c, nil
}

// resolve turns "host:port" into the listener's address; a name resolves to its first
// address.
func resolve(ctx context.Context, remote string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(remote)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bond: remote %q: %w", remote, err)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil || pn == 0 {
		return netip.AddrPort{}, fmt.Errorf("bond: remote %q: bad port", remote)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bond: remote %q: %w", remote, err)
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("bond: remote %q: no address", remote)
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(pn)), nil
}

// interfaceAddr is the first global unicast address of interface name in the remote's
// family: the source of an uplink given by its interface only.
func interfaceAddr(name string, v4 bool) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bond: uplink interface %q: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bond: uplink interface %q: %w", name, err)
	}
	for _, a := range addrs {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil {
			ip := pfx.Addr().Unmap()
			if ip.IsGlobalUnicast() && ip.Is4() == v4 {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("bond: uplink interface %q has no global address of the listener's family", name)
}

type clientSender struct{ c *session.Client }

func (s clientSender) send(bufs [][]byte, sizes []int, n int) { s.c.Send(bufs, sizes, n) }
func (s clientSender) session() *session.Session              { return s.c.Session() }
