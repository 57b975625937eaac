package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/bondtun/bondtun/crypto"
)

// Policy routing tables the kernel reserves: 253 default, 254 main, 255 local.
const (
	firstReservedTable = 253
	lastReservedTable  = 255
	maxTable           = 1<<31 - 1
)

// tableBase checks table_base: only a client numbers tables, and the range of auto
// tables it starts must hold MaxUplinks tables clear of the kernel's reserved ones.
func (k *checker) tableBase() {
	c := k.c
	if c.Listen != nil {
		if c.TableBase != 0 {
			k.fail("table_base", "only a client has uplink routing tables; remove it from a server")
		}
		return
	}
	last := c.TableBase + MaxUplinks - 1
	k.badBase = true
	switch {
	case c.TableBase < 1 || c.TableBase > maxTable-(MaxUplinks-1):
		k.fail("table_base", "%d is out of range 1..%d (or 0 for %d)", c.TableBase, maxTable-(MaxUplinks-1), DefaultTableBase)
	case c.TableBase <= lastReservedTable && last >= firstReservedTable:
		k.fail("table_base", "tables %d..%d would include the kernel's reserved %d..%d (default, main, local)",
			c.TableBase, last, firstReservedTable, lastReservedTable)
	default:
		k.badBase = false
	}
}

func (k *checker) uplinks() {
	ups := k.c.Uplinks
	if len(ups) > MaxUplinks {
		k.fail(fmt.Sprintf("uplinks[%d]", MaxUplinks), "at most %d uplinks are supported", MaxUplinks)
	}
	names := make(map[string]int)
	ifaces := make(map[string]int)
	addrs := make(map[netip.Addr]int)
	tables := make(map[int]int)
	for i, u := range ups {
		f := fmt.Sprintf("uplinks[%d]", i)
		if !uplinkNameRE.MatchString(u.Name) {
			k.fail(f+".name", "%q is not a name of 1 to 32 of a-z 0-9 _ -", u.Name)
		} else if j, dup := names[u.Name]; dup {
			k.fail(f+".name", "%q is already used by uplinks[%d]", u.Name, j)
		}
		names[u.Name] = i
		if u.Interface == "" && !u.Address.IsValid() {
			k.fail(f, "set interface, address or both")
		}
		if u.Interface != "" {
			if !validIfaceName(u.Interface) {
				k.fail(f+".interface", "%q is not an interface name (at most %d of A-Z a-z 0-9 _ . -)", u.Interface, maxIfaceNameLen)
			} else if j, dup := ifaces[u.Interface]; dup {
				k.fail(f+".interface", "%q is already used by uplinks[%d]", u.Interface, j)
			}
			ifaces[u.Interface] = i
		}
		if u.Address.IsValid() {
			if !usableUnicast(u.Address) {
				k.fail(f+".address", "%s is not a unicast address", u.Address)
			} else if j, dup := addrs[u.Address]; dup {
				k.fail(f+".address", "%s is already used by uplinks[%d]", u.Address, j)
			}
			addrs[u.Address] = i
		}
		k.uplinkRoute(f, u)
		if j, dup := tables[u.Table]; dup {
			k.fail(f+".table", "table %d is already used by uplinks[%d]", u.Table, j)
		} else if u.Table == k.c.TUN.Table {
			k.fail(f+".table", "table %d is the tunnel's routes' (tun.table); give one of them another number", u.Table)
		}
		tables[u.Table] = i
		switch u.Tier {
		case TierPrimary, TierBackup, TierDisabled:
		default:
			k.fail(f+".tier", "%q is not one of primary, backup, disabled", u.Tier)
		}
	}
}

// uplinkRoute checks the gateway and routing table of uplink f.
func (k *checker) uplinkRoute(f string, u Uplink) {
	if u.Gateway.IsValid() {
		switch {
		case !usableUnicast(u.Gateway):
			k.fail(f+".gateway", "%s is not a unicast address", u.Gateway)
		case u.Address.IsValid() && u.Address.Is4() != u.Gateway.Is4():
			k.fail(f+".gateway", "%s is not in the address family of address %s", u.Gateway, u.Address)
		case u.Gateway == u.Address:
			k.fail(f+".gateway", "%s is the uplink's own address", u.Gateway)
		}
	}
	if _, explicit := k.c.line(f + ".table"); !explicit && k.badBase {
		return // the table came from table_base, whose error says it all
	}
	if u.Table < 1 || u.Table > maxTable {
		k.fail(f+".table", "%d is out of range 1..%d (or 0 for auto)", u.Table, maxTable)
	} else if u.Table >= firstReservedTable && u.Table <= lastReservedTable {
		k.fail(f+".table", "table %d is reserved by the kernel (default, main, local)", u.Table)
	}
}

