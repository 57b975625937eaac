// Command btflood attacks a bondtun server for scripts/bench-flood.sh: a flood of TCP
// connections to the control port (slow-loris and garbage TLS), a flood of forged or
// replayed datagrams to a data port, and a capture of genuine datagrams to replay.
//
//	btflood handshakes -c HOST:PORT -sources FIRST-LAST -rate N -t DUR
//	btflood datagrams  -c HOST:PORT -bind ADDR -index N -paths 0,16 -rate N -size N -t DUR [-replay FILE]
//	btflood capture    -i DEV -port PORT -n N -t DUR -o FILE
//	btflood peers      -n N [-seed S] [-from I] [-net 10.64.0.0]
//	btflood sessions   -c HOST:PORT -server-key KEY -n N [-seed S] [-conc 16] [-t DUR]
//
// peers and sessions are not attacks: they are many genuine clients, for
// scripts/bench-scale.sh (sessions.go).
// Each prints one line "FLOODER kind=… key=value …" with what it did.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/path"
)

const usage = `usage:
  btflood handshakes -c HOST:PORT -sources FIRST-LAST [-rate 1000] [-t 10s]
  btflood datagrams  -c HOST:PORT [-bind ADDR] -index N [-paths 0,16] [-rate 100000] [-size 1200] [-t 10s] [-replay FILE]
  btflood capture    -i DEV [-port 7350] [-n 512] [-t 3s] -o FILE
  btflood peers      [-n 10000] [-seed bench] [-from 0] [-net 10.64.0.0]
  btflood sessions   -c HOST:PORT -server-key KEY [-n 10000] [-seed bench] [-conc 16] [-t 10s]`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "handshakes":
		err = runHandshakes(ctx, os.Args[2:])
	case "datagrams":
		err = runDatagrams(ctx, os.Args[2:])
	case "capture":
		err = runCapture(ctx, os.Args[2:])
	case "peers":
		err = runPeers(os.Args[2:])
	case "sessions":
		err = runSessions(ctx, os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "btflood:", err)
		os.Exit(1)
	}
}

// sourceRange parses "FIRST-LAST" (IPv4, same /24 or not) into the addresses between.
func sourceRange(s string) ([]netip.Addr, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return nil, fmt.Errorf("sources %q: want FIRST-LAST", s)
	}
	first, err := netip.ParseAddr(a)
	if err != nil {
		return nil, err
	}
	last, err := netip.ParseAddr(b)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for x := first; x.Compare(last) <= 0 && len(out) < 65536; x = x.Next() {
		out = append(out, x)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sources %q: empty range", s)
	}
	return out, nil
}

// pace calls fire(n) every millisecond with the number of events due at rate per second,
// until d has passed or ctx is done.
func pace(ctx context.Context, rate float64, d time.Duration, fire func(n int)) time.Duration {
	start := time.Now()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	done := 0.0
	for {
		select {
		case <-ctx.Done():
			return time.Since(start)
		case now := <-t.C:
			el := now.Sub(start)
			if el >= d {
				return el
			}
			due := el.Seconds()*rate - done
			if due >= 1 {
				fire(int(due))
				done += float64(int(due))
			}
		}
	}
}

