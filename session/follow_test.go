package session

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bondtun/bondtun/internal/memnet"
	"github.com/bondtun/bondtun/internal/timerq"
)

// holeNet is a memnet network on which an address can be made a black hole for the
// client's control connections: a dial to it hangs until its context ends, and an open
// connection to it swallows what is written and drops what arrives, as TCP to a host
// that vanished from the network does, until its idle timeout.
type holeNet struct {
	*memnet.Network
	mu    sync.Mutex
	holes map[netip.Addr]bool
}

func (h *holeNet) holed(a netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.holes[a]
}

func (h *holeNet) DialTCP(ctx context.Context, device string, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	if h.holed(dst.Addr()) {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
	}
	c, err := h.Network.DialTCP(ctx, device, src, dst)
	if err != nil {
		return nil, err
	}
	return &holeConn{Conn: c, h: h, dst: dst.Addr()}, nil
}

type holeConn struct {
	net.Conn
	h   *holeNet
	dst netip.Addr
}

func (c *holeConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if err != nil || !c.h.holed(c.dst) {
			return n, err
		}
	}
}

func (c *holeConn) Write(b []byte) (int, error) {
	if c.h.holed(c.dst) {
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// followSim is a message client with two uplinks whose server is named by a name that
// resolves to answer: one server at simS, another (same key) at simS2.
type followSim struct {
	net    *memnet.Network
	hole   *holeNet
	tq     *timerq.Queue
	client *Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	answer  netip.Addr
	resolve []time.Time // when the client asked the name
}

var simS2 = netip.MustParseAddr("10.0.0.9")

// newFollowSim starts both servers and the client, resolving to simS, and waits until the
// client's session to simS has both paths usable. It must run inside a synctest bubble.
func newFollowSim(t *testing.T) *followSim {
	t.Helper()
	n := memnet.New(7)
	f := &followSim{net: n, hole: &holeNet{Network: n, holes: map[netip.Addr]bool{}},
		tq: timerq.New(timerq.Config{}), answer: simS}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	serverKey, clientKey := newKey(t), newKey(t)
	var uplinks []UplinkConfig
	for i, l := range []memnet.LinkConfig{cable(), dsl()} {
		for _, s := range []netip.Addr{simS, simS2} {
			n.SetLink(simUplink(i), s, l)
			n.SetLink(s, simUplink(i), l)
		}
		uplinks = append(uplinks, UplinkConfig{Name: string(rune('a' + i)), Source: simUplink(i)})
	}
	for _, addr := range []netip.Addr{simS, simS2} {
		sv, err := NewMessageServer(ServerConfig{
			Identity:  serverKey,
			Port:      7350,
			Addresses: []netip.Addr{addr},
			Peers:     []PeerConfig{{Name: "client", Key: clientKey.Public()}},
			Network:   n,
			Timers:    f.tq,
		}, simHandler{&simRecorder{}})
		if err != nil {
			t.Fatal(err)
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			sv.Run(ctx)
		}()
	}
	cl, err := NewMessageClient(ClientConfig{
		Identity:   clientKey,
		ServerName: "server",
		ServerKey:  serverKey.Public(),
		Uplinks:    uplinks,
		Network:    f.hole,
		Timers:     f.tq,
		ResolveEndpoint: func(context.Context) (netip.AddrPort, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.resolve = append(f.resolve, time.Now())
			return netip.AddrPortFrom(f.answer, 7350), nil
		},
		jitter: func() float64 { return 0.5 }, // the schedule without its jitter: 1 s, 2 s, 4 s
	}, &simRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	f.client = cl
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		cl.Run(ctx)
	}()
	if s := f.waitSession(t, nil, simS, 2*time.Second); s == nil {
		t.Fatal("no session to the first server with both paths up in 2 s")
	}
	return f
}

// waitSession waits up to d for a current session other than not whose paths both go to
// addr and are usable, and returns it (nil if none came).
func (f *followSim) waitSession(t *testing.T, not *Session, addr netip.Addr, d time.Duration) *Session {
	t.Helper()
	for start := time.Now(); time.Since(start) < d; time.Sleep(10 * time.Millisecond) {
		s := f.client.Session()
		if s == nil || s == not || s.usablePaths() != 2 {
			continue
		}
		to := true
		for _, p := range s.pathList() {
			to = to && p.remote.Addr() == addr
		}
		if to {
			return s
		}
	}
	return nil
}

// cutUDP makes the links between the client's uplinks and addr drop every datagram (down)
// or carry them again.
func (f *followSim) cutUDP(addr netip.Addr, down bool) {
	for i, l := range []memnet.LinkConfig{cable(), dsl()} {
		l.Down = down
		f.net.SetLink(simUplink(i), addr, l)
		f.net.SetLink(addr, simUplink(i), l)
	}
}

// resolvesSince returns when the name was asked at or after t, as offsets from t.
func (f *followSim) resolvesSince(t time.Time) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for _, at := range f.resolve {
		if !at.Before(t) {
			out = append(out, at.Sub(t))
		}
	}
	return out
}

func (f *followSim) stop() {
	f.cancel()
	f.net.Close() // first: a BYE on a control connection no one reads fails at once
	f.wg.Wait()
	f.tq.Close()
}

// TestFollowMovedServerName: the server's host vanishes (its datagrams and its control
// connection go unanswered, as when it is renumbered) and its name now resolves to another
// server. Once every path has failed (≈ 1 s), the client resolves the name, sees the new
// address and opens a session there within a few seconds, instead of after the control
// channel's idle timeout (30 s) as before. On a fake clock (synctest): deterministic.
func TestFollowMovedServerName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFollowSim(t)
		defer f.stop()
		old := f.client.Session()
		f.mu.Lock()
		f.answer = simS2
		f.mu.Unlock()
		f.hole.mu.Lock()
		f.hole.holes[simS] = true
		f.hole.mu.Unlock()
		cut := time.Now()
		f.cutUDP(simS, true)
		s := f.waitSession(t, old, simS2, 10*time.Second)
		took := time.Since(cut)
		asked := f.resolvesSince(cut)
		t.Logf("new session to %v with both paths up %v after the cut; name asked at %v", simS2, took, asked)
		if s == nil {
			t.Fatalf("no session to the server's new address %v within 10 s of the cut (the control channel's idle timeout is %v)", simS2, controlIdleTimeout)
		}
		if took > 4*time.Second {
			t.Errorf("the client followed the name %v after the cut, want within 4 s", took)
		}
		// Asked once when every path had failed (not before: ≥ the dead threshold), and once
		// by the new session's connect.
		if len(asked) != 2 || asked[0] < time.Second {
			t.Errorf("name asked at %v after the cut, want twice, the first once the paths are dead (≥ 1 s)", asked)
		}
		if f.client.config().Endpoint != netip.AddrPortFrom(simS2, 7350) {
			t.Errorf("client endpoint %v, want %v:7350", f.client.config().Endpoint, simS2)
		}
	})
}

