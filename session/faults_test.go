package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/liveness"
)

func TestBackoffSchedule(t *testing.T) {
	for _, tc := range []struct {
		float  float64
		factor float64
	}{{0, 0.8}, {0.5, 1}, {0.999999, 1.2}} {
		b := newBackoff(func() float64 { return tc.float })
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
		for i, w := range want {
			got := b.wait()
			exp := time.Duration(float64(w) * tc.factor)
			if d := got - exp; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("float %v: wait %d = %v, want %v", tc.float, i, got, exp)
			}
		}
		b.reset()
		if got, exp := b.wait(), time.Duration(float64(time.Second)*tc.factor); got-exp < -time.Millisecond || got-exp > time.Millisecond {
			t.Errorf("float %v: after reset, wait = %v, want %v", tc.float, got, exp)
		}
	}
	// The real source stays within the bounds.
	b := newBackoff(nil)
	for range 1000 {
		b.reset()
		if d := b.wait(); d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("jittered first wait %v, want within 1 s ± 20 %%", d)
		}
	}
}

// ctlProxy stands between the client and the server's control port: while refusing it
// accepts and closes each connection at once, as a server does whose handshake slots are
// full (admit.go); otherwise it forwards the connection to the server.
type ctlProxy struct {
	ln       net.Listener
	to       string
	refusing atomic.Bool
	refused  atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
}

func newCtlProxy(t *testing.T, to string) *ctlProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ctlProxy{ln: ln, to: to}
	p.refusing.Store(true)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *ctlProxy) addr() netip.AddrPort { return p.ln.Addr().(*net.TCPAddr).AddrPort() }

func (p *ctlProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refusing.Load() {
			p.refused.Add(1)
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.to)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() { io.Copy(c, s); c.Close() }()
	}
}

// forwarding reports whether a connection is being forwarded.
func (p *ctlProxy) forwarding() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) > 0
}

// cut closes every forwarded connection: the control channel breaks, the data paths not.
func (p *ctlProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// waitRecorder is an injected retry wait: it records each wait and returns at once (after
// a short real pause, so the retry loop does not spin).
type waitRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
	onN   map[int]func() // called when the n-th wait (1-based) is recorded
}

func (w *waitRecorder) sleep(ctx context.Context, d time.Duration) bool {
	w.mu.Lock()
	w.waits = append(w.waits, d)
	f := w.onN[len(w.waits)]
	w.mu.Unlock()
	if f != nil {
		f()
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(5 * time.Millisecond):
		return true
	}
}

func (w *waitRecorder) recorded() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.waits...)
}

// TestRunWaitsOutClosedHandshakes: a server that closes the connection during the TLS
// handshake is a transient fault. Run (without Connect) retries on the capped, jittered
// schedule until the server lets it in; later, a control channel broken while the data
// paths work is resumed, retrying the same way from the start of the schedule (it was
// reset by the session), and the session is kept.
func TestRunWaitsOutClosedHandshakes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tp := &testPair{cancel: cancel}
	defer tp.stop()
	tp.clientKey = newKey(t)
	startServer(t, ctx, tp, tp.clientKey.Public())
	proxy := newCtlProxy(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(tp.server.Port())))

	// A single connect attempt through a closing server is not a rejection.
	cl := faultClient(t, tp, proxy.addr(), nil)
	if err := cl.Connect(ctx); err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "closed the connection") {
		t.Fatalf("Connect through a closing server = %v, want a transient error saying the server closed the connection", err)
	}
	cl.Close()

	rec := &waitRecorder{onN: map[int]func(){5: func() { proxy.refusing.Store(false) }}}
	tp.client = faultClient(t, tp, proxy.addr(), rec)
	var changes []bool
	var chMu sync.Mutex
	tp.client.cfg.OnSessionChange = func(up bool) { chMu.Lock(); changes = append(changes, up); chMu.Unlock() }
	runErr := make(chan error, 1)
	go func() { runErr <- tp.client.Run(ctx) }()
	waitFor(t, "a session through the proxy", func() bool { return tp.client.Session() != nil })
	s := tp.client.Session()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	if got := rec.recorded(); !equalScaled(got, want, 1.1) {
		t.Fatalf("waits before the session: %v, want %v × 1.1 (jitter source fixed at 0.75)", got, want)
	}
	if n := proxy.refused.Load(); n < 5 {
		t.Fatalf("the proxy closed %d connections, want ≥ 5", n)
	}
	waitFor(t, "a usable path", func() bool { return tp.client.hasUsablePath(s) })
	ping := tuntest.Ping(serverInner, clientInner)
	tp.clientTUN.Outbound <- ping
	recvPacket(t, tp.fromServerTUN)

	// Break the control channel while the server closes new connections: the client keeps
	// its session and retries the resume from the schedule's start.
	proxy.refusing.Store(true)
	before := len(rec.recorded())
	rec.mu.Lock()
	rec.onN[before+2] = func() { proxy.refusing.Store(false) }
	rec.mu.Unlock()
	proxy.cut()
	waitFor(t, "the resume to be retried twice", func() bool { return len(rec.recorded()) >= before+2 })
	waitFor(t, "the control channel resumed", func() bool {
		return tp.client.Session() == s && proxy.forwarding()
	})
	if got := rec.recorded()[before:]; !equalScaled(got[:2], want[:2], 1.1) {
		t.Fatalf("waits of the resume: %v, want %v × 1.1 (the schedule starts again after a session)", got, want[:2])
	}
	waitFor(t, "a usable path", func() bool { return tp.client.hasUsablePath(s) })
	tp.clientTUN.Outbound <- ping
	recvPacket(t, tp.fromServerTUN)
	if tp.client.Session() != s {
		t.Fatal("the client replaced its session instead of resuming it")
	}
	select {
	case err := <-runErr:
		t.Fatalf("Run returned %v", err)
	default:
	}
	chMu.Lock()
	if len(changes) != 1 || !changes[0] {
		t.Errorf("OnSessionChange calls %v, want [true] (no session at the start is not a change)", changes)
	}
	chMu.Unlock()
}

