package session

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/internal/memnet"
	"github.com/bondtun/bondtun/internal/timerq"
	"github.com/bondtun/bondtun/liveness"
)

// manualClock is a clock only the test moves.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// manualRecorder is the server's Deliverer: the messages' sequence numbers, and when (on
// the manual clock) they were delivered.
type manualRecorder struct {
	clk  *manualClock
	mu   sync.Mutex
	seqs []uint64
	at   []time.Time
}

func (r *manualRecorder) Deliver(pkts [][]byte) {
	now := r.clk.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pkts {
		r.seqs = append(r.seqs, binary.BigEndian.Uint64(p))
		r.at = append(r.at, now)
	}
}

type manualHandler struct{ rec *manualRecorder }

func (h manualHandler) SessionStarted(string, *Session) Deliverer { return h.rec }
func (h manualHandler) SessionInstalled(string, *Session) bool    { return true }
func (h manualHandler) SessionEnded(string, *Session)             {}

// TestManualClockFailover drives a message client (uplinks A and B) and a message server
// on a clock the test advances by hand, a millisecond a step, without synctest: the nodes
// get it as ClientConfig.Clock and ServerConfig.Clock, their timers run only when the test
// calls RunDue on a manual queue on the same clock, and the in-memory network measures its
// links on it and delivers only when the test settles it. The clock starts years away from
// the wall clock, so a read of the wall clock anywhere in the engine would show as absurd
// delays. The scenario: steady traffic over both paths, then A's link is cut both ways;
// traffic moves to B, what was in flight on A is re-sent, and what the server delivers
// is in order, never twice, without a long stall.
// manualPair is a message client (uplinks A and B) and a message server on a manual clock,
// connected, with their Run loops going; step moves the clock a millisecond and runs what
// is due.
type manualPair struct {
	clk  *manualClock
	n    *memnet.Network
	tq   *timerq.Queue
	cl   *Client
	rec  *manualRecorder
	a, b memnet.LinkConfig
	t    *testing.T
}

func newManualPair(t *testing.T) *manualPair {
	t.Helper()
	clk := &manualClock{t: time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)}
	n := memnet.NewManual(1, clk.Now)
	tq := timerq.New(timerq.Config{Now: clk.Now, Manual: true})
	a, b := cable(), dsl() // 10 ms and 30 ms one way
	n.SetLink(simA, simS, a)
	n.SetLink(simS, simA, a)
	n.SetLink(simUplink(1), simS, b)
	n.SetLink(simS, simUplink(1), b)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		n.Close() // the BYEs fail at once rather than wait on pipes no one reads
		wg.Wait()
		tq.Close()
	})
	rec := &manualRecorder{clk: clk}
	serverKey, clientKey := newKey(t), newKey(t)
	sv, err := NewMessageServer(ServerConfig{
		Identity:  serverKey,
		Port:      7350,
		Addresses: []netip.Addr{simS},
		Peers:     []PeerConfig{{Name: "client", Key: clientKey.Public()}},
		Network:   n,
		Timers:    tq,
		Clock:     clk.Now,
	}, manualHandler{rec})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); sv.Run(ctx) }()
	cl, err := NewMessageClient(ClientConfig{
		Identity:   clientKey,
		ServerName: "server",
		ServerKey:  serverKey.Public(),
		Endpoint:   netip.AddrPortFrom(simS, 7350),
		Uplinks:    []UplinkConfig{{Name: "a", Source: simA}, {Name: "b", Source: simUplink(1)}},
		Network:    n,
		Timers:     tq,
		Clock:      clk.Now,
	}, &simRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); cl.Run(ctx) }()
	return &manualPair{clk: clk, n: n, tq: tq, cl: cl, rec: rec, a: a, b: b, t: t}
}

// settle lets the network deliver what is due and the receivers deal with it.
func (mp *manualPair) settle() {
	mp.t.Helper()
	if err := mp.n.Settle(10 * time.Second); err != nil {
		mp.t.Fatal(err)
	}
}

// step: the clock moves a millisecond, the network delivers what is due and the receivers
// deal with it, the timers that are due run, and what they sent is settled.
func (mp *manualPair) step() {
	mp.t.Helper()
	mp.clk.advance(time.Millisecond)
	mp.settle()
	mp.tq.RunDue(mp.clk.Now())
	mp.settle()
}

