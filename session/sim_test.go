package session

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/internal/memnet"
	"github.com/bondtun/bondtun/internal/timerq"
)

// The simulation: a message client with two uplinks (A, B) and a message server with one
// address (S), over an in-memory network (internal/memnet) inside a synctest bubble, so
// the session layer's clock is fake and its timers jump: each scenario below covers
// seconds of traffic in a fraction of a second of real time.

var (
	simA = netip.MustParseAddr("10.0.1.2")
	simS = netip.MustParseAddr("10.0.0.1")
)

// simRecorder is the server's Deliverer: the sequence numbers of the messages delivered,
// and when.
type simRecorder struct {
	mu   sync.Mutex
	seqs []uint64
	at   []time.Time
}

func (r *simRecorder) Deliver(pkts [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, p := range pkts {
		if len(p) < 8 {
			continue // not one of ours (FuzzSessionReceive's)
		}
		r.seqs = append(r.seqs, binary.BigEndian.Uint64(p))
		r.at = append(r.at, now)
	}
}

func (r *simRecorder) snapshot() ([]uint64, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.seqs...), append([]time.Time(nil), r.at...)
}

type simHandler struct{ rec *simRecorder }

func (h simHandler) SessionStarted(string, *Session) Deliverer { return h.rec }
func (h simHandler) SessionInstalled(string, *Session) bool    { return true }
func (h simHandler) SessionEnded(string, *Session)             {}

// simNode is the two ends of one simulation.
type simNode struct {
	t      *testing.T
	net    *memnet.Network
	tq     *timerq.Queue
	server *Server
	client *Client
	rec    *simRecorder
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sent   uint64 // messages offered
	start  time.Time
	bufs   [][]byte
	sizes  []int
	broken bool      // scenario state: the control channel was broken
	first  *Session  // the session before an event
	ctrl   *ctrlConn // its control channel then
}

// simUplink is the client's address on uplink i: 10.0.i+1.2 (simA is uplink 0).
func simUplink(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i + 1), 2}) }

// newSim starts both ends on links a (uplink A) and b (uplink B), each the same both ways,
// and waits until the client has a session whose paths are both usable. It must run inside
// a synctest bubble.
func newSim(t *testing.T, seed uint64, a, b memnet.LinkConfig) *simNode {
	t.Helper()
	return newSimN(t, seed, []memnet.LinkConfig{a, b}, []memnet.LinkConfig{a, b})
}