// equalScaled reports whether got[i] is want[i]×f within a millisecond.
func equalScaled(got, want []time.Duration, f float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if d := got[i] - time.Duration(float64(want[i])*f); d < -time.Millisecond || d > time.Millisecond {
			return false
		}
	}
	return true
}

// faultClient is a client of tp's server at ep with one loopback uplink, whose retry
// schedule uses a fixed jitter (×1.1) and rec's wait.
func faultClient(t *testing.T, tp *testPair, ep netip.AddrPort, rec *waitRecorder) *Client {
	t.Helper()
	tp.clientTUN = tuntest.NewChannelTUN()
	tp.fromClientTUN = drain(tp.clientTUN.Inbound)
	cfg := ClientConfig{
		Identity:   tp.clientKey,
		ServerName: "server",
		ServerKey:  tp.serverKey.Public(),
		Endpoint:   ep,
		Uplinks:    []UplinkConfig{{Name: "a", Source: netip.MustParseAddr("127.0.0.1")}},
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
		jitter:     func() float64 { return 0.75 },
	}
	if rec != nil {
		cfg.sleep = rec.sleep
	}
	c, err := NewClient(cfg, tp.clientTUN.TUN())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRunEndsOnAuthenticatedRefusal: a server with another key than the pinned one, and a
// server that refuses this client's key, end Run at once with an error that says which.
func TestRunEndsOnAuthenticatedRefusal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		wrongPin  bool
		wantInErr string
	}{
		{"wrong server key", true, "the server's key is not the configured one"},
		{"client key refused", false, "the server refused this client's key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			tp := &testPair{cancel: cancel}
			defer tp.stop()
			tp.clientKey = newKey(t)
			allowed := tp.clientKey.Public()
			if !tc.wrongPin {
				allowed = newKey(t).Public()
			}
			startServer(t, ctx, tp, allowed)
			rec := &waitRecorder{}
			c := faultClient(t, tp, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(tp.server.Port())), rec)
			if tc.wrongPin {
				c.cfg.ServerKey = newKey(t).Public()
			}
			err := runToEnd(t, ctx, c, "Run did not end on an authenticated refusal")
			if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Fatalf("Run = %v, want ErrRefused saying %q", err, tc.wantInErr)
			}
			if n := len(rec.recorded()); n != 0 {
				t.Fatalf("Run retried %d times before giving up", n)
			}
		})
	}
}

