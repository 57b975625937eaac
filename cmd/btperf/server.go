package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/bondtun/bondtun/internal/perf"
)

// errUsage is returned after a flag error has already been printed.
var errUsage = errors.New("usage")

// parseFlags parses args with fs, turning flag errors into errUsage.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag package has printed why, and the usage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "btperf: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return nil
}

func runServer(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	addr := fs.String("l", ":5201", "listen `ADDR:PORT`")
	mptcp := fs.Bool("mptcp", false, "listen with kernel MPTCP (fails if net.mptcp.enabled is not 1)")
	once := fs.Bool("once", false, "serve one test (all its flows), then exit")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	var lc net.ListenConfig
	if *mptcp {
		if err := checkMPTCP(); err != nil {
			return err
		}
	}
	// Explicit either way: Go listeners default to MPTCP where the kernel
	// allows it, and a plain-TCP server must stay plain TCP.
	lc.SetMultipathTCP(*mptcp)
	ln, err := lc.Listen(ctx, "tcp", *addr)
	if err != nil {
		return err
	}
	return serveTCP(ctx, ln, *once, func(err error) { fmt.Fprintf(stderr, "btperf: server: %v\n", err) })
}

// serveTCP accepts test connections on ln until ctx ends or, with once, until
// every flow of the first test is done. It closes ln. logErr gets one error
// per failed connection. With once, accepting is bounded by idleTimeout and
// the first failed flow's error is returned.
func serveTCP(ctx context.Context, ln net.Listener, once bool, logErr func(error)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	if once {
		return serveOnce(ln, &wg)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Go(func() {
			if err := handleConn(c, nil); err != nil {
				logErr(err)
			}
		})
	}
}

// serveOnce accepts connections until as many have arrived as the first
// header's flow count, and waits for them.
func serveOnce(ln net.Listener, wg *sync.WaitGroup) error {
	var (
		mu    sync.Mutex
		first error
		flows = -1 // unknown until a header arrives
	)
	gotFlows := make(chan int, 1)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil && err != nil {
			first = err
		}
	}
	for accepted := 0; flows < 0 || accepted < flows; accepted++ {
		if tl, ok := ln.(*net.TCPListener); ok {
			if err := tl.SetDeadline(time.Now().Add(idleTimeout)); err != nil {
				return err
			}
		}
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		wg.Go(func() {
			fail(handleConn(c, func(h *perf.Header) {
				select {
				case gotFlows <- int(h.Flows):
				default:
				}
			}))
			// A flow that failed before its header still ends the wait.
			select {
			case gotFlows <- 0:
			default:
			}
		})
		if flows < 0 {
			// The first test's header says how many flows to wait for.
			select {
			case flows = <-gotFlows:
			case <-time.After(idleTimeout):
				return errors.New("no test header received")
			}
		}
	}
	wg.Wait()
	return first
}

// handleConn runs the server side of one flow. onHeader, if set, is told the
// flow's header before the flow starts.
func handleConn(c net.Conn, onHeader func(*perf.Header)) error {
	defer c.Close()
	var b [perf.HeaderLen]byte
	if err := c.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("%v: read header: %w", c.RemoteAddr(), err)
	}
	h, err := perf.ParseHeader(b[:])
	if err != nil {
		return fmt.Errorf("%v: %w", c.RemoteAddr(), err)
	}
	start := time.Now()
	if onHeader != nil {
		onHeader(&h)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		name, _ := perf.CCName(h.CC)
		rc, err := tc.SyscallConn()
		if err == nil {
			err = setCC(rc, name)
		}
		if err != nil {
			return fmt.Errorf("%v: %w", c.RemoteAddr(), err)
		}
	}
	if h.Reverse() {
		if err := sendFlow(c, &h, start); err != nil {
			return fmt.Errorf("%v: %w", c.RemoteAddr(), err)
		}
		return nil
	}
	return serveReceive(c, &h, start)
}

// serveReceive receives one send-mode flow and writes the report back on the
// same connection: the client half-closes after its data and then reads the
// report, so no control connection is needed.
func serveReceive(c net.Conn, h *perf.Header, start time.Time) error {
	tl := perf.NewTimeline(h.Duration)
	rep := perf.Report{}
	err := recvFlow(c, h, start, tl)
	var verr *verifyError
	switch {
	case errors.As(err, &verr):
		rep.VerifyFailed, rep.FailAt = true, verr.at
	case err != nil:
		return fmt.Errorf("%v: %w", c.RemoteAddr(), err)
	}
	rep.Timeline = *tl
	if err := c.SetWriteDeadline(time.Now().Add(idleTimeout)); err != nil {
		return err
	}
	if _, err := c.Write(rep.Append(nil)); err != nil {
		return fmt.Errorf("%v: write report: %w", c.RemoteAddr(), err)
	}
	if verr != nil {
		return fmt.Errorf("%v: %w", c.RemoteAddr(), verr)
	}
	return nil
}
