package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/bondtun/bondtun/internal/perf"
)

// chunkLen is the size of one read or write on a data connection.
const chunkLen = 128 << 10

// verifyError is a data-integrity failure, reported by the receiver.
type verifyError struct {
	at     uint64
	reason string // why, when it is not a wrong byte
}

func (e *verifyError) Error() string {
	if e.reason != "" {
		return fmt.Sprintf("verify failed at byte %d: %s", e.at, e.reason)
	}
	return fmt.Sprintf("verify failed at byte %d", e.at)
}

// sendFlow is the sender side of one flow: until the test deadline (duration
// mode) or exactly h.Bytes bytes (bytes mode, failing at the deadline). With
// h.Verify the stream bytes are generated per write; otherwise one
// pre-filled buffer is resent, which keeps the sender's CPU out of the
// measurement. A peer that accepts nothing for idleTimeout is given up on.
func sendFlow(c net.Conn, h *perf.Header, start time.Time) error {
	st := perf.NewStream(h.Seed, h.Flow)
	buf := make([]byte, chunkLen)
	st.Fill(buf, 0)
	end := start.Add(h.Duration)
	var off uint64
	for !h.BytesMode() || off < uint64(h.Bytes) {
		n := len(buf)
		if h.BytesMode() {
			n = int(min(uint64(n), uint64(h.Bytes)-off))
		}
		if h.Verify() {
			st.Fill(buf[:n], off)
		}
		now := time.Now()
		if err := c.SetWriteDeadline(earliest(now.Add(idleTimeout), end)); err != nil {
			return err
		}
		w, err := c.Write(buf[:n])
		off += uint64(w)
		if errors.Is(err, os.ErrDeadlineExceeded) && !h.BytesMode() && !time.Now().Before(end) {
			return nil // the normal end of a timed test
		}
		if err != nil {
			return fmt.Errorf("send after %d bytes: %w", off, err)
		}
	}
	return nil
}

// earliest returns the earlier of two times.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// recvFlow is the receiver side of one flow: it reads to EOF, records the
// bytes in tl and, with h.Verify, checks them against the stream. A verify
// failure is returned as *verifyError once the flow is drained, so the
// sender is not reset mid-write; other errors end the flow at once. Every
// read is bounded by idleTimeout and by the test duration plus idleTimeout.
func recvFlow(c net.Conn, h *perf.Header, start time.Time, tl *perf.Timeline) error {
	st := perf.NewStream(h.Seed, h.Flow)
	buf := make([]byte, chunkLen)
	hardEnd := start.Add(h.Duration + idleTimeout)
	var verr *verifyError
	var off uint64
	for {
		if err := c.SetReadDeadline(earliest(time.Now().Add(idleTimeout), hardEnd)); err != nil {
			return err
		}
		n, err := c.Read(buf)
		if n > 0 {
			if h.Verify() && verr == nil {
				if k := st.Verify(buf[:n], off); k >= 0 {
					verr = &verifyError{at: off + uint64(k)}
				}
			}
			off += uint64(n)
			tl.Record(time.Since(start), n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("receive after %d bytes: %w", off, err)
		}
	}
	tl.Finish(time.Since(start))
	if verr == nil && h.BytesMode() && h.Verify() && off != uint64(h.Bytes) {
		// Short or long stream: the first byte that is missing or extra.
		verr = &verifyError{at: min(off, uint64(h.Bytes)),
			reason: fmt.Sprintf("stream has %d bytes, want %d", off, h.Bytes)}
	}
	if verr != nil {
		return verr
	}
	return nil
}
