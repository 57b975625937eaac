package main

import (
	"log/slog"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/metrics"
	"github.com/bondtun/bondtun/session"
)

// metricsEndpoint is `up`'s Prometheus endpoint (docs/METRICS.md); nil without
// metrics.listen, and then its methods do nothing.
type metricsEndpoint struct{ srv *metrics.Server }

// startMetrics binds metrics.listen, if set, before `up` changes anything on the host, so
// that a busy port ends `up` cleanly. The node is attached later (set).
func startMetrics(cfg *config.Config, log *slog.Logger) (*metricsEndpoint, error) {
	if cfg.Metrics == nil {
		return nil, nil
	}
	srv, err := metrics.Listen(cfg.Metrics.Listen.String(), currentVersion(), log)
	if err != nil {
		return nil, err
	}
	log.Info("metrics endpoint", "url", "http://"+srv.Addr().String()+metrics.Path)
	return &metricsEndpoint{srv}, nil
}

// set makes the node's snapshot what a scrape reports.
func (m *metricsEndpoint) set(snapshot func() session.Snapshot) {
	if m != nil {
		m.srv.Collector.SetSource(snapshot)
	}
}

// Close stops the endpoint.
func (m *metricsEndpoint) Close() {
	if m != nil {
		m.srv.Close()
	}
}
