package session

import (
	"sync"
	"time"

	"github.com/bondtun/bondtun/framing"
)

// maxInnerMTU bounds the inner MTU a session supports; it sizes the packet buffers.
const maxInnerMTU = 9000

// bufSize is the size of one packet buffer: headroom, the largest inner packet, the AEAD tag.
const bufSize = framing.PayloadOffset + maxInnerMTU + framing.TagLen

// packetBuf is one pooled packet buffer. A datagram occupies data[:n].
type packetBuf struct {
	data  [bufSize]byte
	n     int
	small bool      // a small packet: passes the path's window
	prio  bool      // rides the priority queue (small packets, inner retransmissions)
	enq   time.Time // when it entered a local queue
	order uint64    // the session's scheduling order: queues moved between paths merge by it
}

var bufPool = sync.Pool{New: func() any { return new(packetBuf) }}

func getBuf() *packetBuf { return bufPool.Get().(*packetBuf) }

func putBuf(b *packetBuf) {
	b.n = 0
	b.small = false
	b.prio = false
	bufPool.Put(b)
}

// ctrlScratch holds the scratch a control datagram or a timer run's reports are built in:
// taken for the one call that sends them, so an idle session or path keeps none.
const ctrlScratchSize = 512

var ctrlScratch = sync.Pool{New: func() any { return new([ctrlScratchSize]byte) }}

// MaxInnerMTU is the largest inner packet (or library message) a session carries.
const MaxInnerMTU = maxInnerMTU
