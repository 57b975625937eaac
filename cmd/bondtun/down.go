package main

import (
	"errors"
	"fmt"
	"io"
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
	plan, err := hostPlan(cfg, nil)
	if err != nil {
		return err
	}
	if err := tun.Cleanup(tun.SystemNetlink(), plan); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed what bondtun had set up for %s (device %s", cfg.Path, plan.Device)
	for _, u := range plan.Uplinks {
		fmt.Fprintf(stdout, ", table %d", u.Table)
	}
	fmt.Fprintln(stdout, ")")
	return nil
}
