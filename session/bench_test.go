package session

import (
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
)

// memTUN is an allocation-free TUN for benchmarks: Read hands out copies of one UDP packet
// (with a sequence number) until limit packets were read, Write counts what arrives.
type memTUN struct {
	tmpl    []byte
	limit   atomic.Int64 // packets Read may still produce
	seq     uint32
	written atomic.Int64
	closed  chan struct{}
	once    sync.Once
	batch   int
}

func newMemTUN(src, dst netip.Addr, size, batch int) *memTUN {
	return &memTUN{tmpl: udpPacket(src, dst, 0, size), closed: make(chan struct{}), batch: batch}
}

func (m *memTUN) File() *os.File { return nil }

func (m *memTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	for {
		select {
		case <-m.closed:
			return 0, os.ErrClosed
		default:
		}
		n := min(int(m.limit.Load()), len(bufs))
		if n > 0 {
			for i := 0; i < n; i++ {
				c := copy(bufs[i][offset:], m.tmpl)
				binary.BigEndian.PutUint32(bufs[i][offset+28:], m.seq)
				m.seq++
				sizes[i] = c
			}
			m.limit.Add(int64(-n))
			return n, nil
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (m *memTUN) Write(bufs [][]byte, offset int) (int, error) {
	m.written.Add(int64(len(bufs)))
	return 0, nil
}

func (m *memTUN) MTU() (int, error)          { return 1440, nil }
func (m *memTUN) Name() (string, error)      { return "mem", nil }
func (m *memTUN) Events() <-chan wgtun.Event { return nil }
func (m *memTUN) BatchSize() int             { return m.batch }
func (m *memTUN) Close() error               { m.once.Do(func() { close(m.closed) }); return nil }
func (m *memTUN) feed(n int)                 { m.limit.Add(int64(n)) }
func (m *memTUN) waitWritten(n int64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for m.written.Load() < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Microsecond)
	}
	return true
}

// feedWindowed lets the client's TUN produce n packets, keeping at most benchWindow of them
// unanswered (fed but not yet written by the server), as a transport's window would: an
// unresponsive flood would only measure the local queues' drops.
func feedWindowed(src, dst *memTUN, base int64, n int) {
	const benchWindow, chunk = 2048, 128
	for fed := 0; fed < n; {
		if int64(fed)-(dst.written.Load()-base) < benchWindow {
			k := min(chunk, n-fed)
			src.feed(k)
			fed += k
			continue
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// BenchmarkTwoEndpoints moves 1400-byte inner packets from a client to a server over two
// loopback paths (real sockets, real crypto, scheduler, reorder) and reports packets/s and
// allocations per packet. The TUN devices are in memory, so the kernel's TUN costs are not
// in it; scripts/bench-speed.sh measures the whole thing.
func BenchmarkTwoEndpoints(b *testing.B) { benchTwoEndpoints(b, crypto.Limits{}, rekeyConfig{}) }

// BenchmarkTwoEndpointsRekey is BenchmarkTwoEndpoints with a confidentiality limit of 2^18
// datagrams, so that the keys update every 2^17 datagrams during the run (key_updates/op
// says how often): the allocations per packet must stay 0.
func BenchmarkTwoEndpointsRekey(b *testing.B) {
	benchTwoEndpoints(b, crypto.Limits{Seal: 1 << 18}, rekeyConfig{overlapFloor: 20 * time.Millisecond})
}

func benchTwoEndpoints(b *testing.B, lim crypto.Limits, rekey rekeyConfig) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serverKey, clientKey := newKey(b), newKey(b)
	stun := newMemTUN(serverInner, clientInner, 1400, 64)
	ctun := newMemTUN(clientInner, serverInner, 1400, 64)
	sv, err := NewServer(ServerConfig{
		Identity:  serverKey,
		Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Peers:     []PeerConfig{{Name: "client", Key: clientKey.Public(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(clientInner, 32)}}},
		limits:    lim,
		rekey:     rekey,
	}, stun)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sv.Run(ctx) }()
	c, err := NewClient(ClientConfig{
		Identity: clientKey, ServerName: "server", ServerKey: serverKey.Public(),
		Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sv.Port())),
		Uplinks: []UplinkConfig{
			{Name: "a", Source: netip.MustParseAddr("127.0.0.1")},
			{Name: "b", Source: netip.MustParseAddr("127.0.0.2")},
		},
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
		limits:     lim,
		rekey:      rekey,
	}, ctun)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); c.Run(ctx) }()
	defer func() { cancel(); wg.Wait(); ctun.Close(); stun.Close() }()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if s := c.Session(); s != nil && len(s.Paths()) == 2 && s.Paths()[0].Usable && s.Paths()[1].Usable {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("paths did not come up")
		}
		time.Sleep(time.Millisecond)
	}
	// Warm up the rate estimates and pools.
	feedWindowed(ctun, stun, 0, 20000)
	if !stun.waitWritten(19000, 10*time.Second) {
		b.Fatalf("warm-up packets did not arrive: %d\nclient %+v\nserver %+v", stun.written.Load(), c.Snapshot(), sv.Snapshot())
	}
	time.Sleep(100 * time.Millisecond)
	base := stun.written.Load()
	updates := c.Session().Counters().KeyUpdates.Load()
	b.ReportAllocs()
	b.SetBytes(1400)
	b.ResetTimer()
	start := time.Now()
	feedWindowed(ctun, stun, base, b.N)
	stun.waitWritten(base+int64(b.N), 2*time.Second)
	elapsed := time.Since(start)
	b.StopTimer()
	got := stun.written.Load() - base
	b.ReportMetric(float64(got)/elapsed.Seconds(), "pkt/s")
	b.ReportMetric(100*(1-float64(got)/float64(b.N)), "loss%")
	if s := c.Session(); s != nil {
		b.ReportMetric(float64(s.Counters().KeyUpdates.Load()-updates)/float64(b.N), "key_updates/op")
	}
	_ = framing.Overhead
}
