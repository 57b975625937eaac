package tun

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// NFT runs the nft tool with args and stdin, returning its standard output; an error
// carries its standard error. [SystemNFT] is the real one.
type NFT func(stdin string, args ...string) ([]byte, error)

// ErrNoNFT: the nft tool is not installed.
var ErrNoNFT = errors.New("the nft tool is not installed (Debian: apt-get install nftables)")

// nftPath returns the nft binary: from PATH, else /usr/sbin/nft (PATH of a service may
// lack sbin).
func nftPath() (string, error) {
	if bin, err := exec.LookPath("nft"); err == nil {
		return bin, nil
	}
	if _, err := os.Stat("/usr/sbin/nft"); err != nil {
		return "", ErrNoNFT
	}
	return "/usr/sbin/nft", nil
}

// NFTInstalled reports whether the nft tool is there.
func NFTInstalled() bool {
	_, err := nftPath()
	return err == nil
}

// SystemNFT runs /usr/sbin/nft (or nft from PATH) in the calling thread's network
// namespace.
func SystemNFT() NFT {
	return func(stdin string, args ...string) ([]byte, error) {
		bin, err := nftPath()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
}

// Sysctls reads and writes kernel parameters by their sysctl(8) names
// ("net.ipv4.ip_forward"). [SystemSysctls] uses /proc/sys.
type Sysctls interface {
	Get(name string) (string, error)
	Set(name, value string) error
}

// SystemSysctls returns the /proc/sys of the calling thread's network namespace.
func SystemSysctls() Sysctls { return procSys{} }

type procSys struct{}

func procSysPath(name string) string { return "/proc/sys/" + strings.ReplaceAll(name, ".", "/") }

func (procSys) Get(name string) (string, error) {
	b, err := os.ReadFile(procSysPath(name))
	return strings.TrimSpace(string(b)), err
}

func (procSys) Set(name, value string) error {
	return os.WriteFile(procSysPath(name), []byte(value+"\n"), 0o644)
}

// Gateway applies a [GatewayPlan] and removes it again. Run [GatewayCleanup] first after
// a crash; Up fails on a table that is already there only in the sense that it replaces
// it, so a leftover's saved values would be lost.
type Gateway struct {
	nft NFT
	sys Sysctls
	log *slog.Logger

	mu     sync.Mutex
	device string // "" while down
}

// NewGateway returns a Gateway that changes the host through nft and sys.
func NewGateway(nft NFT, sys Sysctls, log *slog.Logger) *Gateway {
	if log == nil {
		log = slog.Default()
	}
	return &Gateway{nft: nft, sys: sys, log: log}
}

// Up installs the gateway's table, then turns forwarding on, so nothing is forwarded
// before the rules are in place. It is all or nothing.
func (h *Gateway) Up(p GatewayPlan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.device != "" {
		return errors.New("tun: gateway is already up")
	}
	others, err := gatewayTables(h.nft, "")
	if err != nil {
		return err
	}
	saved := make(map[string]string)
	for _, name := range p.Sysctls() {
		if v, owner, ok := savedByOther(others, p.Device, name); ok {
			saved[name] = v
			h.log.Debug("tun: gateway: another gateway saved the sysctl; taking its value", "sysctl", name, "value", v, "table", owner)
			continue
		}
		v, err := h.sys.Get(name)
		if err != nil {
			return fmt.Errorf("tun: gateway: read %s: %w", name, err)
		}
		saved[name] = v
	}
	if _, err := h.nft(p.Script(saved), "-f", "-"); err != nil {
		return fmt.Errorf("tun: gateway: install table %s: %w", GatewayTable(p.Device), err)
	}
	h.device = p.Device
	for _, name := range p.Sysctls() {
		if err := h.sys.Set(name, "1"); err != nil {
			err = fmt.Errorf("tun: gateway: set %s=1: %w", name, err)
			if derr := h.downLocked(); derr != nil {
				return errors.Join(err, derr)
			}
			return err
		}
	}
	h.log.Info("tun: gateway up", "table", "inet "+GatewayTable(p.Device), "forward", strings.Join(p.Sysctls(), ","),
		"nat_ipv4", p.NAT4, "nat_ipv6", p.NAT6, "out", strings.Join(p.Out, ","))
	return nil
}

// Update replaces the running gateway's table with p's (a reload: the peers' sets follow
// their allowed_ips) in one nft transaction, keeping the sysctl values it saved. p must
// have the running gateway's device and forward the same families: the sysctls are not
// touched.
func (h *Gateway) Update(p GatewayPlan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.device == "" || h.device != p.Device {
		return fmt.Errorf("tun: gateway: no gateway of %s is up", p.Device)
	}
	own, err := gatewayTables(h.nft, GatewayTable(p.Device))
	if err != nil {
		return err
	}
	if len(own) != 1 {
		return fmt.Errorf("tun: gateway: table %s is gone", GatewayTable(p.Device))
	}
	if _, err := h.nft(p.Script(own[0].saved), "-f", "-"); err != nil {
		return fmt.Errorf("tun: gateway: replace table %s: %w", GatewayTable(p.Device), err)
	}
	h.log.Info("tun: gateway updated", "table", "inet "+GatewayTable(p.Device), "peers", len(p.Peers))
	return nil
}

// Down restores the sysctls and removes the table ([GatewayCleanup] of its device). It is
// idempotent.
func (h *Gateway) Down() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.downLocked()
}

