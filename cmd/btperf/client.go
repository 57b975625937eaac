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
	"sync"
	"syscall"
	"time"

	"github.com/bondtun/bondtun/internal/perf"
)

// clientConfig is the parsed command line of "btperf client".
type clientConfig struct {
	addr     string
	duration time.Duration
	flows    int
	reverse  bool
	omit     time.Duration
	interval time.Duration
	cc       string
	mptcp    bool
	bind     string
	bytes    uint64
	verify   bool
	json     bool
}

func parseClient(args []string, stderr io.Writer) (*clientConfig, error) {
	cfg := &clientConfig{}
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.StringVar(&cfg.addr, "c", "", "server `ADDR:PORT` (required)")
	fs.DurationVar(&cfg.duration, "t", 10*time.Second, "test duration; in -bytes mode, the deadline")
	fs.IntVar(&cfg.flows, "P", 1, "parallel TCP connections (1..255)")
	fs.BoolVar(&cfg.reverse, "reverse", false, "server sends (download)")
	fs.DurationVar(&cfg.omit, "omit", 2*time.Second, "leading period left out of the goodput (ignored with -bytes)")
	fs.DurationVar(&cfg.interval, "i", 0, "print receiver-side rates per interval (0 = none)")
	fs.StringVar(&cfg.cc, "cc", "", "TCP congestion control for both ends, e.g. cubic, bbr (default: kernel's)")
	fs.BoolVar(&cfg.mptcp, "mptcp", false, "use kernel MPTCP")
	fs.StringVar(&cfg.bind, "bind", "", "source `ADDR` to bind")
	fs.Uint64Var(&cfg.bytes, "bytes", 0, "send exactly N bytes in total, split over the flows")
	fs.BoolVar(&cfg.verify, "verify", false, "receiver checks every byte of the pseudo-random stream")
	fs.BoolVar(&cfg.json, "json", false, "print the result as a JSON object")
	if err := parseFlags(fs, args, stderr); err != nil {
		return nil, err
	}
	switch {
	case cfg.addr == "":
		return nil, errors.New("client: -c ADDR:PORT is required")
	case cfg.flows < 1 || cfg.flows > 255:
		return nil, errors.New("client: -P must be 1..255")
	case cfg.duration < time.Millisecond || cfg.duration > perf.MaxDuration:
		return nil, fmt.Errorf("client: -t must be 1ms..%v", perf.MaxDuration)
	case cfg.interval < 0 || cfg.omit < 0:
		return nil, errors.New("client: -i and -omit must not be negative")
	case perf.FlowBytes(cfg.bytes, cfg.flows, 0) > 1<<32-1:
		return nil, errors.New("client: -bytes exceeds 4 GiB per flow")
	}
	if _, err := perf.CCID(cfg.cc); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return cfg, nil
}

func runClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseClient(args, stderr)
	if err != nil {
		return err
	}
	res, err := runTest(ctx, cfg)
	if err != nil {
		return err
	}
	return printResult(stdout, cfg, res)
}

// runTest runs one test over cfg.flows connections and aggregates the
// receivers' timelines.
func runTest(ctx context.Context, cfg *clientConfig) (perf.Result, error) {
	d, err := dialer(cfg)
	if err != nil {
		return perf.Result{}, err
	}
	// Everything ends by the test duration plus one idle period.
	ctx, cancel := context.WithTimeout(ctx, cfg.duration+idleTimeout)
	defer cancel()
	base := perf.Header{
		Flows:    uint8(cfg.flows),
		Seed:     uint16(rand.Uint32()),
		Duration: cfg.duration,
	}
	base.CC, _ = perf.CCID(cfg.cc)
	if cfg.reverse {
		base.Flags |= perf.FlagReverse
	}
	if cfg.verify {
		base.Flags |= perf.FlagVerify
	}
	if cfg.bytes > 0 {
		base.Flags |= perf.FlagBytes
	}
	tls := make([]*perf.Timeline, cfg.flows)
	errs := make([]error, cfg.flows)
	var wg sync.WaitGroup
	for i := range cfg.flows {
		h := base
		h.Flow = uint8(i)
		if h.BytesMode() {
			h.Bytes = uint32(perf.FlowBytes(cfg.bytes, cfg.flows, i))
		}
		wg.Go(func() { tls[i], errs[i] = runFlow(ctx, d, cfg, &h) })
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		return perf.Result{}, err
	}
	omit := cfg.omit
	if cfg.bytes > 0 {
		omit = 0
	}
	s := perf.Summarize(tls, omit)
	if cfg.bytes > 0 && s.Bytes != cfg.bytes {
		return perf.Result{}, fmt.Errorf("received %d bytes, want %d", s.Bytes, cfg.bytes)
	}
	return perf.Result{
		Mbps: s.Mbps, Bytes: s.Bytes, Secs: s.Secs, Flows: cfg.flows,
		Verified:  cfg.verify,
		Intervals: perf.Intervals(tls, cfg.interval),
	}, nil
}

