package config

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bondtun/bondtun/crypto"
)

// decode turns the file's text into a Config without defaults or cross-field checks.
// It stops at the first error, which is therefore the first in file order. The
// version is checked before anything else so that a file written for a newer format
// gets "unsupported version" rather than "unknown field".
func decode(path string, data []byte, readKey keyFileReader, secrets bool) (*Config, error) {
	w := &walker{file: path, readKey: readKey, secrets: secrets}
	root, err := w.parseDocument(data)
	if err != nil {
		return nil, err
	}
	return w.decodeRoot(root)
}

// decodeRoot decodes the tree of the file's root node.
func (w *walker) decodeRoot(root *node) (*Config, error) {
	c := &Config{Path: w.file, tree: root}
	w.record("", int(root.line))
	if err := w.version(root, c); err != nil {
		return nil, err
	}
	err := w.mapping(root, "", func(key string, k, v *node, field string) error {
		return w.rootKey(c, key, k, v, field)
	})
	if err != nil {
		return nil, err
	}
	if c.Listen == nil && hasKey(root, "listen") {
		c.Listen = &Listen{} // "listen:" with no body still makes a server
	}
	if c.Gateway == nil && hasKey(root, "gateway") {
		c.Gateway = &Gateway{} // "gateway:" alone turns it on with the defaults
	}
	return c, nil
}

// rootKey decodes the value v of key (k) of the root mapping into c.
func (w *walker) rootKey(c *Config, key string, k, v *node, field string) error {
	switch key {
	case "version":
		return nil // read by w.version
	case "private_key":
		return w.privateKey(v, field, c)
	case "private_key_file":
		return w.privateKeyFile(v, field, c)
	case "log_level":
		return w.logLevel(v, field, c)
	case "tun":
		return w.tun(v, field, &c.TUN)
	case "uplinks":
		return w.uplinks(v, field, c)
	case "listen":
		c.Listen = &Listen{}
		return w.listen(v, field, c.Listen)
	case "peers":
		return w.peers(v, field, c)
	case "gateway":
		c.Gateway = &Gateway{}
		return w.gateway(v, field, c.Gateway)
	case "scheduler":
		s, err := w.str(v, field)
		c.Scheduler = s
		return err
	case "table_base":
		n, err := w.integer(v, field)
		c.TableBase = n
		return err
	case "metrics":
		c.Metrics = &Metrics{}
		return w.metrics(v, field, c.Metrics)
	}
	return w.unknown(k, field)
}

// uplinks reads the uplinks list into c.Uplinks; an uplink with an error is appended
// too, as far as it was read.
func (w *walker) uplinks(n *node, field string, c *Config) error {
	return w.sequence(n, field, func(_ int, v *node, field string) error {
		u, err := w.uplink(v, field)
		c.Uplinks = append(c.Uplinks, u)
		return err
	})
}

// peers reads the peers list into c.Peers (made to the list's length at once: a server
// may have thousands); a peer with an error is appended too, as far as it was read.
func (w *walker) peers(n *node, field string, c *Config) error {
	if n.kind == sequenceNode && len(n.content) > 0 {
		c.Peers = make([]Peer, 0, len(n.content))
	}
	return w.sequence(n, field, func(_ int, v *node, field string) error {
		p, err := w.peer(v, field)
		c.Peers = append(c.Peers, p)
		return err
	})
}

// version reads the version key of the root mapping, if there is one; validate
// reports a missing version.
func (w *walker) version(root *node, c *Config) error {
	if root.kind != mappingNode {
		return nil // w.mapping reports it
	}
	for i := 0; i+1 < len(root.content); i += 2 {
		k, v := root.content[i], root.content[i+1]
		if k.value != "version" || k.kind != scalarNode || isNull(v) {
			continue
		}
		if err := w.checkPlain(v, "version"); err != nil {
			return err
		}
		n, err := w.integer(v, "version")
		if err != nil {
			return err
		}
		if n != Version {
			return w.errAt(v, "version", "unsupported version %d (this build reads version %d)", n, Version)
		}
		c.Version = n
		w.record("version", int(v.line))
		return nil
	}
	return nil
}

func hasKey(m *node, key string) bool {
	for i := 0; i+1 < len(m.content); i += 2 {
		if m.content[i].value == key {
			return true
		}
	}
	return false
}

