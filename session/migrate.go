package session

import (
	"crypto/rand"
	"net/netip"
	"time"

	"github.com/bondtun/bondtun/framing"
)

// Path migration (server side), after QUIC's path validation (RFC 9000 §8.2, §9):
//
//   - The first authenticated datagram of a path gives it its address. Nothing is at stake
//     yet: the path is still validating, and carries only PROBE/PROBE_ACK until one of the
//     server's own PROBEs comes back, authenticated, from the client.
//   - A later authenticated datagram, newer than any before on the path, from another
//     address makes that address a candidate. It becomes the path's address only when a
//     PATH_RESPONSE with the 8 random bytes of the server's PATH_CHALLENGE comes back,
//     authenticated, from it. Meanwhile the path keeps sending to its old address; the
//     candidate gets only the challenges, at most pathAmplification × the bytes of
//     authenticated datagrams that came from it (RFC 9000 §8.1), pathChallengeTries of
//     them pathChallengeRetry apart, after which the validation fails.
//   - A path starts a validation at most once per pathValidateEvery, and only one at a
//     time: an on-path attacker who re-sends a peer's datagrams from elsewhere can make the
//     server send a few small datagrams to an address of its choice, never move the path.
//   - Moves are counted (path_moves in status) and logged at debug, at most once a second.
//
// A forged or replayed datagram never gets here: it fails the AEAD or the replay window
// first.

// noteSourceLocked handles an authenticated datagram of size bytes that came to p from
// another address than p's. newest says whether its packet number is the highest p has
// received. rxMu must be held.
func (s *Session) noteSourceLocked(now time.Time, p *Path, from netip.AddrPort, size int, newest bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.remote.IsValid() {
		s.setRemoteLocked(now, p, from)
		return
	}
	if p.cand.IsValid() {
		if from == p.cand {
			p.candRecv += uint64(size)
		}
		return // one validation at a time
	}
	if !newest {
		return // a late datagram from before a rebinding must not start one back
	}
	if !p.candStart.IsZero() && now.Sub(p.candStart) < pathValidateEvery {
		s.counters.PathValidationsLimited.Add(1)
		return
	}
	p.cand, p.candStart, p.candTries, p.candRecv, p.candBytes = from, now, 0, uint64(size), 0
	rand.Read(p.candData[:])
	s.counters.PathChallenges.Add(1)
	s.sendChallengeLocked(now, p)
}

// sendChallengeLocked sends a PATH_CHALLENGE to p's candidate address if its
// anti-amplification allowance has room for it. p.mu must be held.
func (s *Session) sendChallengeLocked(now time.Time, p *Path) {
	var buf [framing.FrameHeaderLen + framing.PathDataLen]byte
	frames := framing.PathChallenge{Data: p.candData}.Append(buf[:0])
	size := uint64(framing.Overhead + len(frames))
	p.candTries++
	p.candSent = now
	if p.candBytes+size > pathAmplification*p.candRecv {
		s.counters.PathAmplificationLimited.Add(1)
		return
	}
	if s.sendControlToLocked(now, p, p.cand, frames) {
		p.candBytes += size
	}
}

// tickValidationLocked re-sends p's PATH_CHALLENGE, or gives the validation up, as its
// time comes. p.mu must be held.
func (s *Session) tickValidationLocked(now time.Time, p *Path) {
	if !p.cand.IsValid() || now.Sub(p.candSent) < pathChallengeRetry {
		return
	}
	if p.candTries >= pathChallengeTries {
		s.counters.PathValidationsFailed.Add(1)
		s.log.Debug("path validation failed", "peer", s.peerName, "path", p.name, "candidate", p.cand, "received", p.candRecv, "sent", p.candBytes)
		p.cand = netip.AddrPort{}
		return
	}
	s.sendChallengeLocked(now, p)
}

// onPathResponse completes p's validation if r answers its challenge and came from the
// candidate address: the path moves there.
func (s *Session) onPathResponse(now time.Time, p *Path, from netip.AddrPort, r framing.PathResponse) {
	s.rxMu.Lock() // rxRemote changes with remote
	defer s.rxMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cand.IsValid() || from != p.cand || r.Data != p.candData {
		return // not our outstanding challenge, or not from where we sent it
	}
	old := p.remote
	p.cand = netip.AddrPort{}
	s.setRemoteLocked(now, p, from)
	s.counters.PathMoves.Add(1)
	if s.moveLog.allow(now, time.Second) {
		s.log.Debug("path moved", "peer", s.peerName, "path", p.name, "from", old, "to", from, "moves", s.counters.PathMoves.Load())
	}
}

// setRemoteLocked makes addr p's address. rxMu and p.mu must be held.
func (s *Session) setRemoteLocked(now time.Time, p *Path, addr netip.AddrPort) {
	p.remote = addr
	p.rxRemote = addr
	if !p.downErr.IsZero() { // sends to the old address failed; try the new one now
		p.downErr = time.Time{}
		s.onLiveness(now, p, p.live.OnLocalUp(now))
	}
}
