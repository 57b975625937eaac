package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bondtun/bondtun/internal/perf"
)

// startServer serves TCP tests, over MPTCP if asked, on a loopback port until the test ends.
func startServer(t *testing.T, mptcp bool) string {
	t.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(mptcp)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		serveTCP(ctx, ln, false, func(err error) { t.Logf("server: %v", err) })
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ln.Addr().String()
}

// countPrefix counts the lines of s that start with prefix.
func countPrefix(s, prefix string) int {
	n := 0
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestTCPLoopback(t *testing.T) {
	addr := startServer(t, false)
	tests := []struct {
		name      string
		args      []string
		wantFlows int
		wantBytes uint64 // 0: any positive count
		verified  bool
		intervals int // minimum interval lines
	}{
		{"upload timed verify", []string{"-t", "500ms", "-omit", "100ms", "-i", "100ms", "-verify", "-cc", "reno"}, 1, 0, true, 4},
		{"download timed verify, 2 flows", []string{"-t", "500ms", "-P", "2", "-reverse", "-omit", "100ms", "-i", "100ms", "-verify"}, 2, 0, true, 4},
		{"upload bytes verify", []string{"-t", "5s", "-P", "3", "-bytes", "3000001", "-verify"}, 3, 3000001, true, 0},
		{"download bytes verify", []string{"-t", "5s", "-P", "2", "-reverse", "-bytes", "2000003", "-verify"}, 2, 2000003, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"client", "-c", addr}, tc.args...)
			if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d, stderr: %s", code, stderr.String())
			}
			r, err := perf.ParseResult(lastLine(stdout.String()))
			if err != nil {
				t.Fatalf("%v in %q", err, stdout.String())
			}
			if r.Flows != tc.wantFlows || r.Bytes == 0 || r.Mbps <= 0 || r.Verified != tc.verified {
				t.Fatalf("result %+v", r)
			}
			if tc.wantBytes != 0 && r.Bytes != tc.wantBytes {
				t.Fatalf("bytes = %d, want %d", r.Bytes, tc.wantBytes)
			}
			if n := countPrefix(stdout.String(), "t="); n < tc.intervals {
				t.Fatalf("%d interval lines, want >= %d:\n%s", n, tc.intervals, stdout.String())
			}
		})
	}
}

