package config

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/bondtun/bondtun/crypto"
)

// decode turns the file's text into a Config without defaults or cross-field checks.
// It stops at the first error, which is therefore the first in file order. The
// version is checked before anything else so that a file written for a newer format
// gets "unsupported version" rather than "unknown field".
func decode(path string, data []byte, readKey keyFileReader, secrets bool) (*Config, error) {
	w := &walker{file: path, lines: make(map[string]int), readKey: readKey, secrets: secrets}
	root, err := w.parseDocument(data)
	if err != nil {
		return nil, err
	}
	c := &Config{Path: path, lines: w.lines}
	w.lines[""] = root.Line
	if err := w.version(root, c); err != nil {
		return nil, err
	}
	err = w.mapping(root, "", func(key string, k, v *yaml.Node, field string) error {
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
			return w.sequence(v, field, func(_ int, v *yaml.Node, field string) error {
				u, err := w.uplink(v, field)
				c.Uplinks = append(c.Uplinks, u)
				return err
			})
		case "listen":
			c.Listen = &Listen{}
			return w.listen(v, field, c.Listen)
		case "peers":
			return w.sequence(v, field, func(_ int, v *yaml.Node, field string) error {
				p, err := w.peer(v, field)
				c.Peers = append(c.Peers, p)
				return err
			})
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
	})
	if err != nil {
		return nil, err
	}
	if c.Listen == nil && hasKey(root, "listen") {
		c.Listen = &Listen{} // "listen:" with no body still makes a server
	}
	return c, nil
}

// version reads the version key of the root mapping, if there is one; validate
// reports a missing version.
func (w *walker) version(root *yaml.Node, c *Config) error {
	if root.Kind != yaml.MappingNode {
		return nil // w.mapping reports it
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "version" || k.Kind != yaml.ScalarNode || isNull(v) {
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
		w.lines["version"] = v.Line
		return nil
	}
	return nil
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

func (w *walker) privateKey(v *yaml.Node, field string, c *Config) error {
	if c.SecretFile != "" {
		return w.errAt(v, field, "set only one of private_key and private_key_file")
	}
	s, err := w.str(v, field)
	if err != nil {
		return err
	}
	c.SecretFile, c.secretField = w.file, field
	if !w.secrets {
		return nil
	}
	k, err := crypto.ParsePrivateKey(s)
	if err != nil {
		return &Error{File: w.file, Line: v.Line, Field: field, Msg: "bad key: " + err.Error(), Err: err}
	}
	c.PrivateKey = k
	return nil
}

// keyFileReader returns the contents of a key file.
type keyFileReader func(name string) ([]byte, error)

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
// Its permissions are not checked here: [CheckSecretPermissions] does, for `up`.
func (w *walker) privateKeyFile(v *yaml.Node, field string, c *Config) error {
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
		return &Error{File: w.file, Line: v.Line, Field: field, Msg: err.Error(), Err: err}
	}
	k, err := crypto.ParsePrivateKey(strings.TrimSpace(string(data)))
	if err != nil {
		return &Error{File: w.file, Line: v.Line, Field: field, Msg: name + ": bad key: " + err.Error(), Err: err}
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

func (w *walker) logLevel(v *yaml.Node, field string, c *Config) error {
	s, err := w.str(v, field)
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

func (w *walker) tun(n *yaml.Node, field string, t *TUN) error {
	return w.mapping(n, field, func(key string, k, v *yaml.Node, field string) (err error) {
		switch key {
		case "name":
			t.Name, err = w.str(v, field)
		case "addresses":
			t.Addresses, err = w.prefixes(v, field)
		case "mtu":
			t.MTU, err = w.integer(v, field)
		case "routes":
			t.Routes, err = w.prefixes(v, field)
		default:
			err = w.unknown(k, field)
		}
		return err
	})
}

func (w *walker) uplink(n *yaml.Node, field string) (u Uplink, err error) {
	err = w.mapping(n, field, func(key string, k, v *yaml.Node, field string) (err error) {
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

func (w *walker) listen(n *yaml.Node, field string, l *Listen) error {
	return w.mapping(n, field, func(key string, k, v *yaml.Node, field string) (err error) {
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

func (w *walker) peer(n *yaml.Node, field string) (p Peer, err error) {
	err = w.mapping(n, field, func(key string, k, v *yaml.Node, field string) (err error) {
		switch key {
		case "name":
			p.Name, err = w.str(v, field)
		case "public_key":
			var s string
			if s, err = w.str(v, field); err != nil {
				return err
			}
			if p.PublicKey, err = crypto.ParsePublicKey(s); err != nil {
				return &Error{File: w.file, Line: v.Line, Field: field, Msg: "bad key: " + err.Error(), Err: err}
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

// endpoint parses "IP:port" or "[IPv6]:port". Host names are refused in version 1:
// resolving them would make loading depend on DNS.
func (w *walker) endpoint(v *yaml.Node, field string, p *Peer) error {
	s, err := w.str(v, field)
	if err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		if host, port, ok := strings.Cut(s, ":"); ok && !strings.Contains(port, ":") {
			if _, perr := strconv.Atoi(port); perr == nil {
				return w.errAt(v, field, "%q: host must be an IP literal in version 1, not a name", host)
			}
		}
		return w.errAt(v, field, "%q is not IP:port (use [addr]:port for IPv6)", s)
	}
	if ap.Addr().Zone() != "" {
		return w.errAt(v, field, "%q: zones are not supported", s)
	}
	p.Endpoint = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return nil
}
