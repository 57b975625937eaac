package session

import (
	"context"
	"errors"
	"net/netip"
	"slices"

	"github.com/bondtun/bondtun/crypto"
)

// config returns a copy of the client's settings: SetServer changes the server's part of
// them while Run connects.
func (c *Client) config() ClientConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// errServerChanged is connect's error when SetServer changed the server during it.
var errServerChanged = errors.New("the server changed while connecting")

// ServerTarget is the server a client connects to: what a reload may change
// (SetServer).
type ServerTarget struct {
	Name     string
	Key      crypto.PublicKey
	Endpoint netip.AddrPort
	// Resolve, if set, replaces Endpoint at every connect (ClientConfig.ResolveEndpoint).
	Resolve    func(ctx context.Context) (netip.AddrPort, error)
	AllowedIPs []netip.Prefix // inner source prefixes accepted from the server
}

// SetServer points a running client at another server, or at its server's new key or
// address (a reload of the client's file): the current session ends with BYE and Run
// opens a new one with t, as after a lost session, while the TUN and the uplinks stay.
func (c *Client) SetServer(t ServerTarget) {
	c.mu.Lock()
	c.cfg.ServerName, c.cfg.ServerKey, c.cfg.Endpoint = t.Name, t.Key, t.Endpoint
	c.cfg.ResolveEndpoint, c.cfg.AllowedIPs = t.Resolve, slices.Clone(t.AllowedIPs)
	c.cfg.serverGen++
	s := c.sess
	c.mu.Unlock()
	c.log.Info("server changed; opening a new session", "server", t.Name, "endpoint", t.Endpoint)
	if s != nil {
		c.endSession(s, true)
	}
}
