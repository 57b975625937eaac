package session

import (
	"time"

	"bondtun/classify"
	"bondtun/framing"
	"bondtun/sched"
)

// SendBatch seals and sends n inner packets. Packet i is
// bufs[i][framing.PayloadOffset : framing.PayloadOffset+sizes[i]], and each buffer has at
// least framing.TagLen bytes of room behind the packet. SendBatch writes the headers into the
// headroom and seals in place. It must be called from one goroutine at a time.
func (s *Session) SendBatch(bufs [][]byte, sizes []int, n int) {
	if n == 0 || s.closed.Load() {
		return
	}
	now := time.Now()
	s.snapshotPaths(now)
	if cap(s.assign) < n {
		s.assign = make([]int16, n)
	}
	s.assign = s.assign[:n]
	stamp := framing.Timestamp(now, s.epoch)
	for i := 0; i < n; i++ {
		size := sizes[i]
		pkt := bufs[i][framing.PayloadOffset : framing.PayloadOffset+size]
		var k int
		if sched.IsSmall(size) {
			k = s.small.Pick(now, size, s.schedPaths)
		} else {
			k = s.scheduler.Pick(now, size, s.schedPaths)
		}
		if k < 0 {
			s.assign[i] = -1
			s.counters.TxDropped.Add(1)
			continue
		}
		s.assign[i] = int16(k)
		s.schedPaths[k].Inflight += size + framing.Overhead
		lane := classify.Lane(pkt)
		seq := s.laneSeq[lane]
		s.laneSeq[lane] = (seq + 1) & 0xffffff
		inner := framing.InnerHeader{Lane: lane, LaneSeq: seq, SendTime: stamp}
		inner.Put(bufs[i][framing.HeaderLen:])
	}
	for k, p := range s.schedIdx {
		s.sendOnPath(now, p, int16(k), bufs, sizes)
	}
}

// sendOnPath seals and writes the packets of this batch assigned to p (index k).
func (s *Session) sendOnPath(now time.Time, p *Path, k int16, bufs [][]byte, sizes []int) {
	out := s.out[:0]
	p.mu.Lock()
	defer p.mu.Unlock()
	var bytes uint64
	for i, a := range s.assign {
		if a != k {
			continue
		}
		pn := p.pn
		p.pn++
		b := bufs[i]
		hdr := framing.Header{Type: framing.TypeData, PathID: p.id, Receiver: s.remote, PacketNumber: pn}
		hdr.Put(b)
		end := framing.PayloadOffset + sizes[i]
		sealed := s.seal.Seal(b[framing.HeaderLen:framing.HeaderLen], b[framing.HeaderLen:end], b[:framing.HeaderLen], p.id, pn)
		dgram := b[:framing.HeaderLen+len(sealed)]
		p.stats.OnSent(now, pn, len(dgram))
		bytes += uint64(len(dgram))
		out = append(out, dgram)
	}
	s.out = out[:0]
	if len(out) == 0 {
		return
	}
	p.lastSent = now
	sent, err := p.conn.WriteBatch(out, p.remote)
	s.counters.TxPackets.Add(uint64(sent))
	s.counters.TxBytes.Add(bytes)
	if err != nil {
		p.sendErrs++
		s.counters.TxDropped.Add(uint64(len(out) - sent))
		s.log.Debug("send failed", "path", p.name, "err", err)
	}
}

// snapshotPaths fills s.schedPaths with the scheduler's view of every path.
func (s *Session) snapshotPaths(now time.Time) {
	paths := s.pathList()
	s.schedPaths = s.schedPaths[:0]
	s.schedIdx = s.schedIdx[:0]
	bestRTT := time.Duration(0)
	for _, p := range paths {
		p.mu.Lock()
		sp := sched.Path{
			ID:       p.id,
			Usable:   p.usableLocked(now),
			Rate:     p.stats.DeliveryRate(),
			OWD:      p.stats.SRTT(),
			MinRTT:   p.stats.MinRTT(),
			Inflight: p.stats.Inflight(),
			Backup:   p.backup,
		}
		p.mu.Unlock()
		if sp.Usable && (bestRTT == 0 || sp.MinRTT < bestRTT) {
			bestRTT = sp.MinRTT
		}
		s.schedPaths = append(s.schedPaths, sp)
		s.schedIdx = append(s.schedIdx, p)
	}
	// The RTT a path measures is its forward delay plus the return delay of the path that
	// carries FEEDBACK, the fastest one. Subtract half the best RTT to get the forward delay.
	for i := range s.schedPaths {
		s.schedPaths[i].OWD = max(s.schedPaths[i].OWD-bestRTT/2, 0)
	}
}

// sendControl sends one control datagram carrying frames on p. It does nothing if p has no
// known remote address yet.
func (s *Session) sendControl(now time.Time, p *Path, frames []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.sendControlLocked(now, p, frames)
}

// sendControlLocked is sendControl with p.mu held.
func (s *Session) sendControlLocked(now time.Time, p *Path, frames []byte) {
	if !p.remote.IsValid() || framing.PayloadOffset+len(frames)+framing.TagLen > len(p.ctrl) {
		return
	}
	b := p.ctrl[:]
	pn := p.pn
	p.pn++
	hdr := framing.Header{Type: framing.TypeControl, PathID: p.id, Receiver: s.remote, PacketNumber: pn}
	hdr.Put(b)
	inner := framing.InnerHeader{SendTime: framing.Timestamp(now, s.epoch)}
	inner.Put(b[framing.HeaderLen:])
	end := framing.PayloadOffset + copy(b[framing.PayloadOffset:], frames)
	sealed := s.seal.Seal(b[framing.HeaderLen:framing.HeaderLen], b[framing.HeaderLen:end], b[:framing.HeaderLen], p.id, pn)
	p.out[0] = b[:framing.HeaderLen+len(sealed)]
	p.stats.OnSent(now, pn, len(p.out[0]))
	if _, err := p.conn.WriteBatch(p.out[:], p.remote); err != nil {
		p.sendErrs++
		s.log.Debug("control send failed", "path", p.name, "err", err)
	}
}
