// Package flightrec is bondtun's flight recorder: a ring of samples of the state that
// decides how a session splits its traffic (per path: delivery rate, RTT, window, bytes in
// flight, local queue and its delay, pacing rate, CoDel drops, repairs; per session: the
// reorder hold and what waits in it, late packets, inner retransmissions), taken at a fixed
// interval while the session carries traffic, and their CSV form. `bondtun status --trace
// FILE` dumps it, and scripts/plot-trace.sh draws it; docs/TRACE.md explains the columns
// and how to read a slow run from them.
//
// The package is pure: no goroutines, no clock reads, no locks. A Ring is not safe for
// concurrent use; its owner serializes Add and Samples.
package flightrec

import (
	"bufio"
	"fmt"
	"io"
	"time"
)

// Sample is one path's state at one instant, with the session's at the same instant.
// Counters are cumulative since the session started.
type Sample struct {
	At    time.Duration // since the recorder's zero time
	Path  uint8         // path id (docs/PROTOCOL.md §2)
	State uint8         // liveness state, named by the Names passed to WriteCSV

	RateBps    float64       // delivery-rate estimate, bits/s
	PacingBps  float64       // pacing rate, bits/s
	SRTT       time.Duration // smoothed RTT
	MinRTT     time.Duration // the window's (recent) minimum RTT
	Jitter     time.Duration // packet-to-packet RTT variation
	Window     int           // in-flight window, bytes
	Inflight   int           // bytes sent and not yet acknowledged
	Queue      int           // bytes waiting in bondtun's local queues for this path
	QueueDelay time.Duration // how long the oldest of them has waited
	CodelDrops uint64        // packets CoDel dropped from the path's bulk queue
	Repairs    uint64        // packets lost on other paths re-sent on this one
	Lost       uint64        // this path's datagrams the peer reported lost
	TxPackets  uint64        // datagrams sent on the path
	RxPackets  uint64        // authenticated datagrams received on the path

	Hold        time.Duration // the reorder buffer's current hold (session)
	ReorderHeld int           // packets waiting in the reorder buffer (session)
	ReorderLate uint64        // packets that came after their gap was released (session)
	InnerRetx   uint64        // inner TCP retransmissions sent (session)
}

// Ring keeps the newest samples, overwriting the oldest. The zero value holds nothing;
// make one with New.
type Ring struct {
	size int // samples kept
	buf  []Sample
	next int  // where the next sample goes
	full bool // buf has wrapped at least once
}

// New returns a ring of n samples (at least 1). Its buffer is allocated on the first Add,
// so a session that never carries traffic costs nothing.
func New(n int) *Ring { return &Ring{size: max(n, 1)} }

// Add stores s, overwriting the oldest sample if the ring is full. It allocates only on
// the first call.
func (r *Ring) Add(s Sample) {
	if r.buf == nil {
		r.buf = make([]Sample, 0, r.size)
	}
	if len(r.buf) < r.size {
		r.buf = append(r.buf, s)
		return
	}
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.full = true
}

// Len returns the number of samples held.
func (r *Ring) Len() int { return len(r.buf) }

// Samples appends the held samples to dst, oldest first, and returns it.
func (r *Ring) Samples(dst []Sample) []Sample {
	if !r.full {
		return append(dst, r.buf...)
	}
	dst = append(dst, r.buf[r.next:]...)
	return append(dst, r.buf[:r.next]...)
}

// Header is the CSV header WriteCSV writes, one column per Sample field.
const Header = "t_ms,path,state,rate_bps,pacing_bps,srtt_ms,minrtt_ms,jitter_ms,window_bytes,inflight_bytes," +
	"queue_bytes,queue_delay_ms,codel_drops,repairs,lost,tx_packets,rx_packets," +
	"hold_ms,reorder_held,reorder_late,inner_retx"

// Names turns a sample's path id and state into the words of the CSV.
type Names struct {
	Path  func(id uint8) string
	State func(state uint8) string
}

// WriteCSV writes comment lines (each prefixed with "# "), the header and one row per
// sample. Times are milliseconds with microsecond resolution.
func WriteCSV(w io.Writer, comments []string, samples []Sample, names Names) error {
	bw := bufio.NewWriter(w)
	for _, c := range comments {
		fmt.Fprintf(bw, "# %s\n", c)
	}
	fmt.Fprintln(bw, Header)
	if err := bw.Flush(); err != nil {
		return err
	}
	return WriteRows(w, samples, names)
}

// WriteRows writes one CSV row per sample, without header: WriteCSV's rows, for a file
// that holds several recorders' samples one after the other.
func WriteRows(w io.Writer, samples []Sample, names Names) error {
	bw := bufio.NewWriter(w)
	for i := range samples {
		s := &samples[i]
		fmt.Fprintf(bw, "%.3f,%s,%s,%.0f,%.0f,%.3f,%.3f,%.3f,%d,%d,%d,%.3f,%d,%d,%d,%d,%d,%.3f,%d,%d,%d\n",
			ms(s.At), names.Path(s.Path), names.State(s.State), s.RateBps, s.PacingBps,
			ms(s.SRTT), ms(s.MinRTT), ms(s.Jitter), s.Window, s.Inflight, s.Queue, ms(s.QueueDelay),
			s.CodelDrops, s.Repairs, s.Lost, s.TxPackets, s.RxPackets,
			ms(s.Hold), s.ReorderHeld, s.ReorderLate, s.InnerRetx)
	}
	return bw.Flush()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