// newSimN is newSim with one uplink per entry of up (client to server) and down (server to
// client).
func newSimN(t *testing.T, seed uint64, up, down []memnet.LinkConfig) *simNode {
	t.Helper()
	n := memnet.New(seed)
	tq := timerq.New(timerq.Config{}) // the bubble's own: its goroutines must end with it
	var uplinks []UplinkConfig
	for i := range up {
		n.SetLink(simUplink(i), simS, up[i])
		n.SetLink(simS, simUplink(i), down[i])
		uplinks = append(uplinks, UplinkConfig{Name: string(rune('a' + i)), Source: simUplink(i)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	sn := &simNode{t: t, net: n, tq: tq, rec: &simRecorder{}, cancel: cancel}
	serverKey, clientKey := newKey(t), newKey(t)
	sv, err := NewMessageServer(ServerConfig{
		Identity:  serverKey,
		Port:      7350,
		Addresses: []netip.Addr{simS},
		Peers:     []PeerConfig{{Name: "client", Key: clientKey.Public()}},
		Network:   n,
		Timers:    tq,
	}, simHandler{sn.rec})
	if err != nil {
		t.Fatal(err)
	}
	sn.server = sv
	sn.wg.Add(1)
	go func() {
		defer sn.wg.Done()
		sv.Run(ctx)
	}()
	cl, err := NewMessageClient(ClientConfig{
		Identity:   clientKey,
		ServerName: "server",
		ServerKey:  serverKey.Public(),
		Endpoint:   netip.AddrPortFrom(simS, 7350),
		Uplinks:    uplinks,
		Network:    n,
		Timers:     tq,
	}, &simRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	sn.client = cl
	if err := cl.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	sn.wg.Add(1)
	go func() {
		defer sn.wg.Done()
		cl.Run(ctx)
	}()
	for range 100 {
		time.Sleep(10 * time.Millisecond)
		if s := cl.Session(); s != nil && s.usablePaths() == len(up) {
			break
		}
	}
	if s := cl.Session(); s == nil || s.usablePaths() != len(up) {
		t.Fatal("the paths did not come up in 1 s")
	}
	sn.start = time.Now()
	return sn
}

func (s *Session) usablePaths() int {
	n := 0
	for _, p := range s.pathList() {
		p.mu.Lock()
		if p.usableLocked(time.Now()) {
			n++
		}
		p.mu.Unlock()
	}
	return n
}

// send offers k messages of size bytes, numbered on from sn.sent.
func (sn *simNode) send(k, size int) {
	for len(sn.bufs) < k {
		sn.bufs = append(sn.bufs, make([]byte, bufSize))
		sn.sizes = append(sn.sizes, 0)
	}
	for i := range k {
		binary.BigEndian.PutUint64(sn.bufs[i][framing.PayloadOffset:], sn.sent)
		sn.sizes[i] = size
		sn.sent++
	}
	sn.client.Send(sn.bufs[:k], sn.sizes[:k], k)
}

// run offers k messages of size bytes every millisecond for d, calling at(elapsed) first
// each millisecond (events of the scenario).
func (sn *simNode) run(d time.Duration, k, size int, at func(time.Duration)) {
	begin := time.Now()
	for time.Since(begin) < d {
		if at != nil {
			at(time.Since(sn.start))
		}
		sn.send(k, size)
		time.Sleep(time.Millisecond)
	}
}

// stop ends both nodes and the network, leaving no goroutine behind.
func (sn *simNode) stop() {
	sn.cancel()
	sn.wg.Wait()
	sn.net.Close()
	sn.tq.Close()
}

// simResult sums up what was delivered of the sn.sent messages.
type simResult struct {
	delivered int
	lost      int           // never delivered
	maxGap    time.Duration // the longest time between two deliveries
}

// check verifies that the delivered messages are in order and none twice, and sums up.
func (sn *simNode) check() simResult {
	sn.t.Helper()
	seqs, at := sn.rec.snapshot()
	var r simResult
	for i, s := range seqs {
		if i > 0 && s <= seqs[i-1] {
			sn.t.Fatalf("message %d delivered after %d: out of order or twice", s, seqs[i-1])
		}
		if s >= sn.sent {
			sn.t.Fatalf("message %d delivered, only %d sent", s, sn.sent)
		}
		if i > 0 {
			r.maxGap = max(r.maxGap, at[i].Sub(at[i-1]))
		}
	}
	r.delivered = len(seqs)
	r.lost = int(sn.sent) - len(seqs)
	return r
}

func cable() memnet.LinkConfig {
	return memnet.LinkConfig{Delay: 10 * time.Millisecond, RateBps: 50e6, Queue: 50 * time.Millisecond}
}

func dsl() memnet.LinkConfig {
	return memnet.LinkConfig{Delay: 30 * time.Millisecond, RateBps: 20e6, Queue: 50 * time.Millisecond}
}

// TestSimScenarios drives the session layer through failover, repair, resend, rejoin and
// resume on a fake clock, each a row: links, events during 4 s of 8 Mbit/s of messages,
// and what must hold afterwards.
func TestSimScenarios(t *testing.T) {
	type check func(t *testing.T, sn *simNode, r simResult)
	cases := []struct {
		name   string
		a, b   memnet.LinkConfig
		events func(sn *simNode, elapsed time.Duration)
		check  check
	}{
		{
			name: "steady", a: cable(), b: dsl(),
			check: func(t *testing.T, sn *simNode, r simResult) {
				if r.lost != 0 {
					t.Errorf("%d of %d messages lost on clean links", r.lost, sn.sent)
				}
				if r.maxGap > 50*time.Millisecond {
					t.Errorf("deliveries stalled for %v", r.maxGap)
				}
			},
		},
		{
			name: "repair", a: withLoss(cable(), 0.02), b: dsl(),
			check: func(t *testing.T, sn *simNode, r simResult) {
				c := sn.client.Session().Counters()
				if c.TxRepaired.Load() == 0 {
					t.Error("no packet was repaired though A loses 2 %")
				}
				// Without repair about 2 % of A's share would be lost (≈ 1.4 % of all). A
				// repair rides the path where it arrives first, often A again, and the NACK
				// crosses A's lossy return: ≈ 0.1 % stays lost by design (one repair per loss).
				if r.lost > int(sn.sent)/200 {
					t.Errorf("%d of %d messages lost: repair should recover most of A's 2 %% loss", r.lost, sn.sent)
				}
			},
		},
		{
			name: "failover and resend", a: cable(), b: dsl(),
			events: func(sn *simNode, e time.Duration) {
				if e >= 2*time.Second && !sn.net.Link(simA, simS).Down {
					down := cable()
					down.Down = true
					sn.net.SetLink(simA, simS, down)
					sn.net.SetLink(simS, simA, down)
				}
			},
			check: func(t *testing.T, sn *simNode, r simResult) {
				if r.maxGap > 500*time.Millisecond {
					t.Errorf("deliveries stalled for %v after the cut", r.maxGap)
				}
				if r.lost > int(sn.sent)/100 {
					t.Errorf("%d of %d messages lost: the cut path's packets should be re-sent", r.lost, sn.sent)
				}
				if sn.client.Session().Counters().TxRepaired.Load() == 0 {
					t.Error("nothing was re-sent after the cut")
				}
			},
		},
		{
			name: "rejoin", a: cable(), b: dsl(),
			events: func(sn *simNode, e time.Duration) {
				down := e >= time.Second && e < 2*time.Second
				if sn.net.Link(simA, simS).Down != down {
					l := cable()
					l.Down = down
					sn.net.SetLink(simA, simS, l)
					sn.net.SetLink(simS, simA, l)
				}
			},
			check: func(t *testing.T, sn *simNode, r simResult) {
				if n := sn.client.Session().usablePaths(); n != 2 {
					t.Errorf("%d paths usable 2 s after A came back, want 2", n)
				}
				if r.lost > int(sn.sent)/100 {
					t.Errorf("%d of %d messages lost", r.lost, sn.sent)
				}
			},
		},
		{
			name: "resume", a: cable(), b: dsl(),
			events: func(sn *simNode, e time.Duration) {
				if e >= 2*time.Second && !sn.broken {
					sn.broken = true
					sn.first = sn.client.Session()
					sn.ctrl = sn.first.ctrl.Load()
					sn.net.BreakTCP(simA)
				}
			},
			check: func(t *testing.T, sn *simNode, r simResult) {
				s := sn.client.Session()
				if s != sn.first {
					t.Fatal("a broken control channel replaced the session instead of resuming it")
				}
				if s.ctrl.Load() == sn.ctrl {
					t.Error("the control channel was not replaced after it broke")
				}
				if r.lost != 0 {
					t.Errorf("%d of %d messages lost while the control channel was resumed", r.lost, sn.sent)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sn := newSim(t, 1, tc.a, tc.b)
				var ev func(time.Duration)
				if tc.events != nil {
					ev = func(e time.Duration) { tc.events(sn, e) }
				}
				sn.run(4*time.Second, 1, 1000, ev)
				time.Sleep(time.Second) // let the last ones arrive
				r := sn.check()
				tc.check(t, sn, r)
				t.Logf("sent %d delivered %d lost %d max gap %v", sn.sent, r.delivered, r.lost, r.maxGap)
				sn.stop()
			})
		})
	}
}

func withLoss(l memnet.LinkConfig, p float64) memnet.LinkConfig {
	l.Loss = p
	return l
}

// TestSimModel is the randomized model test: two nodes over links with random delay,
// jitter that reorders, loss and duplication, each seed its own draw. Whatever the links
// do, what the server delivers is a subsequence of what the client sent, in order, never
// twice (check), and, with at most 5 % loss on a path, nearly all of it: both paths' losses
// are repaired over the other.
func TestSimModel(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 7))
		link := func() memnet.LinkConfig {
			return memnet.LinkConfig{
				Delay:     time.Duration(1+rng.IntN(60)) * time.Millisecond,
				Jitter:    time.Duration(rng.IntN(10)) * time.Millisecond,
				Reorder:   rng.IntN(2) == 0,
				RateBps:   float64(10+rng.IntN(90)) * 1e6,
				Queue:     time.Duration(20+rng.IntN(200)) * time.Millisecond,
				Loss:      float64(rng.IntN(50)) / 1000,
				Duplicate: float64(rng.IntN(20)) / 1000,
			}
		}
		a, b := link(), link()
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sn := newSim(t, seed, a, b)
				sn.run(2*time.Second, 1, 1000, nil)
				time.Sleep(time.Second)
				r := sn.check()
				t.Logf("A %+v B %+v: sent %d delivered %d lost %d max gap %v", a, b, sn.sent, r.delivered, r.lost, r.maxGap)
				if r.lost > int(sn.sent)/50 {
					t.Errorf("%d of %d messages lost", r.lost, sn.sent)
				}
				sn.stop()
			})
		})
	}
}