// firstError prefers a verify failure, the error tests look for, over the
// connection errors it may cause on other flows.
func firstError(errs []error) error {
	var verr *verifyError
	for _, err := range errs {
		if errors.As(err, &verr) {
			return err
		}
	}
	return errors.Join(errs...)
}

// dialer builds the dialer for all flows: source address, MPTCP and the
// congestion control (set before connect, so the handshake uses it).
func dialer(cfg *clientConfig) (*net.Dialer, error) {
	d := &net.Dialer{Timeout: idleTimeout}
	if cfg.bind != "" {
		ip := net.ParseIP(cfg.bind)
		if ip == nil {
			return nil, fmt.Errorf("client: bad -bind address %q", cfg.bind)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	if cfg.mptcp {
		if err := checkMPTCP(); err != nil {
			return nil, err
		}
	}
	d.SetMultipathTCP(cfg.mptcp)
	d.Control = func(_, _ string, rc syscall.RawConn) error { return setCC(rc, cfg.cc) }
	return d, nil
}

// runFlow runs the client side of one flow and returns the receiver's
// timeline: measured here in reverse mode, reported by the server otherwise.
func runFlow(ctx context.Context, d *net.Dialer, cfg *clientConfig, h *perf.Header) (*perf.Timeline, error) {
	c, err := d.DialContext(ctx, "tcp", cfg.addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	tc := c.(*net.TCPConn)
	if cfg.mptcp {
		if err := checkMPTCPConn(tc); err != nil {
			return nil, err
		}
	}
	hb, err := h.Append(nil)
	if err != nil {
		return nil, err
	}
	if err := c.SetWriteDeadline(time.Now().Add(idleTimeout)); err != nil {
		return nil, err
	}
	if _, err := c.Write(hb); err != nil {
		return nil, fmt.Errorf("send header: %w", err)
	}
	start := time.Now()
	if h.Reverse() {
		tl := perf.NewTimeline(h.Duration)
		if err := recvFlow(c, h, start, tl); err != nil {
			return nil, err
		}
		return tl, nil
	}
	if err := sendFlow(c, h, start); err != nil {
		return nil, err
	}
	if err := tc.CloseWrite(); err != nil {
		return nil, err
	}
	return readReport(c)
}

// checkMPTCPConn fails if a connection dialled with MPTCP is plain TCP: a
// silent fallback would make an MPTCP measurement lie.
func checkMPTCPConn(tc *net.TCPConn) error {
	fellBack := true
	ok, err := tc.MultipathTCP()
	if err == nil && ok {
		var rc syscall.RawConn
		if rc, err = tc.SyscallConn(); err == nil {
			fellBack, err = mptcpFallback(rc)
		}
	}
	if err != nil {
		return fmt.Errorf("mptcp: %w", err)
	}
	if fellBack {
		return errors.New("mptcp: connection fell back to plain TCP (server not listening with MPTCP, or a middlebox stripped it)")
	}
	return nil
}

// readReport reads the server's report, which it ends by closing.
func readReport(c net.Conn) (*perf.Timeline, error) {
	if err := c.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(c, perf.MaxReportLen+1))
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	rep, err := perf.ParseReport(b)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	if rep.VerifyFailed {
		return nil, &verifyError{at: rep.FailAt}
	}
	return &rep.Timeline, nil
}

// printResult prints the interval lines and the RESULT line, or one JSON
// object with -json.
func printResult(w io.Writer, cfg *clientConfig, r perf.Result) error {
	if cfg.json {
		type interval struct {
			T    float64 `json:"t"`
			Mbps float64 `json:"mbps"`
		}
		out := struct {
			perf.Result
			Intervals []interval `json:"intervals,omitempty"`
		}{Result: r}
		for _, iv := range r.Intervals {
			out.Intervals = append(out.Intervals, interval{T: iv.End.Seconds(), Mbps: iv.Mbps})
		}
		return json.NewEncoder(w).Encode(out)
	}
	for _, iv := range r.Intervals {
		if _, err := fmt.Fprintf(w, "t=%.2f mbps=%.1f\n", iv.End.Seconds(), iv.Mbps); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, r)
	return err
}
