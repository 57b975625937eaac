package crypto

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// bufPipe returns the two ends of an in-memory, buffered, full-duplex
// connection. net.Pipe is synchronous: when one TLS side rejects the peer
// and sends an alert while the peer is still blocked writing its flight,
// both writes block forever. A buffered pipe behaves like TCP instead.
func bufPipe() (net.Conn, net.Conn) {
	ab, ba := newHalfPipe(), newHalfPipe()
	return &pipeEnd{r: ba, w: ab}, &pipeEnd{r: ab, w: ba}
}

// halfPipe is one direction: an unbounded byte buffer.
type halfPipe struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	closed bool
}

func newHalfPipe() *halfPipe {
	h := &halfPipe{}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *halfPipe) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cond.Broadcast()
}

type pipeEnd struct {
	r, w *halfPipe
}

func (p *pipeEnd) Read(b []byte) (int, error) {
	h := p.r
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.buf) == 0 && !h.closed {
		h.cond.Wait()
	}
	if len(h.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(b, h.buf)
	h.buf = h.buf[n:]
	return n, nil
}

// Write appends b for the peer. After a close the bytes are accepted and lost, as TCP
// accepts a write after the peer closed: the writer learns of the close from its next
// read (an alert the peer sent first, then EOF), not from a write error that would race
// with reading the alert.
func (p *pipeEnd) Write(b []byte) (int, error) {
	h := p.w
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return len(b), nil
	}
	h.buf = append(h.buf, b...)
	h.cond.Broadcast()
	return len(b), nil
}

// Close closes both directions, as closing a socket does.
func (p *pipeEnd) Close() error {
	p.r.close()
	p.w.close()
	return nil
}

func (p *pipeEnd) LocalAddr() net.Addr  { return pipeAddr{} }
func (p *pipeEnd) RemoteAddr() net.Addr { return pipeAddr{} }

// Deadlines are not needed by the tests; report that they are unsupported.
func (p *pipeEnd) SetDeadline(time.Time) error      { return os.ErrNoDeadline }
func (p *pipeEnd) SetReadDeadline(time.Time) error  { return os.ErrNoDeadline }
func (p *pipeEnd) SetWriteDeadline(time.Time) error { return os.ErrNoDeadline }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
