package config

// populate fills the defaults of zero-valued optional fields. It is idempotent and
// never fails; validate checks the result. TUN.MTU stays 0 ("auto"): [Config.MTU]
// resolves it, because the rule depends on the other fields.
func populate(c *Config) {
	if c.TUN.Name == "" {
		c.TUN.Name = DefaultTUNName
	}
	if c.TUN.WhileDown == "" {
		c.TUN.WhileDown = WhileDownBlock
	}
	if c.TUN.Table == 0 {
		c.TUN.Table = DefaultTunnelTable
	}
	if c.TUN.FWMark == 0 {
		c.TUN.FWMark = DefaultFWMark
	}
	if c.TableBase == 0 && c.Listen == nil {
		c.TableBase = DefaultTableBase
	}
	for i := range c.Uplinks {
		u := &c.Uplinks[i]
		if u.Table == 0 {
			u.Table = c.TableBase + i
		}
		if u.Tier == "" {
			u.Tier = TierPrimary
		}
	}
	if c.Listen != nil && c.Listen.Port == 0 {
		c.Listen.Port = DefaultPort
	}
	if c.Scheduler == "" {
		c.Scheduler = DefaultScheduler
	}
	if g := c.Gateway; g != nil {
		if g.Forward == nil {
			g.Forward = peerFamilies(c.Peers)
		}
		if g.NAT == nil {
			g.NAT = append([]Family{}, g.Forward...)
		}
	}
}

// peerFamilies returns the families of the peers' allowed_ips, IPv4 first; never nil.
func peerFamilies(peers []Peer) []Family {
	var v4, v6 bool
	for _, p := range peers {
		for _, a := range p.AllowedIPs {
			if a.Addr().Is4() {
				v4 = true
			} else {
				v6 = true
			}
		}
	}
	out := []Family{}
	if v4 {
		out = append(out, IPv4)
	}
	if v6 {
		out = append(out, IPv6)
	}
	return out
}
