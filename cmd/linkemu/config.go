package main

import (
	"fmt"
	"strconv"

	"github.com/bondtun/bondtun/linkemu"
)

// dirFlags holds one direction's shaping flags as typed on the command
// line. An empty field in the "-ba" set means "same as the a→b value".
type dirFlags struct {
	rate, delay, jitter, loss, queue string
}

// inherit returns o with its empty fields taken from base.
func (o dirFlags) inherit(base dirFlags) dirFlags {
	pick := func(a, b string) string {
		if a == "" {
			return b
		}
		return a
	}
	return dirFlags{
		rate:   pick(o.rate, base.rate),
		delay:  pick(o.delay, base.delay),
		jitter: pick(o.jitter, base.jitter),
		loss:   pick(o.loss, base.loss),
		queue:  pick(o.queue, base.queue),
	}
}

// params converts the flags to Params. queue is a byte count or "auto":
// one bandwidth-delay product of the base RTT (rate × 2 × delay), at least
// 32 KiB.
func (f dirFlags) params(dist string, reorder bool) (linkemu.Params, error) {
	var p linkemu.Params
	for _, kv := range []string{"rate=" + f.rate, "delay=" + f.delay, "jitter=" + f.jitter,
		"loss=" + f.loss, "dist=" + dist} {
		if err := p.Set(kv); err != nil {
			return p, err
		}
	}
	p.Reorder = reorder
	switch f.queue {
	case "auto":
		p.QueueBytes = linkemu.AutoQueueBytes(p.RateBps, p.Delay)
	default:
		q, err := strconv.Atoi(f.queue)
		if err != nil {
			return p, fmt.Errorf("queue %q: want a byte count or auto", f.queue)
		}
		p.QueueBytes = q
	}
	return p, p.Validate()
}
