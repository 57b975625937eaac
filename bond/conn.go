package bond

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/session"
)

// ErrMessageSize is returned for a message that is empty or longer than the connection's
// MaxMessageSize.
var ErrMessageSize = errors.New("bond: message empty or larger than MaxMessageSize")

// ErrPeerClosed is returned by writes once the peer ended the connection (reads return
// io.EOF when they have taken what arrived before).
var ErrPeerClosed = errors.New("bond: the peer closed the connection")

// writeBatch is how many messages one call into the session carries.
const writeBatch = 64

// backlogPoll is how often a writer whose paths' queues are full looks again: well under
// the session's backlog limit (10 ms of the paths' rate), so the queues never run dry.
const backlogPoll = 500 * time.Microsecond

// sender is the session side of a Conn: a client (which keeps one session, re-established
// when needed) or one session of a listener.
type sender interface {
	send(bufs [][]byte, sizes []int, n int)
	session() *session.Session // nil between sessions
}

// Conn is a message connection to one peer over all the paths between the two ends. Its
// methods are safe for concurrent use; messages written concurrently are each kept whole,
// in some order.
type Conn struct {
	peer       string
	maxMessage int
	in         *inbox
	out        sender

	wmu   sync.Mutex // serializes writers: the session takes one sending goroutine at a time
	bufs  [][]byte   // message copies with the session's headroom, grown as needed
	sizes [writeBatch]int
	one   [1][]byte
	timer *time.Timer

	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	closeFn   func() // ends the session side (Dial: the client; Listen: the session)
	peerGone  atomic.Bool
	listed    bool // a listener's Conn: queued for Accept (guarded by the Listener's mu)
	written   atomic.Uint64
	read      atomic.Uint64
}

func newConn(peer string, c common) *Conn {
	return &Conn{
		peer:       peer,
		maxMessage: c.maxMessage,
		in:         newInbox(c.maxMessage, c.queue),
		closing:    make(chan struct{}),
	}
}

// Peer is the name of the other end: the listener's address for a dialed connection, the
// configured peer name for an accepted one.
func (c *Conn) Peer() string { return c.peer }

// MaxMessageSize is the largest message the connection takes.
func (c *Conn) MaxMessageSize() int { return c.maxMessage }

// WriteMessage sends one message of 1 to MaxMessageSize bytes. It waits while the paths'
// local queues are full; it returns once the message is queued, not when it arrived.
func (c *Conn) WriteMessage(m []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.one[0] = m
	_, err := c.writeLocked(c.one[:])
	c.one[0] = nil
	return err
}

// WriteMessages sends msgs, in order, as WriteMessage would, in fewer calls into the
// session. It returns how many were queued.
func (c *Conn) WriteMessages(msgs [][]byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(msgs)
}

func (c *Conn) writeLocked(msgs [][]byte) (int, error) {
	for _, m := range msgs {
		if len(m) == 0 || len(m) > c.maxMessage {
			return 0, fmt.Errorf("%w (%d bytes, at most %d)", ErrMessageSize, len(m), c.maxMessage)
		}
	}
	sent := 0
	for sent < len(msgs) {
		if err := c.waitRoom(); err != nil {
			return sent, err
		}
		k := min(len(msgs)-sent, writeBatch)
		for len(c.bufs) < k {
			c.bufs = append(c.bufs, make([]byte, framing.PayloadOffset+c.maxMessage+framing.TagLen))
		}
		for j := range k {
			c.sizes[j] = copy(c.bufs[j][framing.PayloadOffset:], msgs[sent+j])
		}
		c.out.send(c.bufs[:k], c.sizes[:k], k)
		sent += k
		c.written.Add(uint64(k))
	}
	return sent, nil
}

// waitRoom returns once a session exists and its local queues have room (Session.Backlog),
// or with an error once the connection is closed. wmu must be held.
func (c *Conn) waitRoom() error {
	for {
		select {
		case <-c.closing:
			return net.ErrClosed
		default:
		}
		if c.peerGone.Load() {
			return ErrPeerClosed
		}
		if s := c.out.session(); s != nil {
			if queued, limit := s.Backlog(); queued < limit {
				return nil
			}
		}
		if c.timer == nil {
			c.timer = time.NewTimer(backlogPoll)
		} else {
			c.timer.Reset(backlogPoll)
		}
		select {
		case <-c.closing:
			return net.ErrClosed
		case <-c.timer.C:
		}
	}
}

// ReadMessage waits for the next message and copies it into p, returning its length. A
// message longer than p is cut to len(p) and io.ErrShortBuffer returned with it. After
// the peer closed the connection and every message that came before was read, it returns
// io.EOF; after Close, net.ErrClosed.
func (c *Conn) ReadMessage(p []byte) (int, error) {
	for {
		select {
		case <-c.closing:
			return 0, net.ErrClosed
		default:
		}
		n, size, ok, ended := c.in.pop(p)
		if ok {
			c.read.Add(1)
			if n < size {
				return n, io.ErrShortBuffer
			}
			return n, nil
		}
		if ended {
			select {
			case <-c.closing:
				return 0, net.ErrClosed
			default:
				return 0, io.EOF
			}
		}
		select {
		case <-c.in.notify:
		case <-c.closing:
			return 0, net.ErrClosed
		}
	}
}

// Close ends the connection: the peer is told (BYE), every path and the control channel
// are closed. Messages not yet sent may be lost. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.in.end()
		if c.closeFn != nil {
			c.closeFn()
		}
	})
	return nil
}

// peerEnded records that the peer ended the session: reads drain, then see io.EOF.
func (c *Conn) peerEnded() {
	c.peerGone.Store(true)
	c.in.end()
}

// Stats are a connection's message counts.
type Stats struct {
	Written   uint64 // messages queued by WriteMessage(s)
	Delivered uint64 // messages the session delivered to the connection, in order
	Read      uint64 // messages taken by ReadMessage
	// Dropped counts delivered messages dropped because ReceiveQueue messages were
	// waiting for the reader already.
	Dropped uint64
}

// Stats returns the connection's message counts.
func (c *Conn) Stats() Stats {
	return Stats{
		Written:   c.written.Load(),
		Delivered: c.in.delivered.Load(),
		Read:      c.read.Load(),
		Dropped:   c.in.lost.Load(),
	}
}

// Paths describes the paths of the connection's current session, as `bondtun status`
// shows them: state, RTT, delivery rate, bytes.
func (c *Conn) Paths() []session.PathInfo {
	if s := c.out.session(); s != nil {
		return s.Paths()
	}
	return nil
}
