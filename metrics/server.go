package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is the only URL path the server answers.
const Path = "/metrics"

// The HTTP server's limits. A scrape is one small request; these only keep slow or idle
// clients from holding connections and goroutines (Prometheus's default scrape timeout
// is 10 s).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 16 << 10
	handlerTimeout    = 20 * time.Second // under writeTimeout, so the client gets the 503
	maxInFlight       = 4                // concurrent scrapes; more get 503
	shutdownTimeout   = 2 * time.Second
)

// NewRegistry returns a private registry (never the global one) holding c and the Go
// runtime's and the process's collectors.
func NewRegistry(c prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewHandler serves reg at [Path] and answers 404 to every other path. Errors while
// gathering are logged and the metrics that could be gathered are served.
func NewHandler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	h := promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxInFlight,
		Timeout:             handlerTimeout,
	}))
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	return mux
}

// Server is a running metrics endpoint.
type Server struct {
	Collector *Collector
	srv       *http.Server
	ln        net.Listener
	done      chan struct{}
}

// Listen serves a new Collector's metrics (version in bondtun_node_info) on the TCP
// address addr until Close. It returns once the socket is bound, so a busy port is an
// error here; the collector collects nothing until its source is set.
func Listen(addr, version string, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	c := NewCollector(version)
	s := &Server{
		Collector: c,
		ln:        ln,
		done:      make(chan struct{}),
		srv: &http.Server{
			Handler:           NewHandler(NewRegistry(c), log),
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server: scrapes under way get a moment to finish, then every
// connection is closed.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}
