// Package metrics exposes a running node's state as Prometheus metrics (docs/METRICS.md).
//
// A [Collector] reads the session layer's snapshot (the one `bondtun status` shows,
// docs/STATUS.md) when it is scraped and turns it into constant metrics: per node,
// per peer (session) and per path. Nothing is counted on the data path for it; a scrape
// costs one snapshot, a few locks per path. [Listen] serves a private registry (the
// collector plus the Go runtime's and the process's) over HTTP at /metrics.
package metrics
