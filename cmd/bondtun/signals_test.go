package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bondtun/bondtun/config"
)

// writeDemoVariant writes configs/NAME with the replacements applied (old, new, …) to a
// temporary file and returns its path.
func writeDemoVariant(t *testing.T, name string, replace ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../configs", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("configs/%s has no %q", name, replace[i])
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestReloadLogLevel(t *testing.T) {
	debugFile := writeDemoVariant(t, "client.yaml", "log_level: info", "log_level: debug")
	badFile := writeDemoVariant(t, "client.yaml", "log_level: info", "log_level: loud")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := config.Load(debugFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LogLevel = slog.LevelInfo // as if started with log_level: info

	level := new(slog.LevelVar) // info
	rl := newReloader(cfg, level, false, log)
	rl.load = func(string) (*config.Config, error) { return config.Load(badFile) }
	if _, err := rl.reload(); err == nil || level.Level() != slog.LevelInfo ||
		!strings.Contains(logs.String(), "configuration refused") || !strings.Contains(err.Error(), "log_level") {
		t.Fatalf("a bad file: level %v, err %v, logs %q; want info kept and the error logged", level.Level(), err, logs.String())
	}
	rl.load = config.Load
	if _, err := rl.reload(); err != nil || level.Level() != slog.LevelDebug {
		t.Fatalf("level %v, err %v after reloading a file with log_level: debug", level.Level(), err)
	}
	level.Set(slog.LevelWarn)
	rl.pinned = true // -v pins the level
	if _, err := rl.reload(); err != nil || level.Level() != slog.LevelWarn {
		t.Fatalf("a pinned level changed to %v (err %v)", level.Level(), err)
	}
}

// TestHangupReloadsAndDoesNotExit sends this process SIGHUP: with the handler installed it
// must change the level instead of ending the test binary.
func TestHangupReloadsAndDoesNotExit(t *testing.T) {
	file := writeDemoVariant(t, "client.yaml", "log_level: info", "log_level: error")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	level := new(slog.LevelVar)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LogLevel = slog.LevelInfo
	reloadOnHangup(ctx, newReloader(cfg, level, false, slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for level.Level() != slog.LevelError {
		if time.Now().After(deadline) {
			t.Fatalf("level %v 5 s after SIGHUP; want error", level.Level())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// After the run's context ended (its teardown) a SIGHUP must still not end the process:
	// this test binary would die of it.
	cancel()
	time.Sleep(50 * time.Millisecond) // the handler's goroutine sees the end
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
}
