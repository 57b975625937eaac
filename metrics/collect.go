package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bondtun/bondtun/session"
)

// SetSource makes snapshot the collector's source: the node's Snapshot method. Until it
// is set, a scrape collects no bondtun metrics.
func (c *Collector) SetSource(snapshot func() session.Snapshot) { c.source.Store(&snapshot) }

// Describe sends the descriptors of every metric the collector can export.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect takes a snapshot of the node and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	src := c.source.Load()
	if src == nil {
		return
	}
	snap := (*src)()
	gauge(ch, c.nodeInfo, 1, snap.Role, c.version)
	gauge(ch, c.sessions, float64(len(snap.Sessions)))
	counters(ch, c.nodeCounters, snap.Node)
	// A peer has one session; should a reconnecting peer show two for a moment, the
	// second is left out: two series with the same labels would fail the scrape.
	seen := make(map[string]bool, len(snap.Sessions))
	for i := range snap.Sessions {
		s := &snap.Sessions[i]
		if seen[s.Peer] {
			continue
		}
		seen[s.Peer] = true
		c.collectSession(ch, s)
	}
}

func (c *Collector) collectSession(ch chan<- prometheus.Metric, s *session.SessionSnapshot) {
	peer := s.Peer
	gauge(ch, c.sessionInfo, 1, peer, s.Cipher)
	counters(ch, c.sessionCounters, s.Counters, peer)
	counters(ch, c.reorderCts, s.Reorder, peer)
	gauge(ch, c.reorderHeld, float64(s.ReorderHeld), peer)
	gauge(ch, c.reorderHold, s.ReorderHold.Seconds(), peer)
	gauge(ch, c.reorderHoldMax, s.ReorderHoldMax.Seconds(), peer)
	var total uint64
	for _, p := range s.Paths {
		total += p.TxBytes
	}
	seen := make(map[string]bool, len(s.Paths))
	for i := range s.Paths {
		p := &s.Paths[i]
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		remote := ""
		if p.Remote.IsValid() {
			remote = p.Remote.String()
		}
		gauge(ch, c.pathInfo, 1, peer, p.Name, strconv.Itoa(int(p.ID)), remote)
		for _, st := range PathStates {
			gauge(ch, c.pathState, bool01(p.Status == st), peer, p.Name, st)
		}
		for _, t := range PathTiers {
			gauge(ch, c.pathTier, bool01(p.Tier == t), peer, p.Name, t)
		}
		gauge(ch, c.pathUsable, bool01(p.Usable), peer, p.Name)
		gauge(ch, c.pathRTT, p.SRTT.Seconds(), peer, p.Name)
		gauge(ch, c.pathMinRTT, p.MinRTT.Seconds(), peer, p.Name)
		gauge(ch, c.pathLoss, p.LossRate, peer, p.Name)
		gauge(ch, c.pathRate, p.RateBps/8, peer, p.Name)
		share := 0.0
		if total > 0 {
			share = float64(p.TxBytes) / float64(total)
		}
		gauge(ch, c.pathShare, share, peer, p.Name)
		gauge(ch, c.pathInflight, float64(p.InflightB), peer, p.Name)
		gauge(ch, c.pathQueued, float64(p.QueuedB), peer, p.Name)
		if p.LastHeard > 0 {
			gauge(ch, c.pathLastHeard, p.LastHeard.Seconds(), peer, p.Name)
		}
		counter(ch, c.pathTxPackets, p.TxPackets, peer, p.Name)
		counter(ch, c.pathTxBytes, p.TxBytes, peer, p.Name)
		counter(ch, c.pathTxLost, p.TxLost, peer, p.Name)
		counter(ch, c.pathRxPackets, p.RxPackets, peer, p.Name)
		counter(ch, c.pathRepairs, p.Repairs, peer, p.Name)
		counter(ch, c.pathSendErrs, p.SendErrors, peer, p.Name)
		counter(ch, c.pathFailovers, p.Failovers, peer, p.Name)
	}
}

// counters sends one counter per entry of cs, its value m[key] (0 when the key is
// missing), its labels labels and then the entry's reason, if it has one.
func counters(ch chan<- prometheus.Metric, cs []mapCounter, m map[string]uint64, labels ...string) {
	for _, mc := range cs {
		lv := labels
		if mc.reason != "" {
			lv = append(labels[:len(labels):len(labels)], mc.reason)
		}
		counter(ch, mc.desc, m[mc.key], lv...)
	}
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
