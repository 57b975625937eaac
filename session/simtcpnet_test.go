package session

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/bondtun/bondtun/internal/memnet"
	"github.com/bondtun/bondtun/internal/timerq"
	"github.com/bondtun/bondtun/path"
)

// simTUN is a TUN device of the simulation: Read hands out what the local TCP endpoint sent
// (queued in in, as the kernel's TUN queue holds it), Write gives what the tunnel delivers
// to the endpoint at once. Only channels wait, so a synctest bubble's clock jumps.
type simTUN struct {
	in      chan []byte
	closed  chan struct{}
	once    sync.Once
	deliver func(pkt []byte)
	drops   atomic.Int64 // packets the full queue refused
}

func newSimTUN() *simTUN {
	return &simTUN{in: make(chan []byte, 4096), closed: make(chan struct{})}
}

// send queues a copy of pkt for the tunnel's reader.
func (d *simTUN) send(pkt []byte) {
	select {
	case d.in <- append([]byte(nil), pkt...):
	default:
		d.drops.Add(1)
	}
}

func (d *simTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	var b []byte
	select {
	case b = <-d.in:
	case <-d.closed:
		return 0, os.ErrClosed
	}
	n := 0
	for {
		sizes[n] = copy(bufs[n][offset:], b)
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case b = <-d.in:
		default:
			return n, nil
		}
	}
}

func (d *simTUN) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		d.deliver(b[offset:])
	}
	return len(bufs), nil
}

func (d *simTUN) File() *os.File             { return nil }
func (d *simTUN) MTU() (int, error)          { return tcpMTU, nil }
func (d *simTUN) Name() (string, error)      { return "sim", nil }
func (d *simTUN) Events() <-chan wgtun.Event { return nil }
func (d *simTUN) BatchSize() int             { return 64 }
func (d *simTUN) Close() error               { d.once.Do(func() { close(d.closed) }); return nil }

// simTCP is one inner TCP flow from a TUN client to a TUN server over the simulated links
// (or, with no tunnel, straight over one link).
type simTCP struct {
	net    *memnet.Network
	tq     *timerq.Queue
	server *Server
	client *Client
	ctun   *simTUN
	stun   *simTUN
	snd    *tcpSender
	rcv    *tcpReceiver
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time
	direct bool // no tunnel: the endpoints' packets go straight over the link
}

// newSimTCPDirect wires a sender of limit segments to a receiver straight over the link up
// (and down back), without the tunnel: the model's own efficiency on the link.
func newSimTCPDirect(seed uint64, up, down memnet.LinkConfig, limit uint64) *simTCP {
	n := memnet.New(seed)
	n.SetLink(simA, simS, up)
	n.SetLink(simS, simA, down)
	ta, err := n.ListenPacket(path.ListenOptions{Addr: netip.AddrPortFrom(simA, 1)})
	if err != nil {
		panic(err)
	}
	ts, err := n.ListenPacket(path.ListenOptions{Addr: netip.AddrPortFrom(simS, 1)})
	if err != nil {
		panic(err)
	}
	st := &simTCP{net: n, direct: true}
	out := func(tr path.Transport, dst netip.AddrPort) func([]byte) {
		return func(p []byte) { tr.WriteBatch([][]byte{p}, dst) }
	}
	st.snd = newTCPSender(clientInner, serverInner, limit, out(ta, ts.LocalAddr()))
	st.rcv = newTCPReceiver(serverInner, clientInner, out(ts, ta.LocalAddr()))
	onAck, onSeg := st.handlers()
	read := func(tr path.Transport, handle func([]byte)) {
		defer st.wg.Done()
		bufs, sizes, from := [][]byte{make([]byte, 2048)}, []int{0}, []netip.AddrPort{{}}
		for {
			if _, err := tr.ReadBatch(bufs, sizes, from); err != nil {
				return
			}
			handle(bufs[0][:sizes[0]])
		}
	}
	st.wg.Add(2)
	go read(ta, onAck)
	go read(ts, onSeg)
	return st
}

// handlers are what the client's side does with a packet for it (an ACK to the sender) and
// what the server's side does (a segment to the receiver).
func (st *simTCP) handlers() (onAck, onSeg func([]byte)) {
	var blocks [4][2]uint64
	var mu sync.Mutex
	onAck = func(pkt []byte) {
		mu.Lock()
		defer mu.Unlock()
		if _, ack, _, sacks, ok := parseTCP(pkt, blocks[:]); ok {
			st.snd.onAck(ack, sacks)
		}
	}
	onSeg = func(pkt []byte) {
		if seq, _, payload, _, ok := parseTCP(pkt, nil); ok {
			st.rcv.onSegment(seq, payload)
		}
	}
	return onAck, onSeg
}

