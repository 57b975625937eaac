package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"

	"bondtun/config"
	"bondtun/tun"
)

func runDown(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfigFlag("down", args, stderr, config.LoadPublic)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("must run as root")
	}
	nl := tun.SystemNetlink()
	// An uplink named only by its interface gets the source it has now, so that Cleanup
	// removes only this instance's rules; if it has none, its table's bondtun rules are
	// taken as this instance's (tables are per instance, see table_base).
	plan, err := hostPlan(cfg, func(iface string) (netip.Addr, error) {
		a, err := tun.ResolveUplinkSource(nl, iface)
		if err != nil {
			return netip.Addr{}, nil
		}
		return a, nil
	})
	if err != nil {
		return err
	}
	if err := tun.Cleanup(nl, plan); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed what bondtun had set up for %s (device %s", cfg.Path, plan.Device)
	for _, u := range plan.Uplinks {
		fmt.Fprintf(stdout, ", table %d", u.Table)
	}
	fmt.Fprintln(stdout, ")")
	return nil
}
