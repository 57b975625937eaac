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
	saved, err := gatewayKind.toSave(h.nft, h.sys, p.Device, p.Sysctls(), h.log)
	if err != nil {
		return err
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
	own, err := gatewayKind.list(h.nft, GatewayTable(p.Device))
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

// GatewayCleanup removes the gateway of device: it sets each sysctl its table saved back
// to the saved value, unless another bondtun gateway's table saved it too (that one will,
// when it goes), then deletes the table. Without a table it does nothing, so it is safe
// after a clean exit, after a crash, and before `up`. Other tables are never touched.
func GatewayCleanup(nft NFT, sys Sysctls, device string, log *slog.Logger) error {
	return gatewayKind.cleanup(nft, sys, device, log)
}
