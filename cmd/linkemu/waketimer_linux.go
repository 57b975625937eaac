package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// wakeTimer is a timerfd read through the runtime poller. Go's own timers
// fire up to 1 ms late on Linux when the process is idle (the poller's
// epoll_wait timeout has millisecond resolution), which would add a random
// 0–1 ms to every emulated delay; a timerfd is an hrtimer whose expiry
// wakes the poller as an fd event, accurate to tens of microseconds,
// without spinning.
//
// arm and disarm use the raw fd (os.File.Fd would make the file blocking);
// the owner must not call them after close, see direction.closed.
type wakeTimer struct {
	fd int
	f  *os.File
	io *rawIO
}

func newWakeTimer() (*wakeTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	io, err := newRawIO(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &wakeTimer{fd: fd, f: f, io: io}, nil
}

// arm makes wait return after d (at once if d ≤ 0), replacing any earlier
// setting and any expiry not yet consumed by wait.
func (w *wakeTimer) arm(d time.Duration) {
	d = max(d, 1) // a zero it_value would disarm
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	unix.TimerfdSettime(w.fd, 0, &spec, nil)
}

// disarm cancels the timer.
func (w *wakeTimer) disarm() {
	unix.TimerfdSettime(w.fd, 0, &unix.ItimerSpec{}, nil)
}

// wait blocks until the timer expires or the timer is closed. Only one
// goroutine may wait.
func (w *wakeTimer) wait(buf *[8]byte) error {
	_, err := w.io.Read(buf[:])
	return err
}

func (w *wakeTimer) close() error { return w.f.Close() }
