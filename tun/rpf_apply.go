package tun

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// ReadRPFilter returns the net.ipv4.conf.*.rp_filter values of the calling thread's
// network namespace by interface name ("all", "default", "eth0", ...), for [StrictRPF].
func ReadRPFilter() (map[string]string, error) {
	const dir = "/proc/sys/net/ipv4/conf"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		v, err := procSys{}.Get("net.ipv4.conf." + e.Name() + ".rp_filter")
		if err != nil {
			continue // an interface that went meanwhile
		}
		out[e.Name()] = v
	}
	return out, nil
}

// RPF applies an [RPFPlan] and removes it again. Run [RPFCleanup] first after a crash.
type RPF struct {
	nft NFT
	sys Sysctls
	log *slog.Logger

	mu     sync.Mutex
	device string // "" while down
}

// NewRPF returns an RPF that changes the host through nft and sys.
func NewRPF(nft NFT, sys Sysctls, log *slog.Logger) *RPF {
	if log == nil {
		log = slog.Default()
	}
	return &RPF{nft: nft, sys: sys, log: log}
}

// Up installs the table, then sets src_valid_mark to 1: until then the marks change
// nothing (the reverse-path lookup ignores them). It is all or nothing.
func (r *RPF) Up(p RPFPlan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.device != "" {
		return errors.New("tun: reverse-path marks are already up")
	}
	saved, err := rpfKind.toSave(r.nft, r.sys, p.Device, []string{SysctlSrcValidMark}, r.log)
	if err != nil {
		return err
	}
	if _, err := r.nft(p.Script(saved), "-f", "-"); err != nil {
		return fmt.Errorf("tun: reverse-path marks: install table ip %s: %w", RPFTable(p.Device), err)
	}
	r.device = p.Device
	if cur, err := r.sys.Get(SysctlSrcValidMark); err != nil || cur != "1" {
		if err := r.sys.Set(SysctlSrcValidMark, "1"); err != nil {
			err = fmt.Errorf("tun: reverse-path marks: set %s=1: %w", SysctlSrcValidMark, err)
			return errors.Join(err, r.downLocked())
		}
	}
	r.log.Info("tun: reverse-path marks up (strict rp_filter)", "table", "ip "+RPFTable(p.Device),
		"port", p.Port, "mark", fmt.Sprintf("%#x", p.Mark), "sysctl", SysctlSrcValidMark+"=1")
	return nil
}

// Down restores src_valid_mark and removes the table ([RPFCleanup] of its device). It is
// idempotent.
func (r *RPF) Down() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.downLocked()
}

func (r *RPF) downLocked() error {
	if r.device == "" {
		return nil
	}
	err := RPFCleanup(r.nft, r.sys, r.device, r.log)
	r.device = ""
	return err
}

// RPFCleanup removes the reverse-path marks of device: it sets src_valid_mark back to the
// value its table saved, unless another bondtun instance's table saved it too (that one
// will, when it goes), then deletes the table. Without a table, or without nft, it does
// nothing, so it is safe after a clean exit, after a crash, and before `up`.
func RPFCleanup(nft NFT, sys Sysctls, device string, log *slog.Logger) error {
	return rpfKind.cleanup(nft, sys, device, log)
}
