//go:build linux

package main

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOffloadString(t *testing.T) {
	o := Offload{TunUSO: true, UDPGRO: true}
	if got, want := o.String(), "tun_uso=yes udp_gso=no udp_gro=yes"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestProbeOffload runs the probe in a private network namespace on a
// locked thread (the thread is discarded afterwards), so the transient TUN
// device never exists in the host's namespace.
func TestProbeOffload(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	done := make(chan Offload)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			close(done)
			return
		}
		done <- ProbeOffload()
	}()
	o, ok := <-done
	if !ok {
		return
	}
	t.Logf("%v", o)
	// UDP GSO is in every kernel Go 1.26 supports running this project on (4.18+).
	if !o.UDPGSO {
		t.Errorf("UDP_SEGMENT not available: %v", o)
	}
}
