package config

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// checker collects validation errors so that validate can report the first one in
// file order, whatever order the rules run in.
type checker struct {
	c       *Config
	errs    []*Error
	badBase bool // table_base failed: the auto tables derived from it are not reported again
}

// fail records an error for field, placed at the field's line or, when the field is
// absent, at the line of its nearest present parent.
func (k *checker) fail(field, format string, args ...any) {
	k.errs = append(k.errs, k.c.ErrorAt(field, format, args...))
}

// lineOf returns the line of field or of its nearest recorded parent, 0 if none.
func (c *Config) lineOf(field string) int {
	for {
		if l, ok := c.line(field); ok {
			return l
		}
		if field == "" {
			return 0
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			field = ""
		} else {
			field = field[:i]
		}
	}
}

// validate checks every rule on a populated config and returns the first error in
// file order, or nil. It does not modify c.
func validate(c *Config) error {
	k := &checker{c: c}
	k.root()
	k.tun()
	k.tableBase()
	if c.IsClient() {
		k.uplinks()
	}
	if c.Listen != nil {
		k.listen()
	}
	k.peers()
	if c.Gateway != nil {
		k.gateway()
	}
	if c.Metrics != nil {
		k.metrics()
	}
	if len(k.errs) == 0 {
		return nil
	}
	// Stable, so errors without a line (a Config built in Go) keep rule order.
	slices.SortStableFunc(k.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	return k.errs[0]
}

func (k *checker) root() {
	c := k.c
	switch {
	case c.Version == 0:
		k.fail("version", "required (version: %d)", Version)
	case c.Version != Version:
		k.fail("version", "unsupported version %d (this build reads version %d)", c.Version, Version)
	}
	if c.PrivateKey.IsZero() && c.SecretFile == "" {
		k.fail("private_key", "required (or private_key_file)")
	}
	switch c.LogLevel {
	case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
	default:
		k.fail("log_level", "level %v is not one of debug, info, warn, error", c.LogLevel)
	}
	switch {
	case len(c.Uplinks) > 0 && c.Listen != nil:
		k.fail("listen", "a side is a client (uplinks) or a server (listen), not both")
	case len(c.Uplinks) == 0 && c.Listen == nil:
		k.fail("", "neither uplinks (client) nor listen (server) is set")
	}
	switch c.Scheduler {
	case SchedulerEAT, SchedulerDRR, SchedulerLowLatency:
	default:
		k.fail("scheduler", "%q is not one of eat, drr, lowlatency", c.Scheduler)
	}
}

func (k *checker) tun() {
	t := &k.c.TUN
	if !validTUNName(t.Name) {
		k.fail("tun.name", "%q is not an interface name (at most %d of A-Z a-z 0-9 _ . -, or a pattern with one %%d)", t.Name, maxIfaceNameLen)
	}
	if len(t.Addresses) == 0 {
		k.fail("tun.addresses", "at least one address is required")
	}
	seen := make(map[netip.Addr]int)
	for i, p := range t.Addresses {
		if j, dup := seen[p.Addr()]; dup {
			k.fail(fmt.Sprintf("tun.addresses[%d]", i), "%s is already used by tun.addresses[%d]", p.Addr(), j)
		}
		seen[p.Addr()] = i
	}
	if t.MTU != 0 && (t.MTU < MinMTU || t.MTU > MaxMTU) {
		k.fail("tun.mtu", "%d is out of range %d..%d (or 0 for auto)", t.MTU, MinMTU, MaxMTU)
	}
	k.canonicalPrefixes("tun.routes", t.Routes)
	if t.WhileDown == WhileDownDirect && !k.c.IsClient() {
		k.fail("tun.while_down", "direct is for a client (a server has no tunnel to be down)")
	}
	if t.Table < 1 || t.Table > maxTable {
		k.fail("tun.table", "%d is out of range 1..%d (or 0 for %d)", t.Table, maxTable, DefaultTunnelTable)
	} else if t.Table >= firstReservedTable && t.Table <= lastReservedTable {
		k.fail("tun.table", "table %d is reserved by the kernel (default, main, local)", t.Table)
	}
}

// canonicalDistinct reports whether canonicalPrefixes finds nothing wrong with ps: quickly,
// without building the fields it would name.
func canonicalDistinct(ps []netip.Prefix) bool {
	for i, p := range ps {
		if p.Masked() != p || slices.Contains(ps[:i], p) {
			return false
		}
	}
	return true
}

// canonicalPrefixes refuses prefixes with host bits set (10.78.0.1/24): the kernel
// refuses such routes, and for allowed_ips the intent is ambiguous.
func (k *checker) canonicalPrefixes(field string, ps []netip.Prefix) {
	seen := make(map[netip.Prefix]int)
	for i, p := range ps {
		sub := fmt.Sprintf("%s[%d]", field, i)
		if m := p.Masked(); m != p {
			k.fail(sub, "%s has host bits set; did you mean %s?", p, m)
		}
		if j, dup := seen[p]; dup {
			k.fail(sub, "%s is already listed as %s[%d]", p, field, j)
		}
		seen[p] = i
	}
}

func (k *checker) listen() {
	l := k.c.Listen
	if l.Port < 1 || l.Port > 65535 {
		k.fail("listen.port", "%d is out of range 1..65535", l.Port)
	}
	seen := make(map[netip.Addr]int)
	for i, a := range l.Addresses {
		sub := fmt.Sprintf("listen.addresses[%d]", i)
		if !usableUnicast(a) {
			k.fail(sub, "%s is not a unicast address (leave addresses empty to listen on all)", a)
		}
		if j, dup := seen[a]; dup {
			k.fail(sub, "%s is already listed as listen.addresses[%d]", a, j)
		}
		seen[a] = i
	}
}

var ipv4Broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// usableUnicast reports whether a can be bound to or sent to.
func usableUnicast(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && a != ipv4Broadcast
}

var (
	uplinkNameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	ifaceNameRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)
)