func TestManualClockFailover(t *testing.T) {
	mp := newManualPair(t)
	clk, n, cl, rec, a, b := mp.clk, mp.n, mp.cl, mp.rec, mp.a, mp.b
	step := mp.step
	usable := func(s *Session) (ok [2]bool) {
		for _, pi := range s.Paths() {
			ok[pi.ID>>4] = ok[pi.ID>>4] || pi.Usable
		}
		return ok
	}
	for i := 0; usable(cl.Session()) != [2]bool{true, true}; i++ {
		if i == 2000 {
			t.Fatalf("the paths did not come up in 2 s of the manual clock: %+v", cl.Session().Paths())
		}
		step()
	}

	var sent uint64
	bufs, sizes := [][]byte{make([]byte, bufSize)}, []int{1000}
	run := func(d time.Duration, send bool) {
		for range int(d / time.Millisecond) {
			if send {
				binary.BigEndian.PutUint64(bufs[0][framing.PayloadOffset:], sent)
				sent++
				cl.Send(bufs, sizes, 1)
			}
			step()
		}
	}
	run(time.Second, true) // 8 Mbit/s over both paths
	s := cl.Session()
	before := s.Paths()
	down := a
	down.Down = true
	n.SetLink(simA, simS, down)
	n.SetLink(simS, simA, down)
	cut := clk.Now()
	run(2*time.Second, true)
	run(time.Second, false) // the last ones arrive

	if cl.Session() != s {
		t.Fatal("the session was replaced")
	}
	rec.mu.Lock()
	seqs, at := rec.seqs, rec.at
	rec.mu.Unlock()
	var maxGap time.Duration
	afterCut := 0
	for i, q := range seqs {
		if i > 0 && q <= seqs[i-1] {
			t.Fatalf("message %d delivered after %d: out of order or twice", q, seqs[i-1])
		}
		if q >= sent {
			t.Fatalf("message %d delivered, only %d sent", q, sent)
		}
		if i > 0 {
			maxGap = max(maxGap, at[i].Sub(at[i-1]))
		}
		if at[i].After(cut) {
			afterCut++
		}
	}
	lost := int(sent) - len(seqs)
	after := s.Paths()
	t.Logf("sent %d delivered %d (%d after the cut) lost %d max gap %v repaired %d", sent, len(seqs), afterCut, lost, maxGap, s.Counters().TxRepaired.Load())
	for _, pi := range after {
		t.Logf("path %s: %s srtt %v min rtt %v tx %d", pi.Name, pi.State, pi.SRTT, pi.MinRTT, pi.TxPackets)
	}
	if lost > int(sent)/100 {
		t.Errorf("%d of %d messages lost: the cut path's packets should be re-sent on B", lost, sent)
	}
	if maxGap > 500*time.Millisecond {
		t.Errorf("deliveries stalled for %v of the manual clock after the cut", maxGap)
	}
	if afterCut < 1900 {
		t.Errorf("only %d messages delivered after the cut, of the 2000 sent then", afterCut)
	}
	if s.Counters().TxRepaired.Load() == 0 {
		t.Error("nothing was re-sent after the cut")
	}
	for i, pi := range after {
		uplink := pi.ID >> 4
		if uplink == 0 && (pi.Usable || (pi.State != liveness.Dead.String() && pi.State != liveness.Suspect.String())) {
			t.Errorf("path %s is %s (usable %v) 2 s after its link was cut", pi.Name, pi.State, pi.Usable)
		}
		if uplink == 1 && !pi.Usable {
			t.Errorf("path %s is not usable", pi.Name)
		}
		// The paths' RTTs are the links' delays measured on the manual clock: on the wall
		// clock they would be microseconds.
		one := []time.Duration{a.Delay, b.Delay}[uplink]
		if pi.MinRTT < 2*one || pi.MinRTT > 2*one+20*time.Millisecond {
			t.Errorf("path %s: min RTT %v, want the link's %v and a little", pi.Name, pi.MinRTT, 2*one)
		}
		if uplink == 1 && pi.TxPackets-before[i].TxPackets < 1900 {
			t.Errorf("path %s sent %d datagrams after the cut: the traffic did not move to it", pi.Name, pi.TxPackets-before[i].TxPackets)
		}
	}
}

// TestFirstMessagesWaitForValidation: what a client is given to send right after Connect,
// before any of its paths has answered a PROBE, waits in a path's local queue (none of it
// goes out: an unvalidated path carries no data) and leaves once the path is up, instead of
// being dropped for want of a usable path. The server side does the same for a path whose
// first datagram came in before its own PROBE came back.
func TestFirstMessagesWaitForValidation(t *testing.T) {
	mp := newManualPair(t)
	s := mp.cl.Session()
	for _, pi := range s.Paths() {
		if pi.Usable {
			t.Fatalf("path %s usable before any step; the test needs it validating", pi.Name)
		}
	}
	const n = 5
	bufs, sizes := [][]byte{make([]byte, bufSize)}, []int{1000}
	for i := range uint64(n) {
		binary.BigEndian.PutUint64(bufs[0][framing.PayloadOffset:], i)
		mp.cl.Send(bufs, sizes, 1)
	}
	if d := s.Counters().TxDropped.Load(); d != 0 {
		t.Fatalf("%d of the first %d messages dropped before a path was validated", d, n)
	}
	for i := 0; i < 1000; i++ {
		mp.step()
		mp.rec.mu.Lock()
		got := len(mp.rec.seqs)
		mp.rec.mu.Unlock()
		if got == n {
			break
		}
	}
	mp.rec.mu.Lock()
	seqs := mp.rec.seqs
	mp.rec.mu.Unlock()
	if len(seqs) != n {
		t.Fatalf("server delivered %v after 1 s of the manual clock, want the %d first messages; client counters: dropped %d, queue dropped %d",
			seqs, n, s.Counters().TxDropped.Load(), s.Counters().TxQueueDropped.Load())
	}
	for i, q := range seqs {
		if q != uint64(i) {
			t.Fatalf("delivered %v, want 0..%d in order", seqs, n-1)
		}
	}
}
