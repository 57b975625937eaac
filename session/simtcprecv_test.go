package session

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// tcpReceiver is the server's side of the flow: it takes segments in any order, hands the
// in-order stream on (counting it) and acknowledges.
type tcpReceiver struct {
	mu      sync.Mutex
	out     func([]byte) // hands a packet to the server's TUN
	src     netip.Addr
	dst     netip.Addr
	buf     []byte
	nxt     uint64      // the next in-order segment
	ooo     [][2]uint64 // out-of-order ranges above nxt, sorted, disjoint, not adjacent
	pending int         // in-order segments not yet acknowledged
	delack  *time.Timer
	stopped bool
	// marks is when the in-order stream reached each multiple of markEvery segments.
	marks      []time.Time
	dups, bad  int
	acks       int
	lastSacked [2]uint64 // the block the latest out-of-order segment joined
}

const markEvery = 8

func newTCPReceiver(src, dst netip.Addr, out func([]byte)) *tcpReceiver {
	return &tcpReceiver{out: out, src: src, dst: dst, buf: make([]byte, tcpHdrLen+4+3*8)}
}

func (r *tcpReceiver) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.delack != nil {
		r.delack.Stop()
	}
}

// onSegment takes segment k with its payload.
func (r *tcpReceiver) onSegment(k uint64, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	if len(payload) != tcpMSS || binary.BigEndian.Uint64(payload) != k || binary.BigEndian.Uint64(payload[tcpMSS-8:]) != k {
		r.bad++
		return
	}
	now := time.Now()
	switch {
	case k < r.nxt || r.inOOO(k):
		r.dups++
		r.ackLocked(now, &[2]uint64{k, k + 1})
	case k == r.nxt:
		filled := len(r.ooo) > 0
		r.advanceLocked(now, k+1)
		if len(r.ooo) > 0 && r.ooo[0][0] == r.nxt {
			r.advanceLocked(now, r.ooo[0][1])
			r.ooo = r.ooo[1:]
		}
		if filled {
			r.ackLocked(now, nil)
			return
		}
		r.pending++
		if r.pending >= 2 {
			r.ackLocked(now, nil)
		} else if r.delack == nil {
			r.delack = time.AfterFunc(tcpDelAck, r.onDelAck)
		} else {
			r.delack.Reset(tcpDelAck)
		}
	default:
		r.insertLocked(k)
		r.ackLocked(now, nil)
	}
}

func (r *tcpReceiver) inOOO(k uint64) bool {
	for _, b := range r.ooo {
		if k >= b[0] && k < b[1] {
			return true
		}
	}
	return false
}

func (r *tcpReceiver) advanceLocked(now time.Time, to uint64) {
	for n := r.nxt/markEvery + 1; n*markEvery <= to; n++ {
		r.marks = append(r.marks, now)
	}
	r.nxt = to
}

func (r *tcpReceiver) insertLocked(k uint64) {
	i := 0
	for i < len(r.ooo) && r.ooo[i][1] < k {
		i++
	}
	switch {
	case i < len(r.ooo) && r.ooo[i][1] == k:
		r.ooo[i][1]++
		if i+1 < len(r.ooo) && r.ooo[i+1][0] == k+1 {
			r.ooo[i][1] = r.ooo[i+1][1]
			r.ooo = append(r.ooo[:i+1], r.ooo[i+2:]...)
		}
	case i < len(r.ooo) && r.ooo[i][0] == k+1:
		r.ooo[i][0] = k
	default:
		r.ooo = append(r.ooo, [2]uint64{})
		copy(r.ooo[i+1:], r.ooo[i:])
		r.ooo[i] = [2]uint64{k, k + 1}
	}
	r.lastSacked = r.ooo[i]
}

func (r *tcpReceiver) onDelAck() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped && r.pending > 0 {
		r.ackLocked(time.Now(), nil)
	}
}

// ackLocked sends an ACK: a D-SACK block first if dsack is set, then the block the latest
// out-of-order segment joined, then the highest others, 3 blocks at most.
func (r *tcpReceiver) ackLocked(now time.Time, dsack *[2]uint64) {
	r.pending = 0
	r.acks++
	var blocks [3][2]uint64
	n := 0
	if dsack != nil {
		blocks[n] = *dsack
		n++
	}
	first := -1
	for i, b := range r.ooo {
		if b[0] <= r.lastSacked[0] && r.lastSacked[0] < b[1] {
			first = i
			blocks[n] = b
			n++
			break
		}
	}
	for i := len(r.ooo) - 1; i >= 0 && n < 3; i-- {
		if i != first {
			blocks[n] = r.ooo[i]
			n++
		}
	}
	size := tcpHdrLen
	if n > 0 {
		size += 4 + 8*n
	}
	p := r.buf[:size]
	putTCPHeader(p, r.src, r.dst, tcpPort, tcpPort+1, 0, uint32(r.nxt*tcpMSS), size, size-40, now)
	if n > 0 {
		o := p[tcpHdrLen:]
		o[0], o[1], o[2], o[3] = 1, 1, 5, byte(2+8*n) // NOP NOP SACK
		for i := range n {
			binary.BigEndian.PutUint32(o[4+8*i:], uint32(blocks[i][0]*tcpMSS))
			binary.BigEndian.PutUint32(o[8+8*i:], uint32(blocks[i][1]*tcpMSS))
		}
	}
	r.out(p)
}

// putTCPHeader writes an IPv4 header and a TCP header with optLen bytes of options, the
// first 12 of them a timestamps option, into p (total bytes).
func putTCPHeader(p []byte, src, dst netip.Addr, sport, dport uint16, seq, ack uint32, total, optLen int, now time.Time) {
	clear(p[:40+optLen])
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(total))
	p[6] = 0x40 // DF
	p[8], p[9] = 64, 6
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	t := p[20:]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12] = byte((20+optLen)/4) << 4
	t[13] = 0x10 // ACK
	binary.BigEndian.PutUint16(t[14:], 0xffff)
	o := t[20:]
	o[0], o[1], o[2], o[3] = 1, 1, 8, 10 // NOP NOP TS
	binary.BigEndian.PutUint32(o[4:], uint32(now.UnixMilli()))
}

// parseTCP reads what the model's packets carry: the sequence and acknowledgement numbers
// in segments, the payload, and the SACK blocks (into blocks[:0]).
func parseTCP(pkt []byte, blocks [][2]uint64) (seq, ack uint64, payload []byte, sacks [][2]uint64, ok bool) {
	if len(pkt) < 40 || pkt[0] != 0x45 || pkt[9] != 6 {
		return 0, 0, nil, nil, false
	}
	t := pkt[20:]
	off := int(t[12]>>4) * 4
	if off < 20 || off > len(t) {
		return 0, 0, nil, nil, false
	}
	seq = uint64(binary.BigEndian.Uint32(t[4:])) / tcpMSS
	ack = uint64(binary.BigEndian.Uint32(t[8:])) / tcpMSS
	sacks = blocks[:0]
	for o := t[20:off]; len(o) > 0; {
		switch o[0] {
		case 0:
			o = nil
			continue
		case 1:
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			return 0, 0, nil, nil, false
		}
		if o[0] == 5 {
			for b := o[2:o[1]]; len(b) >= 8; b = b[8:] {
				sacks = append(sacks, [2]uint64{uint64(binary.BigEndian.Uint32(b)) / tcpMSS, uint64(binary.BigEndian.Uint32(b[4:])) / tcpMSS})
			}
		}
		o = o[o[1]:]
	}
	return seq, ack, t[off:], sacks, true
}
