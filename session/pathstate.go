package session

import (
	"net/netip"
	"sync"
	"time"

	"bondtun/aqm"
	"bondtun/crypto"
	"bondtun/framing"
	"bondtun/path"
	"bondtun/pathstat"
)

// Path is one (client uplink × server address) pair of a session, seen from this side.
//
// Send-side fields are guarded by mu; receive-side fields by the session's rxMu.
// Lock order: Session.rxMu, then Path.mu.
type Path struct {
	id   uint8
	name string // e.g. "cable→0" for logs and status
	conn *path.Conn

	mu        sync.Mutex // guards the fields below
	remote    netip.AddrPort
	pn        uint64 // next packet number to send
	stats     *pathstat.Stats
	tier      uint8     // framing.TierPrimary, TierBackup or TierDisabled
	validated bool      // a PROBE_ACK (client) or an authenticated datagram (server) came back
	lastHeard time.Time // last evidence that our datagrams arrive: FEEDBACK progress or PROBE_ACK
	lastSent  time.Time
	probeID   uint32 // outstanding probe
	probeAt   time.Time
	ackedPN   uint64 // highest packet number the peer reported
	sendErrs  uint64
	ctrl      [512]byte // scratch for control datagrams, used under mu
	out       [1][]byte

	prio      txQueue // small packets and repairs, sent first
	bulk      txQueue // everything else
	sent      [sentRingSize]sentSlot
	forgotten uint64        // packets below this number have no copy left
	outBufs   [][]byte      // sealed datagrams of one drain, path.MaxBatch of bufSize
	outs      [][]byte      // views of outBufs handed to WriteBatch
	repairs   uint64        // packets of other paths re-sent on this one
	codel     *aqm.CoDel    // drops from the bulk queue when it stands too long
	equalize  time.Duration // local queueing that only equalizes delay with slower paths

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
	rxDatagram uint64
}

// queuedLocked is the number of datagram bytes waiting in p's local queues. mu must be held.
func (p *Path) queuedLocked() int { return p.prio.bytes + p.bulk.bytes }

// usable reports whether new data may be scheduled on p. mu must be held.
func (p *Path) usableLocked(now time.Time) bool {
	if !p.validated || !p.remote.IsValid() || p.tier == framing.TierDisabled {
		return false
	}
	return !p.suspectLocked(now)
}

// suspectLocked reports whether p has gone quiet: data is outstanding and nothing came back
// for longer than max(SRTT + 4·RTTVAR, suspectFloor); or nothing came back at all (not even
// a probe answer) for deadAfter. mu must be held.
func (p *Path) suspectLocked(now time.Time) bool {
	silence := now.Sub(p.lastHeard)
	if silence > deadAfter {
		return true
	}
	if p.stats.Inflight() > 0 {
		limit := max(p.stats.SRTT()+4*p.stats.RTTVar(), suspectFloor)
		if silence > limit && now.Sub(p.lastSent) < silence {
			return true
		}
	}
	return false
}