func runHandshakes(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("handshakes", flag.ContinueOnError)
	target := fs.String("c", "", "server control address HOST:PORT")
	sources := fs.String("sources", "", "source addresses FIRST-LAST")
	rate := fs.Float64("rate", 1000, "connection attempts per second")
	dur := fs.Duration("t", 10*time.Second, "duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srcs, err := sourceRange(*sources)
	if err != nil {
		return err
	}
	var attempts, connected, dialErrs, held atomic.Int64
	var wg sync.WaitGroup
	inflight := make(chan struct{}, 4096) // bounds the goroutines
	k := 0
	el := pace(ctx, *rate, *dur, func(n int) {
		for range n {
			select {
			case inflight <- struct{}{}:
			default:
				continue // the attacker's own limit: never more than 4096 at once
			}
			src, slow := srcs[k%len(srcs)], k%2 == 0
			k++
			attempts.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-inflight }()
				d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: time.Second}
				c, err := d.DialContext(ctx, "tcp", *target)
				if err != nil {
					dialErrs.Add(1)
					return
				}
				defer c.Close()
				connected.Add(1)
				start := time.Now()
				c.SetDeadline(start.Add(5 * time.Second))
				if slow {
					c.Write([]byte{0x16, 0x03, 0x01, 0x40, 0x00}) // a 16 KiB handshake record, never sent
				} else {
					junk := make([]byte, 64)
					rand.Read(junk)
					c.Write(junk)
				}
				io.Copy(io.Discard, c) // until the server closes it (or 5 s)
				if time.Since(start) > time.Second {
					held.Add(1)
				}
			}()
		}
	})
	wg.Wait()
	fmt.Printf("FLOODER kind=handshakes secs=%.1f attempts=%d rate=%.0f connected=%d dial_errors=%d held_over_1s=%d sources=%d\n",
		el.Seconds(), attempts.Load(), float64(attempts.Load())/el.Seconds(), connected.Load(), dialErrs.Load(), held.Load(), len(srcs))
	return nil
}

// runDatagrams sends forged datagrams (and, with -replay, captured ones among them) to a
// data port at -rate for -t, and prints how many it sent.
func runDatagrams(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("datagrams", flag.ContinueOnError)
	target := fs.String("c", "", "server data address HOST:PORT")
	bind := fs.String("bind", "", "local address")
	index := fs.Uint("index", 0, "receiver index to put in the header")
	paths := fs.String("paths", "0", "comma-separated path ids")
	rate := fs.Float64("rate", 100000, "datagrams per second")
	size := fs.Int("size", 1200, "forged datagram size")
	replay := fs.String("replay", "", "file of captured datagrams (hex, one a line) to replay among the forgeries")
	dur := fs.Duration("t", 10*time.Second, "duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dst, err := netip.ParseAddrPort(*target)
	if err != nil {
		return err
	}
	ids, err := parsePathIDs(*paths)
	if err != nil {
		return err
	}
	captured, err := readCaptured(*replay)
	if err != nil {
		return err
	}
	conn, err := listenFrom(*bind)
	if err != nil {
		return err
	}
	defer conn.Close()
	f := &datagramFlood{conn: conn, dst: dst, forged: forgeDatagrams(ids, uint16(*index), *size),
		captured: captured, batch: make([][]byte, 0, 64)}
	el := pace(ctx, *rate, *dur, f.send)
	fmt.Printf("FLOODER kind=datagrams secs=%.1f sent=%d rate=%.0f replayed=%d send_errors=%d\n",
		el.Seconds(), f.sent, float64(f.sent)/el.Seconds(), f.replayed, f.errs)
	return nil
}

// parsePathIDs parses -paths, a comma-separated list of path ids.
func parsePathIDs(s string) ([]uint8, error) {
	var ids []uint8
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(f, 0, 8)
		if err != nil {
			return nil, fmt.Errorf("paths: %w", err)
		}
		ids = append(ids, uint8(v))
	}
	return ids, nil
}

// readCaptured reads the datagrams of file, hex one a line (runCapture's output); none
// if file is "".
func readCaptured(file string) ([][]byte, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var captured [][]byte
	for _, line := range strings.Fields(string(b)) {
		d, err := hex.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		captured = append(captured, d)
	}
	return captured, nil
}

// listenFrom opens the UDP socket the datagrams leave from: bound to address bind, or to
// any if bind is "".
func listenFrom(bind string) (*path.Conn, error) {
	opts := path.ListenOptions{}
	if bind != "" {
		a, err := netip.ParseAddr(bind)
		if err != nil {
			return nil, err
		}
		opts.Addr = netip.AddrPortFrom(a, 0)
	}
	return path.Listen(opts)
}

