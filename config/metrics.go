package config

import (
	"net/netip"
	"strconv"
	"strings"
)

// DefaultMetricsPort is the port the examples and error messages suggest for
// metrics.listen. It is not a default: the endpoint exists only when metrics.listen is set.
const DefaultMetricsPort = 9725

// Metrics configures the optional Prometheus endpoint (docs/METRICS.md).
type Metrics struct {
	// Listen is the TCP address the HTTP server serves /metrics on: an IP literal and a
	// port, e.g. 127.0.0.1:9725; 0.0.0.0 or [::] for every address.
	Listen netip.AddrPort
}

// metrics decodes the metrics section.
func (w *walker) metrics(n *node, field string, m *Metrics) error {
	return w.mapping(n, field, func(key string, k, v *node, field string) (err error) {
		switch key {
		case "listen":
			m.Listen, err = w.listenAddr(v, field)
		default:
			err = w.unknown(k, field)
		}
		return err
	})
}

// listenAddr parses "IP:port" or "[IPv6]:port" for a server socket. Names are refused,
// as for endpoints: loading never depends on DNS, and a name could resolve to several
// addresses.
func (w *walker) listenAddr(v *node, field string) (netip.AddrPort, error) {
	s, err := w.text(v, field)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		host, port, ok := strings.Cut(s, ":")
		switch {
		case ok && host == "" && !strings.Contains(port, ":"):
			return netip.AddrPort{}, w.errAt(v, field, "%q has no address: use 127.0.0.1%s for this host only, 0.0.0.0%s or [::]%s for every address", s, s, s, s)
		case ok && !strings.Contains(port, ":"):
			if _, aerr := netip.ParseAddr(host); aerr == nil {
				return netip.AddrPort{}, w.errAt(v, field, "%q: port %q is not a number in 1..65535", s, port)
			}
			if _, perr := strconv.Atoi(port); perr == nil {
				return netip.AddrPort{}, w.errAt(v, field, "%q: host must be an IP literal, not a name (127.0.0.1:%s for this host only)", host, port)
			}
		}
		return netip.AddrPort{}, w.errAt(v, field, "%q is not IP:port, e.g. 127.0.0.1:%d (use [addr]:port for IPv6)", s, DefaultMetricsPort)
	}
	if ap.Addr().Zone() != "" {
		return netip.AddrPort{}, w.errAt(v, field, "%q: zones are not supported", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// metrics checks the metrics section: an address to listen on is required once the
// section is there.
func (k *checker) metrics() {
	m := k.c.Metrics
	a := m.Listen.Addr()
	switch {
	case !m.Listen.IsValid():
		k.fail("metrics.listen", "required when metrics is set (e.g. 127.0.0.1:%d; remove metrics for no endpoint)", DefaultMetricsPort)
	case m.Listen.Port() == 0:
		k.fail("metrics.listen", "port 0: a fixed port is needed for Prometheus to find the endpoint")
	case a.IsMulticast() || a == ipv4Broadcast:
		k.fail("metrics.listen", "%s is not a unicast address", a)
	}
}