func (h *Gateway) downLocked() error {
	if h.device == "" {
		return nil
	}
	err := GatewayCleanup(h.nft, h.sys, h.device, h.log)
	h.device = ""
	return err
}

// gatewayTable is one bondtun gateway table found in nft's listing.
type gatewayTable struct {
	name  string
	saved map[string]string
}

// gatewayTables lists the bondtun gateway tables of this network namespace with their
// saved values; with only set, just that table (if present).
func gatewayTables(nft NFT, only string) ([]gatewayTable, error) {
	out, err := nft("", "list", "tables")
	if err != nil {
		return nil, fmt.Errorf("tun: gateway: %w", err)
	}
	var tables []gatewayTable
	for _, name := range parseTables(string(out)) {
		if only != "" && name != only {
			continue
		}
		text, err := nft("", "list", "table", "inet", name)
		if err != nil {
			return nil, fmt.Errorf("tun: gateway: %w", err)
		}
		comment, _ := parseTableComment(string(text))
		tables = append(tables, gatewayTable{name: name, saved: parseSavedComment(comment)})
	}
	return tables, nil
}

// savedByOther returns the value another gateway than device's saved for sysctl name.
func savedByOther(tables []gatewayTable, device, name string) (value, table string, ok bool) {
	for _, t := range tables {
		if t.name == GatewayTable(device) {
			continue
		}
		if v, ok := t.saved[name]; ok {
			return v, t.name, true
		}
	}
	return "", "", false
}

// GatewayCleanup removes the gateway of device: it sets each sysctl its table saved back
// to the saved value, unless another bondtun gateway's table saved it too (that one will,
// when it goes), then deletes the table. Without a table it does nothing, so it is safe
// after a clean exit, after a crash, and before `up`. Other tables are never touched.
func GatewayCleanup(nft NFT, sys Sysctls, device string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	all, err := gatewayTables(nft, "")
	if errors.Is(err, ErrNoNFT) {
		return nil // no nft, no table
	}
	if err != nil {
		return err
	}
	name := GatewayTable(device)
	var own *gatewayTable
	for i := range all {
		if all[i].name == name {
			own = &all[i]
		}
	}
	if own == nil {
		return nil
	}
	var errs []error
	for _, sysctl := range []string{SysctlForwardIPv4, SysctlForwardIPv6} {
		v, ok := own.saved[sysctl]
		if !ok {
			continue
		}
		if _, other, shared := savedByOther(all, device, sysctl); shared {
			log.Info("tun: gateway: leaving the sysctl to another gateway", "sysctl", sysctl, "table", other)
			continue
		}
		if cur, err := sys.Get(sysctl); err == nil && cur == v {
			continue
		}
		if err := sys.Set(sysctl, v); err != nil {
			errs = append(errs, fmt.Errorf("tun: gateway: restore %s=%s: %w", sysctl, v, err))
		}
	}
	if _, err := nft("", "delete", "table", "inet", name); err != nil {
		errs = append(errs, fmt.Errorf("tun: gateway: delete table %s: %w", name, err))
	}
	if len(errs) == 0 {
		log.Info("tun: gateway removed", "table", "inet "+name)
	}
	return errors.Join(errs...)
}