func (k *checker) peers() {
	c := k.c
	client := c.IsClient()
	switch {
	case client && len(c.Peers) != 1:
		k.fail("peers", "a client has exactly one peer (the server), found %d", len(c.Peers))
	case !client && len(c.Peers) == 0:
		k.fail("peers", "at least one peer is required")
	}
	self := c.PrivateKey.Public()
	names := make(map[string]int, len(c.Peers))
	keys := make(map[crypto.PublicKey]int, len(c.Peers))
	for i, p := range c.Peers {
		f := func() string { return "peers[" + strconv.Itoa(i) + "]" } // only for errors: a server may have 10 000 peers
		if !validPeerName(p.Name) {
			k.fail(f()+".name", "%q is not a name of 1 to 32 of A-Z a-z 0-9 _ . -", p.Name)
		} else if j, dup := names[p.Name]; dup {
			k.fail(f()+".name", "%q is already used by peers[%d]", p.Name, j)
		}
		names[p.Name] = i
		switch j, dup := keys[p.PublicKey]; {
		case p.PublicKey == crypto.PublicKey{}:
			k.fail(f()+".public_key", "required")
		case !c.PrivateKey.IsZero() && p.PublicKey == self:
			k.fail(f()+".public_key", "is this side's own public key")
		case dup:
			k.fail(f()+".public_key", "already used by peers[%d]", j)
		}
		keys[p.PublicKey] = i
		if client || p.Endpoint.IsValid() || p.EndpointName != "" { // else there is nothing to check
			k.endpoint(f()+".endpoint", p, client)
		}
		if len(p.AllowedIPs) == 0 {
			k.fail(f()+".allowed_ips", "at least one prefix is required")
		}
		if !canonicalDistinct(p.AllowedIPs) {
			k.canonicalPrefixes(f()+".allowed_ips", p.AllowedIPs)
		}
	}
	if !client {
		k.disjointAllowedIPs()
	}
}

func (k *checker) endpoint(field string, p Peer, client bool) {
	ep := p.Endpoint
	switch {
	case !client && (ep.IsValid() || p.EndpointName != ""):
		k.fail(field, "a server's peers have no endpoint (clients connect to the server)")
	case client && ep.IsValid() && p.EndpointName != "":
		k.fail(field, "set an IP:port or a name:port, not both")
	case client && p.EndpointName != "":
		// Its family is known only once resolved: `up` picks an address the uplinks reach.
	case client && !ep.IsValid():
		k.fail(field, "required on a client (IP:port or name:port of the server)")
	case !client:
	case !usableUnicast(ep.Addr()):
		k.fail(field, "%s is not a unicast address", ep.Addr())
	case ep.Port() == 0:
		k.fail(field, "port 0 is not a port")
	default:
		for i, u := range k.c.Uplinks {
			if u.Address.IsValid() && u.Address.Is4() != ep.Addr().Is4() {
				k.fail(fmt.Sprintf("uplinks[%d].address", i), "%s cannot reach endpoint %s (other address family)", u.Address, ep)
			}
		}
	}
}

// disjointAllowedIPs refuses two server peers whose allowed_ips overlap: the server
// routes inner packets to a peer by destination, so overlap would make that ambiguous
// and would let one peer send with the other's addresses. A sweep over the sorted
// prefixes finds whether any overlap in O(n log n) (a server of 10 000 peers reloads its
// file); only then does the quadratic search name every pair, in file order.
func (k *checker) disjointAllowedIPs() {
	peers := k.c.Peers
	if !anyOverlap(peers) {
		return
	}
	for i := range peers {
		for a, pa := range peers[i].AllowedIPs {
			for j := 0; j < i; j++ {
				for _, pb := range peers[j].AllowedIPs {
					if pa.Overlaps(pb) {
						k.fail(fmt.Sprintf("peers[%d].allowed_ips[%d]", i, a),
							"%s overlaps %s of peers[%d] (%s)", pa, pb, j, peers[j].Name)
					}
				}
			}
		}
	}
}

// anyOverlap reports whether a prefix of one peer overlaps a prefix of another. Two
// prefixes are nested or disjoint, so in the order of their first address (shorter first
// at a tie) the prefixes that contain the current one's first address are a chain, kept
// on a stack; one of another peer in it is an overlap. Until one is found, every prefix
// on the stack is of the same peer, so looking at the top is enough.
func anyOverlap(peers []Peer) bool {
	type item struct {
		p    netip.Prefix
		peer int
	}
	var items []item
	for i, p := range peers {
		for _, a := range p.AllowedIPs {
			if a.IsValid() {
				items = append(items, item{a.Masked(), i})
			}
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := a.p.Addr().Compare(b.p.Addr()); c != 0 {
			return c
		}
		return a.p.Bits() - b.p.Bits()
	})
	var stack []item
	for _, it := range items {
		for len(stack) > 0 && !stack[len(stack)-1].p.Contains(it.p.Addr()) {
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].peer != it.peer {
			return true
		}
		stack = append(stack, it)
	}
	return false
}
