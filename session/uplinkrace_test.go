package session

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/internal/memnet"
	"github.com/bondtun/bondtun/path"
)

// hookNet is a network that runs a test's function, once, at the next DialTCP or
// ListenPacket: what a reload would do at that moment, made to happen exactly there. It
// keeps the transports it opened.
type hookNet struct {
	path.Network
	mu               sync.Mutex
	onDial, onListen func()
	opened           []*watchedTransport
}

// watchedTransport notes the most ReadBatch calls in progress at once, and Close.
type watchedTransport struct {
	path.Transport
	readers, maxReaders atomic.Int32
	closed              atomic.Bool
}

func (t *watchedTransport) ReadBatch(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error) {
	n := t.readers.Add(1)
	defer t.readers.Add(-1)
	for m := t.maxReaders.Load(); n > m && !t.maxReaders.CompareAndSwap(m, n); m = t.maxReaders.Load() {
	}
	return t.Transport.ReadBatch(bufs, sizes, from)
}

func (t *watchedTransport) Close() error {
	t.closed.Store(true)
	return t.Transport.Close()
}

// last is the transport h opened last.
func (h *hookNet) last() *watchedTransport {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.opened[len(h.opened)-1]
}

func (h *hookNet) set(hook *func(), f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	*hook = f
}

func (h *hookNet) fire(hook *func()) {
	h.mu.Lock()
	f := *hook
	*hook = nil
	h.mu.Unlock()
	if f != nil {
		f()
	}
}

func (h *hookNet) DialTCP(ctx context.Context, device string, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	h.fire(&h.onDial)
	return h.Network.DialTCP(ctx, device, src, dst)
}

func (h *hookNet) ListenPacket(opts path.ListenOptions) (path.Transport, error) {
	h.fire(&h.onListen)
	t, err := h.Network.ListenPacket(opts)
	if err != nil {
		return nil, err
	}
	w := &watchedTransport{Transport: t}
	h.mu.Lock()
	h.opened = append(h.opened, w)
	h.mu.Unlock()
	return w, nil
}

