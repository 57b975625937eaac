package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/bondtun/bondtun/internal/perf"
)

const (
	// udpSettle is how long the client waits after its last datagram before
	// asking for the report, so datagrams still held in a reorder buffer or
	// queue are counted instead of reported lost.
	udpSettle = 300 * time.Millisecond
	// udpFinRetry and udpFinTries bound the wait for the server's report.
	udpFinRetry = 500 * time.Millisecond
	udpFinTries = 10
)

func runUDPServer(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("udp-server", flag.ContinueOnError)
	addr := fs.String("l", ":5201", "listen `ADDR:PORT`")
	once := fs.Bool("once", false, "exit after answering the first test's end")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", *addr)
	if err != nil {
		return err
	}
	return serveUDP(ctx, pc.(*net.UDPConn), *once)
}

// udpKey identifies a test at the server: a client could reuse a test id by
// chance, but not from the same address.
type udpKey struct {
	test uint32
	from netip.AddrPort
}

// udpTest is the server's state for one test.
type udpTest struct {
	start    time.Time
	lastSeen time.Time
	count    perf.UDPCounter
}

// serveUDP counts data datagrams per test and answers each fin with a
// report. Tests idle for idleTimeout are forgotten; with once, the server
// returns after its first report, or fails after idleTimeout of silence. It
// closes pc.
func serveUDP(ctx context.Context, pc *net.UDPConn, once bool) error {
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	defer pc.Close()
	tests := make(map[udpKey]*udpTest)
	buf := make([]byte, perf.MaxUDPSize)
	var out [perf.UDPReportLen]byte
	lastPurge := time.Now()
	for {
		if err := pc.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
			return err
		}
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		now := time.Now()
		if errors.Is(err, os.ErrDeadlineExceeded) && !once {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if now.Sub(lastPurge) > time.Second {
			purgeUDP(tests, now)
			lastPurge = now
		}
		p, err := perf.ParseUDP(buf[:n])
		if err != nil {
			continue // not ours: drop silently, as on any data path
		}
		k := udpKey{test: p.Test, from: from}
		t := tests[k]
		switch p.Kind {
		case perf.UDPData:
			if t == nil {
				t = &udpTest{start: now}
				tests[k] = t
			}
			t.lastSeen = now
			t.count.Observe(p.Seq, n, now.Sub(t.start))
		case perf.UDPFin:
			if t == nil {
				t = &udpTest{start: now} // every datagram lost: report zeros
				tests[k] = t
			}
			t.lastSeen = now
			rep := perf.UDPPacket{
				Kind: perf.UDPReport, Test: p.Test, Seq: p.Seq,
				Received: t.count.Received, Reordered: t.count.Reordered,
				Bytes: t.count.Bytes, Span: t.count.Span(),
			}
			m, _ := perf.PutUDP(out[:], &rep)
			_, err := pc.WriteToUDPAddrPort(out[:m], from)
			if once {
				return err
			}
			// Otherwise a failed report is the client's problem: it retries.
		}
	}
}

// purgeUDP forgets tests idle for idleTimeout, bounding the server's memory.
func purgeUDP(tests map[udpKey]*udpTest, now time.Time) {
	for k, t := range tests {
		if now.Sub(t.lastSeen) > idleTimeout {
			delete(tests, k)
		}
	}
}

// udpClientConfig is the parsed command line of "btperf udp-client".
type udpClientConfig struct {
	addr     string
	size     int
	rate     float64
	duration time.Duration
	bind     string
	json     bool
}

func parseUDPClient(args []string, stderr io.Writer) (*udpClientConfig, error) {
	cfg := &udpClientConfig{}
	fs := flag.NewFlagSet("udp-client", flag.ContinueOnError)
	fs.StringVar(&cfg.addr, "c", "", "server `ADDR:PORT` (required)")
	fs.IntVar(&cfg.size, "size", 200, "UDP payload bytes per datagram (16..65507)")
	fs.Float64Var(&cfg.rate, "rate", 0, "datagrams per second (0 = as fast as possible)")
	fs.DurationVar(&cfg.duration, "t", 10*time.Second, "sending duration")
	fs.StringVar(&cfg.bind, "bind", "", "source `ADDR` to bind")
	fs.BoolVar(&cfg.json, "json", false, "print the result as a JSON object")
	if err := parseFlags(fs, args, stderr); err != nil {
		return nil, err
	}
	switch {
	case cfg.addr == "":
		return nil, errors.New("udp-client: -c ADDR:PORT is required")
	case cfg.size < perf.UDPHeaderLen || cfg.size > perf.MaxUDPSize:
		return nil, fmt.Errorf("udp-client: -size must be %d..%d", perf.UDPHeaderLen, perf.MaxUDPSize)
	case cfg.rate < 0:
		return nil, errors.New("udp-client: -rate must not be negative")
	case cfg.duration <= 0 || cfg.duration > perf.MaxDuration:
		return nil, fmt.Errorf("udp-client: -t must be in (0, %v]", perf.MaxDuration)
	}
	return cfg, nil
}

func runUDPClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseUDPClient(args, stderr)
	if err != nil {
		return err
	}
	d := net.Dialer{}
	if cfg.bind != "" {
		ip := net.ParseIP(cfg.bind)
		if ip == nil {
			return fmt.Errorf("udp-client: bad -bind address %q", cfg.bind)
		}
		d.LocalAddr = &net.UDPAddr{IP: ip}
	}
	c, err := d.DialContext(ctx, "udp", cfg.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	uc := c.(*net.UDPConn)
	test := rand.Uint32()
	start := time.Now()
	sent, err := udpSend(uc, cfg, test, start)
	if err != nil {
		return err
	}
	sendTime := time.Since(start)
	time.Sleep(udpSettle)
	rep, err := udpFin(uc, test, sent)
	if err != nil {
		return err
	}
	span := rep.Span
	if span <= 0 {
		span = sendTime // fewer than two datagrams arrived
	}
	r := perf.UDPResult{
		PPS:       float64(rep.Received) / span.Seconds(),
		Mbps:      float64(rep.Bytes) * 8 / 1e6 / span.Seconds(),
		Loss:      perf.UDPLoss(sent, rep.Received),
		Reordered: rep.Reordered,
		Sent:      sent,
		Received:  rep.Received,
	}
	if cfg.json {
		return json.NewEncoder(stdout).Encode(r)
	}
	_, err = fmt.Fprintln(stdout, r)
	return err
}

// udpSend sends data datagrams for cfg.duration, paced to cfg.rate, and
// returns how many were sent. Pacing sleeps only when more than a
// millisecond ahead, since shorter sleeps overshoot.
func udpSend(c *net.UDPConn, cfg *udpClientConfig, test uint32, start time.Time) (uint64, error) {
	buf := make([]byte, cfg.size)
	end := start.Add(cfg.duration)
	var seq uint64
	for {
		now := time.Now()
		if !now.Before(end) {
			return seq, nil
		}
		if cfg.rate > 0 {
			due := start.Add(time.Duration(float64(seq) / cfg.rate * float64(time.Second)))
			if ahead := due.Sub(now); ahead > time.Millisecond {
				time.Sleep(min(ahead, end.Sub(now)))
				continue
			}
		}
		p := perf.UDPPacket{Kind: perf.UDPData, Test: test, Seq: seq}
		if _, err := perf.PutUDP(buf, &p); err != nil {
			return seq, err
		}
		if _, err := c.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOBUFS) {
				continue // local queue full: not sent, try again
			}
			return seq, fmt.Errorf("send: %w", err)
		}
		seq++
	}
}

// udpFin asks the server for its counts, retrying since the fin or the
// report may be lost like any datagram.
func udpFin(c *net.UDPConn, test uint32, sent uint64) (perf.UDPPacket, error) {
	var fin [perf.UDPHeaderLen]byte
	p := perf.UDPPacket{Kind: perf.UDPFin, Test: test, Seq: sent}
	n, err := perf.PutUDP(fin[:], &p)
	if err != nil {
		return perf.UDPPacket{}, err
	}
	buf := make([]byte, perf.MaxUDPSize)
	for range udpFinTries {
		if _, err := c.Write(fin[:n]); err != nil {
			return perf.UDPPacket{}, fmt.Errorf("send fin: %w", err)
		}
		if err := c.SetReadDeadline(time.Now().Add(udpFinRetry)); err != nil {
			return perf.UDPPacket{}, err
		}
		for {
			m, err := c.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return perf.UDPPacket{}, fmt.Errorf("wait for report: %w", err)
			}
			r, err := perf.ParseUDP(buf[:m])
			if err == nil && r.Kind == perf.UDPReport && r.Test == test {
				return r, nil
			}
		}
	}
	return perf.UDPPacket{}, fmt.Errorf("no report from server after %d tries", udpFinTries)
}