func (w *walker) privateKey(v *node, field string, c *Config) error {
	if c.SecretFile != "" {
		return w.errAt(v, field, "set only one of private_key and private_key_file")
	}
	s, err := w.text(v, field)
	if err != nil {
		return err
	}
	c.SecretFile, c.secretField = w.file, field
	if !w.secrets {
		return nil
	}
	k, err := crypto.ParsePrivateKey(s)
	if err != nil {
		return &Error{File: w.file, Line: int(v.line), Field: field, Msg: "bad key: " + err.Error(), Err: err}
	}
	c.PrivateKey = k
	return nil
}

// keyFileReader returns the contents of a key file.
type keyFileReader func(name string) ([]byte, error)

// readPrivateKeyFile is readKeyFile for [LoadPrivate]: a file that group or others may
// access is refused before it is opened.
func readPrivateKeyFile(name string) ([]byte, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&secretPermMask != 0 {
		return nil, fmt.Errorf("%s holds the private key and is accessible by group or others (mode %04o); fix it with: chmod 600 %s",
			name, perm, shellQuote(name))
	}
	return readKeyFile(name)
}

// readKeyFile reads a key file. Only regular files are opened (checked with Stat
// first, since merely opening some devices has effects or blocks), and only the first
// few KiB are read.
func readKeyFile(name string) ([]byte, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxKeyFileSize))
}

// privateKeyFile reads the key from a file, relative to the config file's directory.
// Its permissions are checked by the reader [LoadPrivate] passes, before it opens it.
func (w *walker) privateKeyFile(v *node, field string, c *Config) error {
	if c.SecretFile != "" {
		return w.errAt(v, field, "set only one of private_key and private_key_file")
	}
	name, err := w.str(v, field)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(filepath.Dir(w.file), name)
	}
	c.SecretFile, c.secretField = name, field
	if !w.secrets {
		return nil
	}
	data, err := w.readKey(name)
	if err != nil {
		return &Error{File: w.file, Line: int(v.line), Field: field, Msg: err.Error(), Err: err}
	}
	k, err := crypto.ParsePrivateKey(strings.TrimSpace(string(data)))
	if err != nil {
		return &Error{File: w.file, Line: int(v.line), Field: field, Msg: name + ": bad key: " + err.Error(), Err: err}
	}
	c.PrivateKey = k
	return nil
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func (w *walker) logLevel(v *node, field string, c *Config) error {
	s, err := w.text(v, field)
	if err != nil {
		return err
	}
	l, ok := logLevels[s]
	if !ok {
		return w.errAt(v, field, "%q is not one of debug, info, warn, error", s)
	}
	c.LogLevel = l
	return nil
}

func (w *walker) tun(n *node, field string, t *TUN) error {
	return w.mapping(n, field, func(key string, k, v *node, field string) (err error) {
		switch key {
		case "name":
			t.Name, err = w.str(v, field)
		case "addresses":
			t.Addresses, err = w.prefixes(v, field)
		case "mtu":
			t.MTU, err = w.integer(v, field)
		case "routes":
			t.Routes, err = w.prefixes(v, field)
		case "table":
			t.Table, err = w.integer(v, field)
		case "fwmark":
			var m int
			if m, err = w.integer(v, field); err == nil {
				if m < 1 || m > 1<<32-1 {
					err = w.errAt(v, field, "%d is out of range 1..%#x (0x1cb5 is the default)", m, uint32(1<<32-1))
				}
				t.FWMark = uint32(m)
			}
		case "while_down":
			var s string
			if s, err = w.str(v, field); err == nil {
				t.WhileDown = WhileDown(s)
				if t.WhileDown != WhileDownBlock && t.WhileDown != WhileDownDirect {
					err = w.errAt(v, field, "%q is not one of block, direct", s)
				}
			}
		default:
			err = w.unknown(k, field)
		}
		return err
	})
}

func (w *walker) uplink(n *node, field string) (u Uplink, err error) {
	err = w.mapping(n, field, func(key string, k, v *node, field string) (err error) {
		switch key {
		case "name":
			u.Name, err = w.str(v, field)
		case "interface":
			u.Interface, err = w.str(v, field)
		case "address":
			u.Address, err = w.addr(v, field)
		case "gateway":
			u.Gateway, err = w.addr(v, field)
		case "table":
			u.Table, err = w.integer(v, field)
		case "tier":
			var s string
			s, err = w.str(v, field)
			u.Tier = Tier(s)
		default:
			err = w.unknown(k, field)
		}
		return err
	})
	return u, err
}