// newSimTCP starts a TUN-mode server and client on the links (up[i] client→server on
// uplink i, down[i] the way back), waits for their paths, and wires a sender of limit
// segments (0: unlimited) on the client to a receiver on the server. It must run inside a
// synctest bubble; the flow starts with (*simTCP).run.
func newSimTCP(t *testing.T, seed uint64, up, down []memnet.LinkConfig, limit uint64) *simTCP {
	t.Helper()
	n := memnet.New(seed)
	tq := timerq.New(timerq.Config{})
	var uplinks []UplinkConfig
	for i := range up {
		n.SetLink(simUplink(i), simS, up[i])
		n.SetLink(simS, simUplink(i), down[i])
		uplinks = append(uplinks, UplinkConfig{Name: string(rune('a' + i)), Source: simUplink(i)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &simTCP{net: n, tq: tq, cancel: cancel, ctun: newSimTUN(), stun: newSimTUN()}
	st.snd = newTCPSender(clientInner, serverInner, limit, st.ctun.send)
	st.rcv = newTCPReceiver(serverInner, clientInner, st.stun.send)
	st.ctun.deliver, st.stun.deliver = st.handlers()
	serverKey, clientKey := newKey(t), newKey(t)
	sv, err := NewServer(ServerConfig{
		Identity:  serverKey,
		Port:      7350,
		Addresses: []netip.Addr{simS},
		Peers:     []PeerConfig{{Name: "client", Key: clientKey.Public(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(clientInner, 32)}}},
		Network:   n,
		Timers:    tq,
	}, st.stun)
	if err != nil {
		t.Fatal(err)
	}
	st.server = sv
	st.wg.Add(1)
	go func() { defer st.wg.Done(); sv.Run(ctx) }()
	cl, err := NewClient(ClientConfig{
		Identity:   clientKey,
		ServerName: "server",
		ServerKey:  serverKey.Public(),
		Endpoint:   netip.AddrPortFrom(simS, 7350),
		Uplinks:    uplinks,
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(serverInner, 32)},
		Network:    n,
		Timers:     tq,
	}, st.ctun)
	if err != nil {
		t.Fatal(err)
	}
	st.client = cl
	if err := cl.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	st.wg.Add(1)
	go func() { defer st.wg.Done(); cl.Run(ctx) }()
	for range 100 {
		time.Sleep(10 * time.Millisecond)
		if s := cl.Session(); s != nil && s.usablePaths() == len(up) {
			break
		}
	}
	if s := cl.Session(); s == nil || s.usablePaths() != len(up) {
		t.Fatal("the paths did not come up in 1 s")
	}
	return st
}

// run starts the flow and lets it go for d (or, for a limited sender, until everything is
// acknowledged or d passed).
func (st *simTCP) run(d time.Duration) {
	st.start = time.Now()
	st.snd.start()
	for time.Since(st.start) < d {
		time.Sleep(10 * time.Millisecond)
		if st.snd.done() {
			return
		}
	}
}

// goodput is the in-order payload rate (bit/s) the receiver saw between from and to after
// the start.
func (st *simTCP) goodput(from, to time.Duration) float64 {
	st.rcv.mu.Lock()
	defer st.rcv.mu.Unlock()
	a, b := st.start.Add(from), st.start.Add(to)
	n := 0
	for _, m := range st.rcv.marks {
		if !m.Before(a) && m.Before(b) {
			n++
		}
	}
	return float64(n*markEvery*tcpMSS*8) / (to - from).Seconds()
}

// stop ends the flow, both nodes and the network, leaving no goroutine behind.
func (st *simTCP) stop() {
	st.snd.stop()
	st.rcv.stop()
	if st.direct {
		st.net.Close()
		st.wg.Wait()
		return
	}
	st.cancel()
	st.wg.Wait()
	st.ctun.Close()
	st.stun.Close()
	st.net.Close()
	st.tq.Close()
}

// tcpCapacity is the TCP payload rate a link carries for full segments through the tunnel
// (simCapacity for the segments' packets, less their IP and TCP headers).
func tcpCapacity(l memnet.LinkConfig) float64 {
	return simCapacity(l, tcpMTU) * tcpMSS / tcpMTU
}

// tcpStats are the sender's counters.
type tcpStats struct{ retransmits, timeouts, recoveries, spurious int }

// tcpSample is the model's state at one moment (traceTCP).
type tcpSample struct {
	at                     time.Duration
	cwnd, ssthresh         float64
	pipe, sacked, lost     int
	srtt, minRTT, rto      time.Duration
	state                  tcpState
	acked, received        uint64
	retx, timeouts, recovs int
}

// traceTCP samples the model every 10 ms into samples until the returned func is called.
func (st *simTCP) traceTCP(samples *[]tcpSample) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			s := st.snd
			s.mu.Lock()
			if st.start.IsZero() {
				s.mu.Unlock()
				continue
			}
			smp := tcpSample{at: time.Since(st.start), cwnd: s.cwnd, ssthresh: s.ssthresh, pipe: s.pipe(), sacked: s.sacked, lost: s.lost,
				srtt: s.srtt, minRTT: s.minRTT, rto: s.rto, state: s.state, acked: s.base,
				retx: s.retransmits, timeouts: s.timeouts, recovs: s.recoveries}
			s.mu.Unlock()
			st.rcv.mu.Lock()
			smp.received = st.rcv.nxt
			st.rcv.mu.Unlock()
			*samples = append(*samples, smp)
		}
	}()
	return func() { close(done); <-finished }
}

// writeTCPTrace writes the samples as CSV (segments, ms).
func writeTCPTrace(t *testing.T, name string, samples []tcpSample) {
	f, err := os.Create(name)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "t_ms,cwnd,ssthresh,pipe,sacked,lost,srtt_ms,minrtt_ms,rto_ms,state,acked,received,retx,rto,recoveries")
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	for _, s := range samples {
		fmt.Fprintf(w, "%.0f,%.1f,%.1f,%d,%d,%d,%.1f,%.1f,%.0f,%d,%d,%d,%d,%d,%d\n", ms(s.at), s.cwnd, min(s.ssthresh, 1e6), s.pipe, s.sacked, s.lost,
			ms(s.srtt), ms(s.minRTT), ms(s.rto), s.state, s.acked, s.received, s.retx, s.timeouts, s.recovs)
	}
	w.Flush()
}
