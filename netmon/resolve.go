package netmon

import "net/netip"

// UplinkSpec is one configured uplink.
type UplinkSpec struct {
	Name      string     // the uplink's name in the config
	Interface string     // the interface it leaves through
	Address   netip.Addr // the configured source; invalid: the interface's first global address
}

// UplinkState is what [Resolve] decided for one uplink.
type UplinkState struct {
	Name   string
	Usable bool       // the interface is up and Source is on it
	Source netip.Addr // the address to bind; invalid when not usable
}

// Resolve decides, for each spec in order, whether the uplink is usable now
// and which source address its socket binds. view reports an interface's
// state (false and nil for an interface that does not exist); [Monitor.View]
// fits.
//
// An uplink with a configured Address is usable when its interface is up and
// carries that address. One without is usable when its interface is up and
// has a global unicast address (private ranges count; link-local, loopback and
// multicast do not); the source is the first IPv4 one in the view's order, or
// else the first IPv6 one. The caller compares the result with the previous
// one (UplinkState is comparable) to add, drop or rebind paths.
func Resolve(specs []UplinkSpec, view func(iface string) (up bool, addrs []netip.Prefix)) []UplinkState {
	return AppendResolve(make([]UplinkState, 0, len(specs)), specs, view)
}

// AppendResolve is [Resolve] appending to dst; it allocates nothing when dst
// has room and view does not allocate.
func AppendResolve(dst []UplinkState, specs []UplinkSpec, view func(iface string) (up bool, addrs []netip.Prefix)) []UplinkState {
	for _, sp := range specs {
		st := UplinkState{Name: sp.Name}
		up, addrs := view(sp.Interface)
		if up {
			st.Source = pickSource(sp.Address, addrs)
			st.Usable = st.Source.IsValid()
		}
		dst = append(dst, st)
	}
	return dst
}

// pickSource returns want if it is among addrs, or, when want is invalid, the
// first global unicast IPv4 address of addrs, else the first IPv6 one.
func pickSource(want netip.Addr, addrs []netip.Prefix) netip.Addr {
	if want.IsValid() {
		want = want.Unmap()
		for _, p := range addrs {
			if p.Addr().Unmap() == want {
				return want
			}
		}
		return netip.Addr{}
	}
	var v6 netip.Addr
	for _, p := range addrs {
		a := p.Addr().Unmap()
		if !a.IsGlobalUnicast() {
			continue
		}
		if a.Is4() {
			return a
		}
		if !v6.IsValid() {
			v6 = a
		}
	}
	return v6
}