// TestUplinkAbsentAtStart: an uplink whose interface is missing does not stop the client;
// its paths exist (the server has them from HELLO) but stay Down until it appears.
func TestUplinkAbsentAtStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tp := &testPair{cancel: cancel}
	defer tp.stop()
	tp.clientKey = newKey(t)
	startServer(t, ctx, tp, tp.clientKey.Public())
	tp.clientTUN = tuntest.NewChannelTUN()
	tp.fromClientTUN = drain(tp.clientTUN.Inbound)
	c, err := NewClient(ClientConfig{
		Identity:  tp.clientKey,
		ServerKey: tp.serverKey.Public(),
		Endpoint:  netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(tp.server.Port())),
		Uplinks: []UplinkConfig{
			{Name: "a", Source: netip.MustParseAddr("127.0.0.1")},
			{Name: "late", Device: "bt-absent-up9", FollowAddress: true}, // no such interface, no address
			{Name: "gone", Device: "bt-absent-up8", Source: netip.MustParseAddr("127.0.0.3")},
		},
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
	}, tp.clientTUN.TUN())
	if err != nil {
		t.Fatalf("NewClient with absent uplinks: %v", err)
	}
	tp.client = c
	if c.isBound(1) || c.isBound(2) || !c.isBound(0) {
		t.Fatalf("bound = %v, want only uplink 0", c.bound[:3])
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	tp.wg.Add(1)
	go func() { defer tp.wg.Done(); c.Run(ctx) }()
	s := c.Session()
	down := 0
	for _, p := range s.pathList() {
		p.mu.Lock()
		if ui := p.id >> 4; ui != 0 {
			if p.live.State() != liveness.Down {
				t.Errorf("path %s of an absent uplink is %v, want down", p.name, p.live.State())
			}
			down++
		}
		p.mu.Unlock()
	}
	if down != 2 {
		t.Fatalf("%d paths on the absent uplinks, want 2", down)
	}
	waitFor(t, "a usable path", func() bool { return c.hasUsablePath(s) })
	ping := tuntest.Ping(serverInner, clientInner)
	tp.clientTUN.Outbound <- ping
	recvPacket(t, tp.fromServerTUN)
}

// versionServer is a server with the pinned key that answers every HELLO as a bondtun of
// another protocol version would: with answer's message.
func versionServer(t *testing.T, serverKey crypto.PrivateKey, clientPub crypto.PublicKey, answer func(h framing.Hello) (framing.CtrlType, []byte)) netip.AddrPort {
	t.Helper()
	tlsCfg, err := crypto.ServerTLSConfig(serverKey, crypto.AuthorizeKeys(clientPub))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer raw.Close()
				raw.SetDeadline(time.Now().Add(5 * time.Second))
				tc := tls.Server(raw, tlsCfg)
				if tc.Handshake() != nil {
					return
				}
				c := &ctrlConn{Conn: tc}
				mt, msg, err := c.recv()
				if err != nil || mt != framing.CtrlHello {
					return
				}
				h, err := framing.ParseHello(msg)
				if err != nil {
					return
				}
				typ, body := answer(h)
				c.send(typ, body)
				io.Copy(io.Discard, c) // until the client closes
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// TestRunEndsOnIncompatibleVersion: a server with the pinned key that speaks another
// protocol version, whether it refuses our HELLO with ERROR (as parseHello does) or
// answers WELCOME of its own version, ends Run at once, with an error that names the
// versions: an authenticated refusal (ErrRefused: `up` exits 3), not a fault to wait out.
func TestRunEndsOnIncompatibleVersion(t *testing.T) {
	const theirs = ProtocolVersion + 1
	for _, tc := range []struct {
		name   string
		answer func(h framing.Hello) (framing.CtrlType, []byte)
		want   string
	}{
		{"server refuses our version", func(h framing.Hello) (framing.CtrlType, []byte) {
			return framing.CtrlError, fmt.Appendf(nil, "client speaks protocol version %d, server speaks %d", h.Version, theirs)
		}, fmt.Sprintf("refused by server: client speaks protocol version %d, server speaks %d", ProtocolVersion, theirs)},
		{"server answers in its version", func(h framing.Hello) (framing.CtrlType, []byte) {
			// A WELCOME of ours with the version byte changed: framing encodes only its own.
			w := framing.Welcome{Version: ProtocolVersion, Cipher: h.Ciphers[0], ReceiverIndex: 1,
				Addrs: []framing.ServerAddr{{ID: 0, AddrPort: netip.MustParseAddrPort("127.0.0.1:7350")}}}
			body, err := w.Append(nil)
			if err != nil {
				panic(err)
			}
			body[len(framing.Magic)] = theirs
			return framing.CtrlWelcome, body
		}, fmt.Sprintf("incompatible server: it speaks protocol version %d, we speak %d", theirs, ProtocolVersion)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tp := &testPair{cancel: cancel, clientKey: newKey(t), serverKey: newKey(t)}
			ep := versionServer(t, tp.serverKey, tp.clientKey.Public(), tc.answer)
			rec := &waitRecorder{}
			c := faultClient(t, tp, ep, rec)
			defer tp.clientTUN.TUN().Close()
			err := runToEnd(t, ctx, c, "Run did not end on an incompatible protocol version")
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want ErrRefused saying %q", err, tc.want)
			}
			if n := len(rec.recorded()); n != 0 {
				t.Fatalf("Run retried %d times before giving up", n)
			}
		})
	}
}

// runToEnd runs c until Run returns, within 5 s (else fails with what), and returns its error.
func runToEnd(t *testing.T, ctx context.Context, c *Client, what string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal(what)
		return nil
	}
}
