package session

import (
	"sync"
	"time"

	"bondtun/framing"
)

// maxInnerMTU bounds the inner MTU a session supports; it sizes the packet buffers.
const maxInnerMTU = 9000

// bufSize is the size of one packet buffer: headroom, the largest inner packet, the AEAD tag.
const bufSize = framing.PayloadOffset + maxInnerMTU + framing.TagLen

// packetBuf is one pooled packet buffer. A datagram occupies data[:n].
type packetBuf struct {
	data  [bufSize]byte
	n     int
	small bool      // rides the priority queue
	enq   time.Time // when it entered a local queue
}

var bufPool = sync.Pool{New: func() any { return new(packetBuf) }}

func getBuf() *packetBuf { return bufPool.Get().(*packetBuf) }

func putBuf(b *packetBuf) {
	b.n = 0
	b.small = false
	bufPool.Put(b)
}
