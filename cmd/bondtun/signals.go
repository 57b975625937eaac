package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// reloadOnHangup makes SIGHUP reload the configuration (reloader.reload), until ctx
// ends. The handler is installed before it returns, so from then on SIGHUP never ends the
// process (its default action), which would leave the policy rules behind.
func reloadOnHangup(ctx context.Context, rl *reloader) {
	onSignal(ctx, syscall.SIGHUP, func() { rl.reload() })
}

// onSignal calls fn, one call at a time, each time the process gets sig, until ctx ends.
// The handler is installed before onSignal returns and stays installed after ctx ends (the
// signal is then ignored), so that a late signal cannot end the process in the middle of
// its teardown, which is what the default action of SIGHUP and SIGUSR1 would do.
func onSignal(ctx context.Context, sig os.Signal, fn func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				fn()
			}
		}
	}()
}
