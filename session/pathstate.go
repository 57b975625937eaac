package session

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bondtun/bondtun/aqm"
	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/liveness"
	"github.com/bondtun/bondtun/path"
	"github.com/bondtun/bondtun/pathstat"
	"github.com/bondtun/bondtun/sched"
)

// Path is one (client uplink × server address) pair of a session, seen from this side.
//
// Send-side fields are guarded by mu; receive-side fields by the session's rxMu.
// Lock order: Session.rxMu, then Path.mu.
type Path struct {
	id   uint8
	name string                       // e.g. "cable→0" for logs and status
	conn atomic.Pointer[transportRef] // the socket; replaced when the uplink's address changes
	// up mirrors liveness state Up (set under mu by onLiveness), so that another path's
	// feedback handler can ask without taking mu (followReturnPathLocked).
	up atomic.Bool

	mu     sync.Mutex // guards the fields below
	remote netip.AddrPort
	pn     uint64 // next packet number to send
	// The key generation of the last datagram sealed on the path, and the packet number
	// of its first datagram here (rekey.go); packet numbers go on across generations.
	txGen, genFirstPN uint64
	stats             *pathstat.Stats
	tier              uint8          // framing.TierPrimary, TierBackup or TierDisabled
	live              *liveness.Path // validating, up, suspect, dead, rejoining or down
	downErr           time.Time      // when a socket error took the path down (zero: not so)
	probeID           uint32         // outstanding probe
	// Server: a new source address being validated before it becomes remote (migrate.go).
	cand      netip.AddrPort // zero: none
	candData  [framing.PathDataLen]byte
	candStart time.Time // when its validation started (also: the last one started)
	candSent  time.Time // when the last PATH_CHALLENGE went to it
	candTries int       // PATH_CHALLENGEs sent to it
	candRecv  uint64    // bytes of authenticated datagrams received from it
	candBytes uint64    // bytes sent to it (at most pathAmplification × candRecv)
	resend    bool      // stopped being usable: re-send its unacknowledged packets elsewhere
	ackedPN   uint64    // highest packet number the peer reported
	// The newest FEEDBACK taken (the same report may come on two paths).
	fbSeen    bool
	fbHighest uint64
	fbPackets uint32
	// Which path carried the reports taken (followReturnPathLocked).
	fbVia    uint8
	fbViaSet bool
	fbViaRun int // reports in a row that came another way
	sendErrs uint64

	prio       txQueue                 // small packets and repairs, sent first
	bulk       txQueue                 // everything else
	sent       *[sentRingSize]sentSlot // allocated with the first data packet sent (an idle path has none)
	forgotten  uint64                  // packets below this number have no copy left
	outBufs    [][]byte                // data datagrams are sealed here, path.MaxBatch of bufSize
	outUsed    int                     // outBufs holding a datagram not yet written
	out        outQueue[txDgram]       // sealed, waiting for flushPath (txout.go)
	wbufs      [][]byte                // the writer's views for WriteBatch (only it uses them)
	repairs    uint64                  // packets of other paths re-sent on this one
	failovers  uint64                  // times it left liveness up, its traffic moved to other paths
	codelDrops uint64                  // packets CoDel dropped from the bulk queue
	codel      *aqm.CoDel              // drops from the bulk queue when it stands too long
	pacer      sched.Pacer             // spreads the window's sends at the delivery rate
	equalize   time.Duration           // local queueing that only equalizes delay with slower paths
	// When the path last became usable (liveness up, or made primary), and when the
	// scheduler first saw its estimate measured (out of startup; zero: not yet, or restarted).
	// A path that became usable after another was measured joins a running bond
	// (sched.Path.Joining).
	usableAt, measuredAt time.Time

	// receive side, guarded by Session.rxMu
	replay     crypto.ReplayWindow
	rxAny      bool
	rxHighest  uint64
	rxPackets  uint32
	rxBytes    uint64
	rxEcho     uint16
	rxAt       time.Time
	rxDirty    bool // received data since the last FEEDBACK
	lastRecv   time.Time
	rxGap      time.Duration // smoothed time between arrivals (gain 1/16); busyGap after a pause
	rxDatagram uint64
	rxRemote   netip.AddrPort // server: a copy of remote, guarded by rxMu (written under both locks)
}

// transportRef holds a path's transport (an interface) for atomic.Pointer.
type transportRef struct{ t path.Transport }

// transport is the transport p sends on now (nil before it has one).
func (p *Path) transport() path.Transport {
	if r := p.conn.Load(); r != nil {
		return r.t
	}
	return nil
}

// setTransport makes p send on t (a new path, or its uplink's socket replaced).
func (p *Path) setTransport(t path.Transport) { p.conn.Store(&transportRef{t}) }

// queuedLocked is the number of datagram bytes waiting in p's local queues. mu must be held.
func (p *Path) queuedLocked() int { return p.prio.bytes + p.bulk.bytes }

// usableLocked reports whether new data may be scheduled on p. mu must be held.
func (p *Path) usableLocked(time.Time) bool {
	return p.live.Usable() && p.remote.IsValid() && p.tier != framing.TierDisabled
}

// fallbackLocked reports whether p may hold new data while no path is usable: a suspect path
// (silent, but not known to be broken), or a path still in its first validation (for less
// than its dead threshold) that has an address: a new session's paths, and at the server a
// path whose first authenticated datagram came in before its own PROBE came back. It holds
// the data in its local queue, sending none, until it or another path is usable
// (serviceQueues): the first packets of a session wait a round trip instead of being
// dropped. mu must be held.
func (p *Path) fallbackLocked(now time.Time) bool {
	if !p.remote.IsValid() || p.tier == framing.TierDisabled {
		return false
	}
	switch p.live.State() {
	case liveness.Suspect:
		return true
	case liveness.Validating:
		return now.Sub(p.live.Since()) < p.live.Config().DeadAfter
	}
	return false
}