// forgeDatagrams builds 256 forged datagrams of size bytes (at least
// framing.MinDatagramLen): valid headers with the receiver index and the path ids in
// turn, random packet numbers and random sealed bytes (no tag can be right).
func forgeDatagrams(ids []uint8, index uint16, size int) [][]byte {
	forged := make([][]byte, 256)
	for i := range forged {
		d := make([]byte, max(size, framing.MinDatagramLen))
		rand.Read(d)
		var pn [8]byte
		rand.Read(pn[:])
		h := framing.Header{Type: framing.TypeData, PathID: ids[i%len(ids)], Receiver: index, PacketNumber: binary.BigEndian.Uint64(pn[:]) & framing.MaxPacketNumber}
		h.Put(d)
		forged[i] = d
	}
	return forged
}

// datagramFlood sends the forged datagrams in turn, every other one replaced by a
// captured one when there are any, in batches of up to cap(batch).
type datagramFlood struct {
	conn     *path.Conn
	dst      netip.AddrPort
	forged   [][]byte
	captured [][]byte
	batch    [][]byte
	k        int // datagrams queued so far

	sent, errs, replayed uint64
}

// send sends the next n datagrams; it is pace's fire.
func (f *datagramFlood) send(n int) {
	for range n {
		if len(f.captured) > 0 && f.k%2 == 1 {
			f.batch = append(f.batch, f.captured[(f.k/2)%len(f.captured)])
			f.replayed++
		} else {
			f.batch = append(f.batch, f.forged[f.k%len(f.forged)])
		}
		f.k++
		if len(f.batch) == cap(f.batch) {
			f.flush()
		}
	}
	f.flush()
}

// flush writes the batch, counting the datagrams sent and the failed writes.
func (f *datagramFlood) flush() {
	if len(f.batch) == 0 {
		return
	}
	n, err := f.conn.WriteBatch(f.batch, f.dst)
	f.sent += uint64(n)
	if err != nil {
		f.errs++
	}
	f.batch = f.batch[:0]
}

// runCapture records UDP payloads sent to port that arrive on device dev (an AF_PACKET
// socket: it must run in the receiver's network namespace), hex one a line.
func runCapture(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	dev := fs.String("i", "", "device")
	port := fs.Int("port", 7350, "UDP destination port")
	n := fs.Int("n", 512, "datagrams to keep")
	dur := fs.Duration("t", 3*time.Second, "longest capture")
	out := fs.String("o", "", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ifi, err := net.InterfaceByName(*dev)
	if err != nil {
		return err
	}
	proto := int(htons(unix.ETH_P_IP))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, proto)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
		return err
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	var lines []string
	buf := make([]byte, 65536)
	deadline := time.Now().Add(*dur)
	for len(lines) < *n && time.Now().Before(deadline) && ctx.Err() == nil {
		m, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		if payload, ok := udpPayload(buf[:m], *port); ok && len(payload) >= framing.MinDatagramLen {
			lines = append(lines, hex.EncodeToString(payload))
		}
	}
	if err := os.WriteFile(*out, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Printf("FLOODER kind=capture datagrams=%d\n", len(lines))
	return nil
}

// udpPayload returns the payload of pkt, an IPv4 packet, if it is UDP to port. It checks
// every length it uses: the header length field, the UDP header and UDP's own length.
func udpPayload(pkt []byte, port int) ([]byte, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != 17 {
		return nil, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl+8 || int(binary.BigEndian.Uint16(pkt[ihl+2:])) != port {
		return nil, false
	}
	ulen := int(binary.BigEndian.Uint16(pkt[ihl+4:]))
	if ulen < 8 || ihl+ulen > len(pkt) {
		return nil, false
	}
	return pkt[ihl+8 : ihl+ulen], true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
