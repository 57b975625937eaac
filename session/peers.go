package session

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bondtun/bondtun/crypto"
)

// A server's peers live in a peerTable that is never changed once built: the TUN reader's
// route lookup, the TLS verify callback and the handshake read the current table with one
// atomic load and no lock, and a reload (SetPeers) builds a new table and swaps it in
// (docs/DECISIONS.md "Reload swaps an immutable peer table").
//
// A peer is its key: the peerState of a key is carried from one table to the next, so its
// session (peerState.sess) and the goroutines serving it are not disturbed by a reload.
// Its name and allowed_ips may change under it (peerState.cfg, atomic).

type peerState struct {
	cfg     atomic.Pointer[PeerConfig] // replaced whole by a reload that renames it or changes its allowed_ips
	sess    atomic.Pointer[Session]
	removed atomic.Bool // set once a reload dropped the key: no session may stay installed
}

func newPeerState(pc PeerConfig) *peerState {
	ps := &peerState{}
	ps.cfg.Store(&pc)
	return ps
}

// name is the peer's configured name.
func (ps *peerState) name() string { return ps.cfg.Load().Name }

type route struct {
	prefix netip.Prefix
	peer   *peerState
}

// peerTable is the set of configured peers at one time. Immutable once built.
type peerTable struct {
	byKey map[crypto.PublicKey]*peerState
	// hosts holds the single-address prefixes (/32, /128), which are always the longest
	// match; routes the others, longest prefix first. With many peers of one address each,
	// as a server of many clients has, a lookup is then one map access.
	hosts  map[netip.Addr]*peerState
	routes []route
}

// buildPeerTable makes the table of peers, reusing the peerState of every key in old (nil
// for none). A duplicate key is an error.
func buildPeerTable(peers []PeerConfig, old *peerTable) (*peerTable, error) {
	t := &peerTable{
		byKey: make(map[crypto.PublicKey]*peerState, len(peers)),
		hosts: make(map[netip.Addr]*peerState, len(peers)), // most peers have one address
	}
	for _, pc := range peers {
		if _, dup := t.byKey[pc.Key]; dup {
			return nil, fmt.Errorf("peer %q: key %s is configured twice", pc.Name, pc.Key)
		}
		var ps *peerState
		if old != nil {
			ps = old.byKey[pc.Key]
		}
		if ps == nil {
			ps = newPeerState(pc)
		}
		t.byKey[pc.Key] = ps
		for _, pfx := range pc.AllowedIPs {
			pfx = pfx.Masked()
			if pfx.IsSingleIP() {
				t.hosts[pfx.Addr()] = ps
				continue
			}
			t.routes = append(t.routes, route{pfx, ps})
		}
	}
	slices.SortStableFunc(t.routes, func(a, b route) int { return b.prefix.Bits() - a.prefix.Bits() })
	return t, nil
}

// route returns the peer whose allowed_ips hold dst, the longest prefix winning.
func (t *peerTable) route(dst netip.Addr) *peerState {
	if ps := t.hosts[dst]; ps != nil {
		return ps
	}
	for _, r := range t.routes {
		if r.prefix.Contains(dst) {
			return r.peer
		}
	}
	return nil
}

// PeerChanges is what a SetPeers changed, by peer name.
type PeerChanges struct {
	Added, Changed, Removed []string
	// Ended are the peers whose established session ended (the removed ones that had
	// one, including a re-keyed peer's old key).
	Ended []string
}

// SetPeers replaces the peers the server accepts (a reload). Peers are matched by key: a
// key that is no longer configured is refused from now on and its session ends with BYE
// (a re-keyed peer is the removal of its old key and the addition of its new one); a new
// key may connect at once; a peer whose name or allowed_ips changed keeps its session,
// whose ingress filter follows the new allowed_ips; an unchanged peer is not touched. The
// server routes by the new table from the moment SetPeers returns. Calls are serialized;
// the data path never waits for one.
func (sv *Server) SetPeers(peers []PeerConfig) (PeerChanges, error) {
	sv.reloadMu.Lock()
	defer sv.reloadMu.Unlock()
	old := sv.peers.Load()
	next, err := buildPeerTable(peers, old)
	if err != nil {
		return PeerChanges{}, err
	}
	var ch PeerChanges
	for i := range peers {
		ps := next.byKey[peers[i].Key]
		if _, had := old.byKey[peers[i].Key]; !had {
			ch.Added = append(ch.Added, peers[i].Name)
			continue
		}
		cur := ps.cfg.Load()
		if cur.Name == peers[i].Name && slices.Equal(cur.AllowedIPs, peers[i].AllowedIPs) {
			continue
		}
		pc := peers[i] // a copy only for a changed peer: the unchanged are most
		ch.Changed = append(ch.Changed, pc.Name)
		pc.AllowedIPs = slices.Clone(pc.AllowedIPs)
		ps.cfg.Store(&pc)
		if s := ps.sess.Load(); s != nil {
			s.setAllowed(pc.AllowedIPs)
		}
	}
	sv.peers.Store(next)
	var wg sync.WaitGroup // the BYEs are sent in parallel: each may wait up to a second
	for k, ps := range old.byKey {
		if _, kept := next.byKey[k]; kept {
			continue
		}
		ch.Removed = append(ch.Removed, ps.name())
		// With removed set after the swap, a handshake that looked the key up in the old
		// table and installs its session now either finds removed set (and ends its
		// session itself) or installed it before this Load (and it is ended here).
		ps.removed.Store(true)
		if s := ps.sess.Load(); s != nil {
			ch.Ended = append(ch.Ended, ps.name())
			wg.Go(func() { sv.removeSession(ps, s, true) })
		}
	}
	wg.Wait()
	slices.Sort(ch.Removed)
	slices.Sort(ch.Ended)
	return ch, nil
}

// Peers returns the configured peers, by name.
func (sv *Server) Peers() []PeerConfig {
	t := sv.peers.Load()
	out := make([]PeerConfig, 0, len(t.byKey))
	for _, ps := range t.byKey {
		out = append(out, *ps.cfg.Load())
	}
	slices.SortFunc(out, func(a, b PeerConfig) int { return strings.Compare(a.Name, b.Name) })
	return out
}
