// Command btperf is bondtun's traffic tool, used by the demo, the netns
// integration tests and the benchmarks in place of iperf3. It measures TCP
// goodput over P parallel connections in either direction (optionally over
// kernel MPTCP, with a chosen congestion control), proves data integrity with
// a verified pseudo-random byte stream, and generates small-packet UDP load
// reporting packets per second, loss and reordering.
//
// Usage:
//
//	btperf server [-l ADDR:PORT] [-mptcp] [-once]
//	btperf client -c ADDR:PORT [-t 10s] [-P 1] [-reverse] [-omit 2s] [-i 500ms]
//	              [-cc cubic] [-mptcp] [-bind SRCADDR] [-bytes N -verify] [-json]
//	btperf udp-server [-l ADDR:PORT] [-once]
//	btperf udp-client -c ADDR:PORT [-size 200] [-rate PPS] [-t 10s] [-bind SRCADDR] [-json]
//
// The last line on stdout is the result, "RESULT key=value ..." (see
// bondtun/internal/perf for the format and a parser), or a JSON object with
// -json. Errors are one line on stderr and a non-zero exit status.
//
// # How a TCP test runs
//
// The client opens P connections and nothing else. Each starts with a
// 16-byte header (perf.Header: direction, duration, byte count, flow count
// and index, stream seed, congestion control). The sender sends until the
// duration ends, or exactly its share of -bytes. The receiver records a
// timeline of bytes received (10 ms steps or finer) and, with -verify,
// checks every byte against the flow's pseudo-random stream.
//
// In send mode the server is the receiver: the client half-closes after its
// data, and the server writes its timeline and verify status back on the
// same connection as a perf.Report before closing, so no control connection
// is needed. In -reverse mode the client is the receiver and measures
// directly. Either way the client computes goodput (bytes after -omit
// divided by elapsed minus omit, elapsed being the longest flow's time from
// header to end of data) and, with -i, the interval lines "t=1.50 mbps=48.3",
// all printed at the end of the test.
//
// Every socket operation is bounded: an idle peer is dropped after 30 s, and
// a test ends by its duration plus 30 s at the latest.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// idleTimeout bounds every blocking socket operation: a peer silent for this
// long is given up on.
const idleTimeout = 30 * time.Second

const usage = `usage: btperf server|client|udp-server|udp-client [flags]   (btperf CMD -h for flags)`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one btperf command and returns the exit status: 0 success,
// 1 failure, 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "server":
		err = runServer(ctx, args[1:], stderr)
	case "client":
		err = runClient(ctx, args[1:], stdout, stderr)
	case "udp-server":
		err = runUDPServer(ctx, args[1:], stderr)
	case "udp-client":
		err = runUDPClient(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case err == errUsage:
		return 2
	default:
		fmt.Fprintf(stderr, "btperf: %v\n", err)
		return 1
	}
}
