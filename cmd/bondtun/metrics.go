package main

import (
	"errors"
	"log/slog"
	"sync"
	"syscall"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/metrics"
	"github.com/bondtun/bondtun/session"
)

// metricsEndpoint is `up`'s Prometheus endpoint (docs/METRICS.md): serving metrics.listen
// when the file sets it, and moved, started or stopped by a reload (update).
type metricsEndpoint struct {
	log *slog.Logger

	mu       sync.Mutex
	srv      *metrics.Server         // nil: no endpoint
	snapshot func() session.Snapshot // the node's, once it runs (set)
}

// startMetrics binds metrics.listen, if set, before `up` changes anything on the host, so
// that a busy port ends `up` cleanly. The node is attached later (set).
func startMetrics(cfg *config.Config, log *slog.Logger) (*metricsEndpoint, error) {
	m := &metricsEndpoint{log: log}
	if err := m.update(cfg.Metrics); err != nil {
		return nil, err
	}
	return m, nil
}

// listenMetrics starts an endpoint on mc's address.
func listenMetrics(mc *config.Metrics, log *slog.Logger) (*metrics.Server, error) {
	srv, err := metrics.Listen(mc.Listen.String(), currentVersion(), log)
	if err != nil {
		return nil, err
	}
	log.Info("metrics endpoint", "url", "http://"+srv.Addr().String()+metrics.Path)
	return srv, nil
}

// update makes the endpoint serve mc (nil: none). A new address is bound before the old
// endpoint stops, so a reload to a busy port fails with the old one still serving; only
// when the old endpoint holds the port itself (the same port on another address of the
// same family, or the wildcard) is it stopped first, and restarted if the new one still
// cannot bind.
func (m *metricsEndpoint) update(mc *config.Metrics) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srv != nil && mc != nil && m.srv.Addr().String() == mc.Listen.String() {
		return nil
	}
	if mc == nil {
		if m.srv != nil {
			m.srv.Close()
			m.srv = nil
			m.log.Info("metrics endpoint stopped")
		}
		return nil
	}
	srv, err := listenMetrics(mc, m.log)
	if err != nil && m.srv != nil && errors.Is(err, syscall.EADDRINUSE) {
		oldAddr := m.srv.Addr().String()
		m.srv.Close()
		m.srv = nil
		if srv, err = listenMetrics(mc, m.log); err != nil {
			if back, berr := metrics.Listen(oldAddr, currentVersion(), m.log); berr == nil {
				m.srv = back
				if m.snapshot != nil {
					back.Collector.SetSource(m.snapshot)
				}
			} else {
				m.log.Error("metrics endpoint lost: the old address cannot be bound again", "addr", oldAddr, "err", berr)
			}
		}
	}
	if err != nil {
		return err
	}
	if m.snapshot != nil {
		srv.Collector.SetSource(m.snapshot)
	}
	if m.srv != nil {
		m.srv.Close()
	}
	m.srv = srv
	return nil
}

// set makes the node's snapshot what a scrape reports.
func (m *metricsEndpoint) set(snapshot func() session.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.snapshot = snapshot
	if m.srv != nil {
		m.srv.Collector.SetSource(snapshot)
	}
}

// Close stops the endpoint.
func (m *metricsEndpoint) Close() {
	m.update(nil)
}
