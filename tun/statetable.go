package tun

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
)

// A bondtun nftables table that goes with sysctls it changes keeps their values from
// before in its comment ("bondtun gateway of bt0; saved net.ipv4.ip_forward=0"): the
// table and the sysctls are both per network namespace, so the state sits where it
// belongs, survives a crash, and goes with the table. Two kinds use it: the gateway's
// (family inet, gateway.go) and the reverse-path marks' (family ip, rpf.go). Both are
// named bondtun_DEVICE, one per instance. Whoever deletes such a table restores the
// values it saved, unless another table of the same kind saved the same sysctl (that one
// will, when it goes); one that starts while another of its kind saved a sysctl copies
// that value rather than reading the one the other set. So the last one of a kind
// restores the values from before the first.

// tableKind is one kind of bondtun table with saved sysctls.
type tableKind struct {
	family  string   // the nft family: "inet", "ip"
	what    string   // for the comment and messages: "gateway", "reverse-path marks"
	sysctls []string // the sysctls its comment may save, in the comment's order
}

var (
	gatewayKind = tableKind{family: "inet", what: "gateway", sysctls: []string{SysctlForwardIPv4, SysctlForwardIPv6}}
	rpfKind     = tableKind{family: "ip", what: "reverse-path marks", sysctls: []string{SysctlSrcValidMark}}
)

// savedPrefix introduces the saved sysctl values in a table's comment.
const savedPrefix = "saved"

// comment is the table's comment: "bondtun WHAT of DEV; saved NAME=VALUE ...".
func (k tableKind) comment(device string, saved map[string]string) string {
	s := "bondtun " + k.what + " of " + device + "; " + savedPrefix
	for _, name := range k.sysctls {
		if v, ok := saved[name]; ok {
			s += " " + name + "=" + v
		}
	}
	return s
}

// parseSaved returns the saved sysctl values of a table's comment. Only the kind's own
// sysctls with a small decimal value are taken: the values are written back into
// /proc/sys, and the comment is in a table anyone with CAP_NET_ADMIN can edit.
func (k tableKind) parseSaved(comment string) map[string]string {
	_, rest, ok := strings.Cut(comment, "; "+savedPrefix)
	if !ok {
		return nil
	}
	out := make(map[string]string)
	for _, f := range strings.Fields(rest) {
		name, v, ok := strings.Cut(f, "=")
		if !ok || !slices.Contains(k.sysctls, name) || len(v) < 1 || len(v) > 3 ||
			strings.Trim(v, "0123456789") != "" {
			continue
		}
		out[name] = v
	}
	return out
}

// parseTables returns the names of the tables of family in the output of `nft list
// tables` ("table FAMILY NAME" lines) that start with [GatewayTablePrefix].
func parseTables(out, family string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "table" && f[1] == family && strings.HasPrefix(f[2], GatewayTablePrefix) {
			names = append(names, f[2])
		}
	}
	return names
}

// parseTableComment returns the comment of the table in the output of `nft list table
// FAMILY NAME`: the `comment "..."` line right after the table's opening line.
func parseTableComment(out string) (string, bool) {
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if !strings.HasPrefix(strings.TrimSpace(line), "table ") || i+1 >= len(lines) {
			continue
		}
		c, ok := strings.CutPrefix(strings.TrimSpace(lines[i+1]), "comment ")
		if !ok {
			return "", false
		}
		s, err := strconv.Unquote(c)
		if err != nil {
			return "", false
		}
		return s, true
	}
	return "", false
}

// stateTable is one table of a kind found in nft's listing.
type stateTable struct {
	name  string
	saved map[string]string
}

// list returns the tables of kind k in this network namespace with their saved values;
// with only set, just that table (if present).
func (k tableKind) list(nft NFT, only string) ([]stateTable, error) {
	out, err := nft("", "list", "tables")
	if err != nil {
		return nil, fmt.Errorf("tun: %s: %w", k.what, err)
	}
	var tables []stateTable
	for _, name := range parseTables(string(out), k.family) {
		if only != "" && name != only {
			continue
		}
		text, err := nft("", "list", "table", k.family, name)
		if err != nil {
			return nil, fmt.Errorf("tun: %s: %w", k.what, err)
		}
		comment, _ := parseTableComment(string(text))
		tables = append(tables, stateTable{name: name, saved: k.parseSaved(comment)})
	}
	return tables, nil
}

// savedByOther returns the value a table other than own saved for sysctl name.
func savedByOther(tables []stateTable, own, name string) (value, table string, ok bool) {
	for _, t := range tables {
		if t.name == own {
			continue
		}
		if v, ok := t.saved[name]; ok {
			return v, t.name, true
		}
	}
	return "", "", false
}

// toSave returns the values a new table of kind k on device saves for names: another
// table's saved value where there is one, else the current value.
func (k tableKind) toSave(nft NFT, sys Sysctls, device string, names []string, log *slog.Logger) (map[string]string, error) {
	others, err := k.list(nft, "")
	if err != nil {
		return nil, err
	}
	saved := make(map[string]string)
	for _, name := range names {
		if v, owner, ok := savedByOther(others, GatewayTable(device), name); ok {
			saved[name] = v
			log.Debug("tun: "+k.what+": another instance saved the sysctl; taking its value", "sysctl", name, "value", v, "table", owner)
			continue
		}
		v, err := sys.Get(name)
		if err != nil {
			return nil, fmt.Errorf("tun: %s: read %s: %w", k.what, name, err)
		}
		saved[name] = v
	}
	return saved, nil
}

// cleanup removes the table of kind k of device: it sets each sysctl the table saved
// back to the saved value, unless another table of the kind saved it too, then deletes
// the table. Without a table (or without nft) it does nothing. Other tables are never
// touched.
func (k tableKind) cleanup(nft NFT, sys Sysctls, device string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	all, err := k.list(nft, "")
	if errors.Is(err, ErrNoNFT) {
		return nil // no nft, no table
	}
	if err != nil {
		return err
	}
	name := GatewayTable(device)
	var own *stateTable
	for i := range all {
		if all[i].name == name {
			own = &all[i]
		}
	}
	if own == nil {
		return nil
	}
	var errs []error
	for _, sysctl := range k.sysctls {
		v, ok := own.saved[sysctl]
		if !ok {
			continue
		}
		if _, other, shared := savedByOther(all, name, sysctl); shared {
			log.Info("tun: "+k.what+": leaving the sysctl to another instance", "sysctl", sysctl, "table", k.family+" "+other)
			continue
		}
		if cur, err := sys.Get(sysctl); err == nil && cur == v {
			continue
		}
		if err := sys.Set(sysctl, v); err != nil {
			errs = append(errs, fmt.Errorf("tun: %s: restore %s=%s: %w", k.what, sysctl, v, err))
		}
	}
	if _, err := nft("", "delete", "table", k.family, name); err != nil {
		errs = append(errs, fmt.Errorf("tun: %s: delete table %s %s: %w", k.what, k.family, name, err))
	}
	if len(errs) == 0 {
		log.Info("tun: "+k.what+" removed", "table", k.family+" "+name)
	}
	return errors.Join(errs...)
}
