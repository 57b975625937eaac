package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/bondtun/bondtun/config"
)

// reloadOnHangup makes SIGHUP re-read the configuration file at path, until ctx ends, and
// apply what can change at run time, which today is the log level only (reloadLogLevel).
// The handler is installed before it returns, so from then on SIGHUP never ends the
// process (its default action), which would leave the policy rules behind.
func reloadOnHangup(ctx context.Context, path string, level *slog.LevelVar, pinned bool, log *slog.Logger) {
	onSignal(ctx, syscall.SIGHUP, func() { reloadLogLevel(path, level, pinned, log) })
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

// reloadLogLevel loads the configuration file again and, if it is valid, sets level to its
// log_level, unless -v pinned the level to debug. A file that fails to load or validate
// changes nothing. Every other setting keeps its running value until a restart.
func reloadLogLevel(path string, level *slog.LevelVar, pinned bool, log *slog.Logger) {
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("reload: configuration refused; running state unchanged", "err", err)
		return
	}
	if pinned {
		log.Info("reload: log level stays debug (-v); other settings apply only on restart", "file", path)
		return
	}
	old := level.Level()
	level.Set(cfg.LogLevel)
	log.Info("reload: log level applied; other settings apply only on restart", "file", path, "from", old, "to", cfg.LogLevel)
}
