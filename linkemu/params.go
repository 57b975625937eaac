package linkemu

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Params describes one direction of an emulated link. The zero value is an
// ideal link: unlimited rate, no delay, no loss, and the default queue bound.
type Params struct {
	// RateBps is the serialization rate in bits per second of IP packet
	// bytes (what a TUN device carries). Zero or negative means unlimited:
	// packets leave the queue the instant they arrive.
	RateBps int64
	// QueueBytes bounds the bytes waiting to be serialized; a packet that
	// would push the backlog past it is tail-dropped. Zero means
	// DefaultQueueBytes. Packets already serialized and in flight (the
	// delay line) do not count against it.
	QueueBytes int
	// Delay is the one-way propagation delay added after serialization.
	Delay time.Duration
	// Jitter is the spread added to Delay per packet: uniform in
	// [-Jitter, +Jitter], or normal with standard deviation Jitter when
	// NormalJitter is set. The total delay never goes below zero.
	Jitter time.Duration
	// NormalJitter selects a normal instead of a uniform jitter distribution.
	NormalJitter bool
	// Reorder lets jitter reorder packets. When false (the default) a packet
	// is never delivered before the one sent ahead of it: its due time is
	// raised to its predecessor's, as netem does with a rate set.
	Reorder bool
	// Loss is the random loss probability in percent (0..100), applied on
	// arrival, before the queue.
	Loss float64
	// Cut drops every packet: those queued, those in flight, and all new ones.
	Cut bool
}

// DefaultQueueBytes is the queue bound used when Params.QueueBytes is zero.
const DefaultQueueBytes = 64 << 10

// MinAutoQueueBytes is the floor of AutoQueueBytes.
const MinAutoQueueBytes = 32 << 10

// AutoQueueBytes returns a queue of one bandwidth-delay product of the base
// round trip (rate × 2 × oneWay), and at least MinAutoQueueBytes.
func AutoQueueBytes(rateBps int64, oneWay time.Duration) int {
	bdp := float64(rateBps) * 2 * oneWay.Seconds() / 8
	if bdp < MinAutoQueueBytes {
		return MinAutoQueueBytes
	}
	if bdp > 1<<30 {
		return 1 << 30
	}
	return int(bdp)
}

// Validate reports whether p is usable.
func (p Params) Validate() error {
	switch {
	case p.QueueBytes < 0:
		return errors.New("queue must not be negative")
	case p.Delay < 0:
		return errors.New("delay must not be negative")
	case p.Jitter < 0:
		return errors.New("jitter must not be negative")
	case !(p.Loss >= 0 && p.Loss <= 100): // also rejects NaN
		return errors.New("loss must be within 0..100 percent")
	}
	return nil
}

// String formats p in the key=value form accepted by Set.
func (p Params) String() string {
	dist := "uniform"
	if p.NormalJitter {
		dist = "normal"
	}
	return fmt.Sprintf("rate=%s queue=%d delay=%v jitter=%v dist=%s reorder=%t loss=%g cut=%t",
		FormatRate(p.RateBps), p.QueueBytes, p.Delay, p.Jitter, dist, p.Reorder, p.Loss, p.Cut)
}

// Set parses one "key=value" assignment into p. Keys: rate (see ParseRate),
// queue (bytes), delay and jitter (Go durations such as 10ms), dist
// (uniform|normal), reorder and cut (true|false), loss (percent, an optional
// trailing "%"). Set leaves p unchanged on error and does not Validate.
func (p *Params) Set(kv string) error {
	key, val, ok := strings.Cut(kv, "=")
	if !ok || val == "" {
		return fmt.Errorf("%q: want key=value", kv)
	}
	q := *p
	var err error
	switch key {
	case "rate":
		q.RateBps, err = ParseRate(val)
	case "queue":
		q.QueueBytes, err = strconv.Atoi(val)
	case "delay":
		q.Delay, err = time.ParseDuration(val)
	case "jitter":
		q.Jitter, err = time.ParseDuration(val)
	case "dist":
		switch val {
		case "uniform":
			q.NormalJitter = false
		case "normal":
			q.NormalJitter = true
		default:
			err = errors.New("want uniform or normal")
		}
	case "reorder":
		q.Reorder, err = strconv.ParseBool(val)
	case "cut":
		q.Cut, err = strconv.ParseBool(val)
	case "loss":
		q.Loss, err = strconv.ParseFloat(strings.TrimSuffix(val, "%"), 64)
	default:
		return fmt.Errorf("%q: unknown key %q", kv, key)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", kv, err)
	}
	*p = q
	return nil
}

// rateUnits maps tc-style rate suffixes to bits per second. Longer suffixes
// come first so that "kbit" is not read as "bit".
var rateUnits = []struct {
	suffix string
	mult   float64
}{
	{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1},
	{"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3}, {"bps", 8},
}

// ParseRate parses a rate in tc's notation: a number followed by bit, kbit,
// mbit or gbit (bits/s), or bps, kbps, mbps, gbps (bytes/s, as in tc), or a
// bare number of bits/s. "0" and "unlimited" mean no rate limit (0).
func ParseRate(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "unlimited" {
		return 0, nil
	}
	mult := 1.0
	for _, u := range rateUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !(v >= 0) || v*mult > 1e15 {
		return 0, fmt.Errorf("bad rate %q", s)
	}
	return int64(v * mult), nil
}

// FormatRate formats bits/s in the largest exact tc unit ("50mbit").
func FormatRate(bps int64) string {
	switch {
	case bps <= 0:
		return "unlimited"
	case bps%1e9 == 0:
		return strconv.FormatInt(bps/1e9, 10) + "gbit"
	case bps%1e6 == 0:
		return strconv.FormatInt(bps/1e6, 10) + "mbit"
	case bps%1e3 == 0:
		return strconv.FormatInt(bps/1e3, 10) + "kbit"
	}
	return strconv.FormatInt(bps, 10) + "bit"
}