func (w *walker) listen(n *node, field string, l *Listen) error {
	return w.mapping(n, field, func(key string, k, v *node, field string) (err error) {
		switch key {
		case "port":
			l.Port, err = w.integer(v, field)
		case "addresses":
			l.Addresses, err = w.addrs(v, field)
		default:
			err = w.unknown(k, field)
		}
		return err
	})
}

func (w *walker) peer(n *node, field string) (p Peer, err error) {
	err = w.mapping(n, field, func(key string, k, v *node, field string) (err error) {
		switch key {
		case "name":
			p.Name, err = w.str(v, field)
		case "public_key":
			var s string
			if s, err = w.text(v, field); err != nil {
				return err
			}
			if p.PublicKey, err = crypto.ParsePublicKey(s); err != nil {
				return &Error{File: w.file, Line: int(v.line), Field: field, Msg: "bad key: " + err.Error(), Err: err}
			}
		case "endpoint":
			err = w.endpoint(v, field, &p)
		case "allowed_ips":
			p.AllowedIPs, err = w.prefixes(v, field)
		default:
			err = w.unknown(k, field)
		}
		return err
	})
	return p, err
}

// endpoint parses "IP:port", "[IPv6]:port" or "name:port". A name is checked for
// form only (RFC 1123 host name syntax), never resolved: loading must not depend on DNS.
func (w *walker) endpoint(v *node, field string, p *Peer) error {
	s, err := w.str(v, field)
	if err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		host, port, serr := net.SplitHostPort(s)
		if serr != nil || strings.Contains(host, ":") {
			return w.errAt(v, field, "%q is not IP:port or name:port (use [addr]:port for IPv6)", s)
		}
		if n, perr := strconv.ParseUint(port, 10, 16); perr != nil || n == 0 {
			return w.errAt(v, field, "%q: port %q is not 1..65535", s, port)
		}
		if _, aerr := netip.ParseAddr(host); aerr == nil {
			return w.errAt(v, field, "%q is not IP:port or name:port (use [addr]:port for IPv6)", s)
		}
		if !validHostName(host) {
			return w.errAt(v, field, "%q: %q is neither an IP address nor a host name", s, host)
		}
		p.EndpointName = s
		return nil
	}
	if ap.Addr().Zone() != "" {
		return w.errAt(v, field, "%q: zones are not supported", s)
	}
	p.Endpoint = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return nil
}

// validHostName reports whether s is a host name by RFC 1123 §2.1: dot-separated labels
// of 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen, at most
// 253 characters, with an optional final dot. The last label must not be all digits
// (RFC 3696 §2), so a mistyped IPv4 address such as 10.0.0.300 is not taken for a name.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// gateway reads the gateway section: out (a name or a list), forward and nat (lists of
// families; nat: [] is kept as an empty, non-nil list: "no NAT").
func (w *walker) gateway(n *node, field string, g *Gateway) error {
	return w.mapping(n, field, func(key string, k, v *node, field string) (err error) {
		switch key {
		case "out":
			if v.kind == scalarNode {
				var name string
				name, err = w.str(v, field)
				g.Out = []string{name}
				return err
			}
			err = w.sequence(v, field, func(_ int, v *node, sub string) error {
				name, err := w.str(v, sub)
				g.Out = append(g.Out, name)
				return err
			})
		case "forward":
			g.Forward, err = w.families(v, field)
		case "nat":
			g.NAT, err = w.families(v, field)
		default:
			err = w.unknown(k, field)
		}
		return err
	})
}

// families reads a list of ipv4 and ipv6; never nil.
func (w *walker) families(n *node, field string) ([]Family, error) {
	out := []Family{}
	err := w.sequence(n, field, func(_ int, v *node, sub string) error {
		s, err := w.str(v, sub)
		if err != nil {
			return err
		}
		switch f := Family(s); f {
		case IPv4, IPv6:
			out = append(out, f)
			return nil
		}
		return w.errAt(v, sub, "%q is not one of ipv4, ipv6", s)
	})
	return out, err
}