func TestJSONResult(t *testing.T) {
	addr := startServer(t, false)
	var stdout, stderr bytes.Buffer
	args := []string{"client", "-c", addr, "-t", "200ms", "-i", "100ms", "-json"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
	var got struct {
		Mbps      float64 `json:"mbps"`
		Bytes     uint64  `json:"bytes"`
		Flows     int     `json:"flows"`
		Intervals []struct {
			T    float64 `json:"t"`
			Mbps float64 `json:"mbps"`
		} `json:"intervals"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("%v in %q", err, stdout.String())
	}
	if got.Bytes == 0 || got.Mbps <= 0 || got.Flows != 1 || len(got.Intervals) < 1 {
		t.Fatalf("json result %+v", got)
	}
}

// TestServerReportsVerifyFailure plays a server that finds a bad byte in an
// upload, and checks the client turns its report into the verify error.
func TestServerReportsVerifyFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c) // header and data, to the client's half-close
		tl := perf.NewTimeline(time.Second)
		tl.Record(time.Millisecond, 1000)
		tl.Finish(2 * time.Millisecond)
		rep := perf.Report{VerifyFailed: true, FailAt: 77, Timeline: *tl}
		c.Write(rep.Append(nil))
	}()
	var stdout, stderr bytes.Buffer
	args := []string{"client", "-c", ln.Addr().String(), "-bytes", "1000", "-verify"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 1 ||
		strings.TrimSpace(stderr.String()) != "btperf: verify failed at byte 77" {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestMPTCPLoopback(t *testing.T) {
	if err := checkMPTCP(); err != nil {
		t.Skip(err)
	}
	tests := []struct {
		name     string
		srvMPTCP bool
		wantErr  string // "" = success
	}{
		{"mptcp both ends", true, ""},
		{"server plain tcp: fallback refused", false, "fell back to plain TCP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServer(t, tc.srvMPTCP)
			var stdout, stderr bytes.Buffer
			args := []string{"client", "-c", addr, "-mptcp", "-t", "2s", "-bytes", "1000000", "-verify"}
			code := run(context.Background(), args, &stdout, &stderr)
			if tc.wantErr != "" {
				if code != 1 || !strings.Contains(stderr.String(), tc.wantErr) {
					t.Fatalf("exit %d, stderr %q; want failure with %q", code, stderr.String(), tc.wantErr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d, stderr: %s", code, stderr.String())
			}
			if r, err := perf.ParseResult(lastLine(stdout.String())); err != nil || r.Bytes != 1000000 || !r.Verified {
				t.Fatalf("result %+v, %v", r, err)
			}
		})
	}
}

// corruptConn flips one byte of everything written through it at stream
// offset at, like a tunnel that damages data.
type corruptConn struct {
	net.Conn
	off, at uint64
}

func (c *corruptConn) Write(b []byte) (int, error) {
	if c.at >= c.off && c.at < c.off+uint64(len(b)) {
		b = bytes.Clone(b)
		b[c.at-c.off] ^= 0x20
	}
	c.off += uint64(len(b))
	return c.Conn.Write(b)
}

// tcpPair returns the two ends of a loopback TCP connection. (net.Pipe
// would not do: its SetReadDeadline fails once the peer has closed.)
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestVerifyFailureDetected(t *testing.T) {
	tests := []struct {
		name string
		at   uint64
	}{
		{"first byte", 0},
		{"inside second chunk", chunkLen + 17},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tcpPair(t)
			h := perf.Header{Flags: perf.FlagVerify | perf.FlagBytes, Flows: 1, Duration: 5 * time.Second, Bytes: 3 * chunkLen}
			sent := make(chan error, 1)
			go func() {
				sent <- sendFlow(&corruptConn{Conn: a, at: tc.at}, &h, time.Now())
				a.Close()
			}()
			err := recvFlow(b, &h, time.Now(), perf.NewTimeline(h.Duration))
			if serr := <-sent; serr != nil {
				t.Fatalf("sender: %v", serr)
			}
			want := "verify failed at byte " + strconv.FormatUint(tc.at, 10)
			if err == nil || err.Error() != want {
				t.Fatalf("err = %v, want %q", err, want)
			}
		})
	}
}

func TestUDPLoopback(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serveUDP(context.Background(), pc, true) }()
	var stdout, stderr bytes.Buffer
	args := []string{"udp-client", "-c", pc.LocalAddr().String(), "-t", "300ms", "-rate", "2000", "-size", "100"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	r, err := perf.ParseUDPResult(lastLine(stdout.String()))
	if err != nil {
		t.Fatalf("%v in %q", err, stdout.String())
	}
	// 2000 pkt/s for 0.3 s: about 600 datagrams, none lost on loopback.
	if r.PPS < 1000 || r.PPS > 4000 || r.Mbps <= 0 || r.Loss > 0.05 {
		t.Fatalf("result %+v", r)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"frobnicate"}, 2},
		{"unknown flag", []string{"client", "-x"}, 2},
		{"missing server", []string{"client"}, 1},
		{"bad cc", []string{"client", "-c", "127.0.0.1:1", "-cc", "nope"}, 1},
		{"too many flows", []string{"client", "-c", "127.0.0.1:1", "-P", "300"}, 1},
		{"tiny datagrams", []string{"udp-client", "-c", "127.0.0.1:1", "-size", "8"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != tc.want {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.want, stderr.String())
			}
			if stderr.Len() == 0 {
				t.Fatal("no error message on stderr")
			}
		})
	}
}

func TestServeOnceEndsAfterAllFlows(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serveTCP(context.Background(), ln, true, func(error) {}) }()
	var stdout, stderr bytes.Buffer
	args := []string{"client", "-c", ln.Addr().String(), "-P", "3", "-bytes", "300000", "-verify", "-reverse"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server -once still running after its test")
	}
}