// memPair is a message server and client (uplinks a and b, at simUplink(0) and (1)) on
// an in-memory network, the client's through hook. Neither Connect nor Run is called.
type memPair struct {
	net    *memnet.Network
	hook   *hookNet
	server *Server
	client *Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newMemPair(t *testing.T) *memPair {
	t.Helper()
	mp := &memPair{net: memnet.New(1)}
	mp.hook = &hookNet{Network: mp.net}
	mp.ctx, mp.cancel = context.WithCancel(context.Background())
	serverKey, clientKey := newKey(t), newKey(t)
	sv, err := NewMessageServer(ServerConfig{
		Identity:  serverKey,
		Port:      7350,
		Addresses: []netip.Addr{simS},
		Peers:     []PeerConfig{{Name: "client", Key: clientKey.Public()}},
		Network:   mp.net,
	}, simHandler{&simRecorder{}})
	if err != nil {
		t.Fatal(err)
	}
	mp.server = sv
	mp.wg.Add(1)
	go func() {
		defer mp.wg.Done()
		sv.Run(mp.ctx)
	}()
	cl, err := NewMessageClient(ClientConfig{
		Identity:   clientKey,
		ServerName: "server",
		ServerKey:  serverKey.Public(),
		Endpoint:   netip.AddrPortFrom(simS, 7350),
		Uplinks:    []UplinkConfig{{Name: "a", Source: simUplink(0)}, {Name: "b", Source: simUplink(1)}},
		Network:    mp.hook,
	}, &simRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	mp.client = cl
	t.Cleanup(func() {
		mp.cancel()
		mp.net.Close() // first: a BYE on a control connection no one reads fails at once
		mp.wg.Wait()
		mp.client.Close()
	})
	return mp
}

// run runs the client until the test ends.
func (mp *memPair) run() {
	mp.wg.Add(1)
	go func() {
		defer mp.wg.Done()
		mp.client.Run(mp.ctx)
	}()
}

// TestUplinkSlotKeptDuringHandshake: an uplink removed while the HELLO that lists it is on
// its way keeps its slot for that session; one added meanwhile gets another slot, so its
// paths carry its own name on both sides.
func TestUplinkSlotKeptDuringHandshake(t *testing.T) {
	mp := newMemPair(t)
	mp.hook.set(&mp.hook.onDial, func() { // HELLO, listing {0:a, 1:b}, is built
		if err := mp.client.RemoveUplink("b"); err != nil {
			t.Error(err)
		}
		if err := mp.client.AddUplink(UplinkConfig{Name: "x", Source: simUplink(2)}); err != nil {
			t.Error(err)
		}
	})
	if err := mp.client.Connect(mp.ctx); err != nil {
		t.Fatal(err)
	}
	cs := mp.client.Session()
	if b := pathsOf(cs, "b"); len(b) != 0 {
		t.Fatalf("the removed uplink b's paths are listed: %+v", b)
	}
	x := pathsOf(cs, "x")
	if len(x) != 1 || x[0].ID>>4 == 1 {
		t.Fatalf("uplink x's paths %+v: want one, not in b's slot 1", x)
	}
	mp.run()
	waitFor(t, "uplink x's path up on both sides, under its name", func() bool {
		ss := mp.server.Sessions()
		if len(ss) != 1 {
			return false
		}
		c, s := pathsOf(cs, "x"), pathsOf(ss[0], "x")
		return len(c) == 1 && c[0].State == "up" && len(s) == 1 && s[0].State == "up" && s[0].ID == c[0].ID
	})
}

// TestAddUplinkBeforeAndAfterRun: an uplink added before Run gets one receive loop, Run's
// (a socket allows one reader); one added after Run returned is refused and its socket
// closed.
func TestAddUplinkBeforeAndAfterRun(t *testing.T) {
	mp := newMemPair(t)
	if err := mp.client.AddUplink(UplinkConfig{Name: "x", Source: simUplink(2)}); err != nil {
		t.Fatal(err)
	}
	x := mp.hook.last()
	ctx, cancel := context.WithCancel(mp.ctx)
	done := make(chan error, 1)
	go func() { done <- mp.client.Run(ctx) }()
	waitFor(t, "uplink x's path up, its socket read", func() bool {
		s := mp.client.Session()
		if s == nil {
			return false
		}
		p := pathsOf(s, "x")
		return len(p) == 1 && p[0].State == "up" && x.readers.Load() > 0
	})
	if n := x.maxReaders.Load(); n != 1 {
		t.Fatalf("uplink x's socket had %d readers at once, want 1", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := mp.client.AddUplink(UplinkConfig{Name: "y", Source: simUplink(3)}); err == nil {
		t.Fatal("AddUplink after Run returned accepted an uplink")
	}
	if y := mp.hook.last(); y == x || !y.closed.Load() {
		t.Fatal("the socket of an uplink added after Run returned is open")
	}
}

// TestRebindAfterSlotReused: an address change of an uplink that is removed, and its slot
// given to another uplink (or to a new one of the same name), while the new socket opens,
// leaves the slot to the new uplink.
func TestRebindAfterSlotReused(t *testing.T) {
	mp := newMemPair(t)
	c := mp.client
	for _, replace := range []struct{ old, name string }{{"b", "x"}, {"x", "x"}} {
		var src netip.Addr
		mp.hook.set(&mp.hook.onListen, func() {
			if err := c.RemoveUplink(replace.old); err != nil {
				t.Error(err)
			}
			src = c.uplinkConfigs()[1].Source.Next()
			if err := c.AddUplink(UplinkConfig{Name: replace.name, Source: src}); err != nil {
				t.Error(err)
			}
		})
		if err := c.rebind(1, netip.MustParseAddr("10.0.9.2")); err == nil {
			t.Errorf("%s replaced by %s: rebind of the old one succeeded", replace.old, replace.name)
		}
		c.mu.Lock()
		u, conn := c.cfg.Uplinks[1], c.uplinks[1]
		c.mu.Unlock()
		if u.Name != replace.name || u.Source != src || conn.LocalAddr().Addr() != src {
			t.Fatalf("%s replaced by %s: slot 1 is %s at %v with a socket at %v, want %s at %v", replace.old, replace.name, u.Name, u.Source, conn.LocalAddr(), replace.name, src)
		}
	}
}

// TestUplinksSendFailureResumes: an UPLINKS that cannot be sent (the control connection
// no longer writes) makes the client resume the channel at once, not at the next
// KEEPALIVE, 10 s later; the resume's UPLINKS then adds the new uplink at the server.
func TestUplinksSendFailureResumes(t *testing.T) {
	mp := newMemPair(t)
	if err := mp.client.Connect(mp.ctx); err != nil {
		t.Fatal(err)
	}
	mp.run()
	cs := mp.client.Session()
	waitFor(t, "both paths up", func() bool { return cs.usablePaths() == 2 })
	old := cs.ctrl.Load()
	old.SetWriteDeadline(longAgo) // a TLS connection whose write failed writes no more
	if err := old.send(framing.CtrlKeepalive, nil); err == nil {
		t.Fatal("a write past its deadline succeeded")
	}
	if err := mp.client.AddUplink(UplinkConfig{Name: "x", Source: simUplink(2)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the control channel resumed and uplink x's path up at the server", func() bool {
		ss := mp.server.Sessions()
		if cs.ctrl.Load() == old || len(ss) != 1 {
			return false
		}
		x := pathsOf(ss[0], "x")
		return len(x) == 1 && x[0].State == "up"
	})
	if mp.client.Session() != cs {
		t.Fatal("the session was replaced")
	}
}

// syncBuffer is a log's output, read while the nodes write it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestBadUplinksAnsweredWithError: an UPLINKS that does not parse is a framing error; the
// server answers ERROR and closes the connection (docs/PROTOCOL.md §1), and the client,
// told why, resumes the channel of the same session.
func TestBadUplinksAnsweredWithError(t *testing.T) {
	mp := newMemPair(t)
	var log syncBuffer
	mp.client.log = slog.New(slog.NewTextHandler(&log, nil))
	if err := mp.client.Connect(mp.ctx); err != nil {
		t.Fatal(err)
	}
	mp.run()
	cs := mp.client.Session()
	waitFor(t, "both paths up", func() bool { return cs.usablePaths() == 2 })
	ss := mp.server.Sessions()[0]
	old := cs.ctrl.Load()
	if err := old.send(framing.CtrlUplinks, []byte{0}); err != nil { // no uplinks: a bad count
		t.Fatal(err)
	}
	waitFor(t, "the client told of the error and its channel resumed", func() bool {
		return strings.Contains(log.String(), "peer error: bad UPLINKS") && cs.ctrl.Load() != old
	})
	if mp.client.Session() != cs || len(mp.server.Sessions()) != 1 || mp.server.Sessions()[0] != ss {
		t.Fatal("the session was replaced")
	}
}
