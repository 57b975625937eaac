package session

import (
	"errors"
	"log/slog"
	"os"
	"sync"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/bondtun/bondtun/framing"
)

// tunWriteCap is the capacity of a TUN write buffer: room for the kernel's virtio header and
// for the GRO coalescing done by wireguard's tun package, which grows a packet in place into
// a 64 KiB super-packet.
const tunWriteCap = framing.PayloadOffset + 65535

// tunWriter writes released inner packets to the TUN device in batches. It is the Deliverer
// of every session of a node; Deliver is safe for concurrent use.
type tunWriter struct {
	dev wgtun.Device
	log *slog.Logger

	mu     sync.Mutex
	bufs   [][]byte
	out    [][]byte
	errors uint64
}

func newTUNWriter(dev wgtun.Device, log *slog.Logger) *tunWriter {
	const batch = 128
	w := &tunWriter{dev: dev, log: log, bufs: make([][]byte, batch), out: make([][]byte, 0, batch)}
	for i := range w.bufs {
		w.bufs[i] = make([]byte, tunWriteCap)
	}
	return w
}

// Deliver copies pkts behind the write offset and writes them in one call per 128, so that
// in-order TCP segments of a flow can be coalesced before they enter the kernel.
func (w *tunWriter) Deliver(pkts [][]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(pkts) > 0 {
		n := min(len(pkts), len(w.bufs))
		out := w.out[:0]
		for i := 0; i < n; i++ {
			b := w.bufs[i]
			m := copy(b[framing.PayloadOffset:], pkts[i])
			out = append(out, b[:framing.PayloadOffset+m])
		}
		if _, err := w.dev.Write(out, framing.PayloadOffset); err != nil {
			w.errors++
			if w.errors&(w.errors-1) == 0 { // log the 1st, 2nd, 4th, 8th, … error
				w.log.Debug("TUN write failed", "err", err, "count", w.errors)
			}
		}
		for i := range out {
			out[i] = nil
		}
		pkts = pkts[n:]
	}
}

// routineReadTUN reads batches from the TUN device into buffers with headroom for the header and
// room for the tag, and hands each batch to handle. It returns when the device is closed.
func routineReadTUN(dev wgtun.Device, log *slog.Logger, handle func(bufs [][]byte, sizes []int, n int)) {
	batch := max(dev.BatchSize(), 1)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, bufSize)
	}
	sizes := make([]int, batch)
	// Read may swap nothing, but keep our own headers so a callee cannot disturb them.
	view := make([][]byte, batch)
	for {
		copy(view, bufs)
		n, err := dev.Read(view, sizes, framing.PayloadOffset)
		if n > 0 {
			handle(view, sizes, n)
		}
		if err != nil {
			if errors.Is(err, wgtun.ErrTooManySegments) {
				continue
			}
			if !errors.Is(err, os.ErrClosed) {
				log.Debug("TUN read ended", "err", err)
			}
			return
		}
	}
}