// TestFollowNameUnchanged: every path fails but the name still resolves to the session's
// address. The client keeps its session, asks the name on the retry schedule (at once,
// then 1 s, 2 s, 4 s, 4 s later) while the paths stay dead, and once they answer again
// the same session carries on.
func TestFollowNameUnchanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFollowSim(t)
		defer f.stop()
		s := f.client.Session()
		cut := time.Now()
		f.cutUDP(simS, true)
		time.Sleep(13 * time.Second)
		asked := f.resolvesSince(cut)
		t.Logf("name asked at %v after the cut", asked)
		f.cutUDP(simS, false)
		if again := f.waitSession(t, nil, simS, 5*time.Second); again != s {
			t.Fatalf("after the paths came back the session is %p, want the same one %p", again, s)
		}
		if len(asked) != 5 || asked[0] < time.Second || asked[0] > 2*time.Second {
			t.Fatalf("name asked at %v after the cut, want 5 times from when the paths died (1–2 s)", asked)
		}
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
			if d := asked[i+1] - asked[i]; d < want || d > want+300*time.Millisecond {
				t.Errorf("resolve %d came %v after the one before, want %v", i+1, d, want)
			}
		}
		if n := len(f.resolvesSince(cut)); n != len(asked) {
			t.Errorf("the name was asked %d more times after the paths came back", n-len(asked))
		}
	})
}
