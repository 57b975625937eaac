package session

import (
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/liveness"
)

// gateTransport records the datagrams written to it; its first WriteBatch waits until
// release is closed, and fail, when set, is what every write returns.
type gateTransport struct {
	closedTransport
	started, release chan struct{}
	once             sync.Once
	mu               sync.Mutex
	got              [][]byte
	fail             error
}

func (g *gateTransport) WriteBatch(bufs [][]byte, _ netip.AddrPort) (int, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.started)
		<-g.release
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail != nil {
		return 0, g.fail
	}
	for _, b := range bufs {
		g.got = append(g.got, append([]byte(nil), b...))
	}
	return len(bufs), nil
}

// TestFlushPathCombines: a path's output is written by one goroutine at a time, outside
// Path.mu; datagrams sealed while it writes are left to it, and go out after its write, in
// packet number order; nothing is left waiting.
func TestFlushPathCombines(t *testing.T) {
	s := bareSession(t)
	p := &Path{id: 1, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
	if err := s.addPath(p); err != nil {
		t.Fatal(err)
	}
	g := &gateTransport{started: make(chan struct{}), release: make(chan struct{})}
	p.setTransport(g)
	now := time.Now()
	probe := framing.Probe{ID: 1}.Append(nil)

	s.sendControl(now, p, probe)
	done := make(chan struct{})
	go func() {
		s.flushPath(p) // the writer: waits in its first WriteBatch
		close(done)
	}()
	<-g.started
	for range 3 {
		s.sendControl(now, p, probe) // p.mu is free while the write waits
	}
	s.flushPath(p) // a write is under way: it leaves these to the writer
	g.mu.Lock()
	early := len(g.got)
	g.mu.Unlock()
	if early != 0 {
		t.Fatalf("%d datagrams written around the waiting writer", early)
	}
	close(g.release)
	<-done

	if len(g.got) != 4 {
		t.Fatalf("%d datagrams written, want 4", len(g.got))
	}
	for i, d := range g.got {
		h, err := framing.ParseHeader(d)
		if err != nil {
			t.Fatal(err)
		}
		if h.PacketNumber != uint64(i) {
			t.Fatalf("datagram %d has packet number %d: out of order", i, h.PacketNumber)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.out.q) != 0 || p.out.busy || p.out.pending.Load() {
		t.Fatalf("left: %d waiting, writing %v, pending %v", len(p.out.q), p.out.busy, p.out.pending.Load())
	}
}

// TestFlushPathSendError: a write the kernel refuses with "network unreachable" takes the
// path down, as before the writes left the lock; an error of another kind does not.
func TestFlushPathSendError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		down bool
	}{
		{syscall.ENETUNREACH, true},
		{net.ErrClosed, false},
	} {
		s := bareSession(t)
		p := &Path{id: 1, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
		if err := s.addPath(p); err != nil {
			t.Fatal(err)
		}
		g := &gateTransport{started: make(chan struct{}), release: make(chan struct{}), fail: tc.err}
		close(g.release)
		p.setTransport(g)
		now := time.Now()
		s.sendControl(now, p, framing.Probe{ID: 1}.Append(nil))
		s.flushTx()
		p.mu.Lock()
		state, errs := p.live.State(), p.sendErrs
		p.mu.Unlock()
		if (state == liveness.Down) != tc.down || errs != 1 {
			t.Errorf("%v: state %v after %d send errors, want down %v after 1", tc.err, state, errs, tc.down)
		}
	}
}