// validPeerName reports whether s is 1 to 32 of A-Z a-z 0-9 _ . - (a loop rather than a
// regular expression: a server checks the names of all its peers at every reload).
func validPeerName(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validIfaceName follows the kernel's dev_valid_name for the names we accept.
func validIfaceName(s string) bool {
	return ifaceNameRE.MatchString(s) && s != "." && s != ".."
}

// validTUNName also accepts a kernel pattern with exactly one "%d" ("bt%d").
func validTUNName(s string) bool {
	if strings.Count(s, "%d") == 1 && len(s) <= maxIfaceNameLen {
		rest := strings.Replace(s, "%d", "", 1)
		return ifaceNameRE.MatchString(rest)
	}
	return validIfaceName(s)
}

// gateway checks the gateway section of a server.
func (k *checker) gateway() {
	g := k.c.Gateway
	if k.c.Listen == nil {
		k.fail("gateway", "only a server forwards its peers' traffic; remove gateway from a client")
		return
	}
	seen := make(map[string]int)
	for i, name := range g.Out {
		f := fmt.Sprintf("gateway.out[%d]", i)
		if len(g.Out) == 1 {
			if _, listed := k.c.line(f); !listed {
				f = "gateway.out" // out: eth0, a scalar
			}
		}
		switch j, dup := seen[name]; {
		case !validIfaceName(name):
			k.fail(f, "%q is not an interface name (at most %d of A-Z a-z 0-9 _ . -)", name, maxIfaceNameLen)
		case name == k.c.TUN.Name:
			k.fail(f, "%q is the tunnel's own device", name)
		case dup:
			k.fail(f, "%q is already listed as gateway.out[%d]", name, j)
		}
		seen[name] = i
	}
	if len(g.Forward) == 0 {
		k.fail("gateway.forward", "at least one of ipv4, ipv6 is required")
	}
	if !k.distinctFamilies("gateway.forward", g.Forward) {
		return // nat defaults to forward: its errors would repeat forward's
	}
	k.distinctFamilies("gateway.nat", g.NAT)
	for i, f := range g.NAT {
		if !slices.Contains(g.Forward, f) {
			k.fail(fmt.Sprintf("gateway.nat[%d]", i), "%s is not forwarded (add it to gateway.forward)", f)
		}
	}
}

// distinctFamilies checks a list of families and reports whether it is fine.
func (k *checker) distinctFamilies(field string, fs []Family) bool {
	ok := true
	for i, f := range fs {
		switch {
		case f != IPv4 && f != IPv6:
			k.fail(fmt.Sprintf("%s[%d]", field, i), "%q is not one of ipv4, ipv6", f)
		case slices.Index(fs, f) < i:
			k.fail(fmt.Sprintf("%s[%d]", field, i), "%s is already listed", f)
		default:
			continue
		}
		ok = false
	}
	return ok
}
