package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/session"
)

// Many configured clients, for scripts/bench-scale.sh: `peers` prints the peers section of
// a server with n of them, and `sessions` opens sessions with their keys, as fast as the
// server takes them. Key i is derived from the seed (benchKey), so the two agree without
// a file of 10 000 private keys.

// benchKey is the private key of peer i of seed: its seed is SHA-256("seed/i").
func benchKey(seed string, i int) (crypto.PrivateKey, error) {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", seed, i)))
	return crypto.ParsePrivateKey(base64.StdEncoding.EncodeToString(sum[:]))
}

// benchAddr is peer i's inner address: base + 1 + i.
func benchAddr(base netip.Addr, i int) netip.Addr {
	a := base.As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(i) + 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// runPeers prints "peers:" and n peers from index -from on, named p and the index in six
// digits (p000000…), each with one /32 counted up from -net (benchAddr).
func runPeers(args []string) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	n := fs.Int("n", 10000, "number of peers")
	seed := fs.String("seed", "bench", "key seed")
	from := fs.Int("from", 0, "first peer index")
	base := fs.String("net", "10.64.0.0", "IPv4 address the peers' /32s count up from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := netip.ParseAddr(*base)
	if err != nil || !b.Is4() {
		return fmt.Errorf("net %q: want an IPv4 address", *base)
	}
	fmt.Println("peers:")
	for i := *from; i < *from+*n; i++ {
		k, err := benchKey(*seed, i)
		if err != nil {
			return err
		}
		fmt.Printf("  - name: p%06d\n    public_key: %q\n    allowed_ips: [%s/32]\n", i, k.Public().String(), benchAddr(b, i))
	}
	return nil
}

// runSessions opens sessions (TLS, HELLO, WELCOME, then BYE) with the keys of peers
// 0..n-1 in turn from -conc connections at once for -t, and prints how many completed.
func runSessions(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sessions", flag.ContinueOnError)
	target := fs.String("c", "", "server control address HOST:PORT")
	serverKey := fs.String("server-key", "", "the server's public key")
	n := fs.Int("n", 10000, "keys to use (peers 0..n-1 of the seed)")
	seed := fs.String("seed", "bench", "key seed")
	conc := fs.Int("conc", 16, "handshakes in progress at once")
	dur := fs.Duration("t", 10*time.Second, "duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	spk, err := crypto.ParsePublicKey(*serverKey)
	if err != nil {
		return fmt.Errorf("server-key: %w", err)
	}
	// The client's certificates are made before the clock starts: the measurement is of
	// handshakes, not of this tool's key generation.
	cfgs, err := clientConfigs(*seed, *n, spk)
	if err != nil {
		return err
	}
	f := &sessionFlood{target: *target, cfgs: cfgs, errKinds: map[string]int{}}
	if f.hello, err = helloMessage(); err != nil {
		return err
	}
	f.bye = framing.AppendCtrl(nil, framing.CtrlBye, nil)
	if err := f.warmUp(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	start := time.Now()
	f.run(ctx, *conc)
	f.report(time.Since(start), *conc)
	return nil
}

// clientConfigs is the client TLS configuration of each of peers 0..n-1 of seed, for a
// server of public key spk.
func clientConfigs(seed string, n int, spk crypto.PublicKey) ([]*tls.Config, error) {
	cfgs := make([]*tls.Config, n)
	for i := range cfgs {
		k, err := benchKey(seed, i)
		if err != nil {
			return nil, err
		}
		if cfgs[i], err = crypto.ClientTLSConfig(k, spk); err != nil {
			return nil, err
		}
	}
	return cfgs, nil
}

// helloMessage is the HELLO control message every session sends: one uplink, and the
// ciphers this build prefers.
func helloMessage() ([]byte, error) {
	hello := framing.Hello{Version: session.ProtocolVersion, ReceiverIndex: 1,
		Uplinks: []framing.UplinkInfo{{ID: 0, Name: "bench"}}}
	for _, c := range crypto.PreferredCiphers() {
		hello.Ciphers = append(hello.Ciphers, uint8(c))
	}
	body, err := hello.Append(nil)
	if err != nil {
		return nil, err
	}
	return framing.AppendCtrl(nil, framing.CtrlHello, body), nil
}

// sessionFlood is one run of `sessions`: what each session sends, and the counts of
// those that completed and failed.
type sessionFlood struct {
	target     string
	cfgs       []*tls.Config // one per key, used in turn
	hello, bye []byte        // the HELLO and BYE control messages

	next, done, failed atomic.Int64
	firstErr           atomic.Value
	errMu              sync.Mutex
	errKinds           map[string]int // failures by error text, addresses and ports masked
}

// warmUp opens one session first, before the clock: it makes this source address one the
// server has seen authenticate (session/admit.go), as every real client's is after its
// first handshake; until then the per-source limits for strangers would refuse most of
// the connections this tool opens from one address. It tries for 5 s.
func (f *sessionFlood) warmUp(ctx context.Context) error {
	var buf [framing.MaxCtrlBody]byte
	warm := time.Now()
	for {
		err := oneSession(ctx, f.target, f.cfgs[0], f.hello, f.bye, buf[:])
		if err == nil {
			return nil
		}
		if time.Since(warm) > 5*time.Second || ctx.Err() != nil {
			return fmt.Errorf("first session: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run opens sessions from conc goroutines at once until ctx is done.
func (f *sessionFlood) run(ctx context.Context, conc int) {
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.worker(ctx)
		}()
	}
	wg.Wait()
}

// worker opens one session after another, each with the next key, until ctx is done,
// and counts how each ended; a failure after ctx is done is not counted.
func (f *sessionFlood) worker(ctx context.Context) {
	var buf [framing.MaxCtrlBody]byte
	for ctx.Err() == nil {
		i := int(f.next.Add(1)-1) % len(f.cfgs)
		err := oneSession(ctx, f.target, f.cfgs[i], f.hello, f.bye, buf[:])
		switch {
		case err == nil:
			f.done.Add(1)
		case ctx.Err() != nil:
		default:
			f.failed.Add(1)
			f.firstErr.CompareAndSwap(nil, err.Error())
			f.errMu.Lock()
			f.errKinds[errKind(err)]++
			f.errMu.Unlock()
		}
	}
}

// report prints the FLOODER lines of a run that took el: the counts, the first error,
// and the failures by kind.
func (f *sessionFlood) report(el time.Duration, conc int) {
	fmt.Printf("FLOODER kind=sessions secs=%.1f completed=%d rate=%.0f failed=%d keys=%d conc=%d\n",
		el.Seconds(), f.done.Load(), float64(f.done.Load())/el.Seconds(), f.failed.Load(), min(len(f.cfgs), int(f.next.Load())), conc)
	if e := f.firstErr.Load(); e != nil {
		fmt.Printf("FLOODER first_error=%q\n", e)
	}
	for k, c := range f.errKinds {
		fmt.Printf("FLOODER errors=%d kind=%q\n", c, k)
	}
}

// errKind is err's text with its addresses and ports masked, so that failures of one kind
// count together.
func errKind(err error) string {
	return addrPort.ReplaceAllString(err.Error(), "ADDR")
}

var addrPort = regexp.MustCompile(`[0-9a-f.:\[\]]*[0-9]+:[0-9]+`)

// oneSession runs one client handshake to WELCOME and ends the session with BYE.
func oneSession(ctx context.Context, target string, cfg *tls.Config, hello, bye, buf []byte) error {
	d := net.Dialer{Timeout: 3 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	if _, err := tc.Write(hello); err != nil {
		return err
	}
	t, _, err := framing.ReadCtrl(tc, buf)
	if err != nil {
		return fmt.Errorf("read WELCOME: %w", err)
	}
	if t != framing.CtrlWelcome {
		return errors.New("no WELCOME: control message " + fmt.Sprint(t))
	}
	if _, err := tc.Write(bye); err != nil {
		return err
	}
	// The server closes on BYE; closing second leaves TIME_WAIT on its side, not on this
	// one's: otherwise this tool's ports (one source address, ~28 000 ports, 60 s each)
	// would cap it near 470 sessions per second.
	_, err = io.Copy(io.Discard, tc)
	return err
}
