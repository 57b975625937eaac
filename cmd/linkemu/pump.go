package main

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/bondtun/bondtun/linkemu"
)

// earlySlack is how early the writer may deliver a packet: packets due
// within it are written in the same wakeup rather than after another timer
// round trip.
const earlySlack = 50 * time.Microsecond

// direction moves packets from one TUN device to the other through a Link.
//
// Flow: routineReader blocks in in.Read and enqueues each packet under mu;
// if the new packet is due before the time the writer's timer is armed for,
// it re-arms the timer. routineWriter blocks on the timer (a timerfd, see
// wakeTimer), pops every packet due under mu, and writes each to out with
// mu released so that a slow write never blocks the reader; when nothing is
// due it arms the timer for the head packet, under mu, so that an arming by
// the reader is never overwritten by a stale one.
type direction struct {
	name    string // "ab" or "ba"
	in, out *rawIO // TUN devices: read by routineReader, written by routineWriter
	log     *slog.Logger
	mtu     int
	timer   *wakeTimer

	mu      sync.Mutex    // guards the fields below
	link    *linkemu.Link //
	armedAt time.Time     // when the timer will fire; zero = disarmed
	closed  bool          // timer closed: arm no more
}

func newDirection(name string, in, out *os.File, p linkemu.Params, mtu int, seed uint64, log *slog.Logger) (*direction, error) {
	rin, err := newRawIO(in)
	if err != nil {
		return nil, err
	}
	rout, err := newRawIO(out)
	if err != nil {
		return nil, err
	}
	timer, err := newWakeTimer()
	if err != nil {
		return nil, err
	}
	return &direction{
		name: name, in: rin, out: rout, log: log, mtu: mtu, timer: timer,
		link: linkemu.New(p, slotsFor(p, mtu), mtu, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))),
	}, nil
}

// slotsFor sizes the ring, which is fixed for the run, for the queue plus
// the bytes in flight counted in 256-byte packets (ACK-heavy reverse
// traffic is mostly smaller than that but also much slower), within
// [4096, 65536]. The floor leaves room for `set` raising the rate or delay
// at run time: 4096 full-size packets are 49 Mbit, a 100 Mbit/s link's
// queue and flight at 240 ms of RTT. A too-small ring shows as "slots"
// drops in stats.
func slotsFor(p linkemu.Params, mtu int) int {
	q := p.QueueBytes
	if q == 0 {
		q = linkemu.DefaultQueueBytes
	}
	inflight := float64(p.RateBps) / 8 * (p.Delay + 3*p.Jitter).Seconds()
	if p.RateBps <= 0 {
		inflight = 1e9 / 8 * (p.Delay + 3*p.Jitter).Seconds() // assume 1 Gbit/s
	}
	n := (q + int(inflight)) / 256
	return min(max(n, 4096, 2*q/mtu), 65536)
}

// armLocked points the timer at the head packet's due time, or at now if
// force is set. d.mu must be held.
func (d *direction) armLocked(now time.Time, force bool) {
	if d.closed {
		return
	}
	next, pending := d.link.Next()
	switch {
	case force:
		d.timer.arm(0)
		d.armedAt = now
	case !pending:
		d.timer.disarm()
		d.armedAt = time.Time{}
	default:
		d.timer.arm(next.Sub(now))
		d.armedAt = next
	}
}

// routineReader feeds packets from d.in into the link until d.in is closed.
func (d *direction) routineReader() {
	buf := make([]byte, d.mtu+1) // one spare byte detects oversized packets
	for {
		n, err := d.in.Read(buf)
		if err != nil {
			if !isClosed(err) {
				d.log.Error("read", "dir", d.name, "err", err)
			}
			return
		}
		if n == 0 {
			continue // EINTR
		}
		now := time.Now()
		d.mu.Lock()
		if d.link.Enqueue(now, buf[:n]) {
			if next, _ := d.link.Next(); d.armedAt.IsZero() || next.Before(d.armedAt) {
				d.armLocked(now, false)
			}
		}
		d.mu.Unlock()
	}
}

// routineWriter delivers due packets to d.out until the timer is closed.
func (d *direction) routineWriter() {
	buf := make([]byte, d.mtu)
	var tick [8]byte
	for {
		now := time.Now()
		d.mu.Lock()
		n, ok := d.link.Pop(now.Add(earlySlack), buf)
		if !ok {
			d.armLocked(now, false)
		}
		d.mu.Unlock()
		if ok {
			if _, err := d.out.Write(buf[:n]); err != nil && isClosed(err) {
				return
			}
			// Write errors other than close (e.g. the device is down) are
			// the receiver's loss, like a real link: keep going.
			continue
		}
		if err := d.timer.wait(&tick); err != nil {
			return
		}
	}
}

// stop makes routineWriter return.
func (d *direction) stop() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.timer.close()
}

// update applies fn to the link's params under the lock.
func (d *direction) update(fn func(*linkemu.Params) error) error {
	d.mu.Lock()
	p := d.link.Params()
	err := fn(&p)
	if err == nil {
		err = p.Validate()
	}
	if err == nil {
		now := time.Now()
		d.link.SetParams(now, p)
		d.armLocked(now, true) // the head may have changed or vanished
	}
	d.mu.Unlock()
	return err
}

func (d *direction) snapshot() (linkemu.Params, linkemu.Stats) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.link.Params(), d.link.Stats()
}

func isClosed(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, fs.ErrClosed) || errors.Is(err, io.EOF)
}
