// Command linkemu is bondtun's link emulator. It creates a TUN device in
// each of two network namespaces and moves IP packets between them through
// a linkemu.Link per direction: a rate with a bounded tail-drop queue, a
// one-way delay with optional jitter, random loss, and cut/restore at run
// time over a unix control socket. It exists because the test machines'
// kernels have tc but no netem.
//
// Usage:
//
//	linkemu -ns-a client -dev-a up0 -ns-b server -dev-b link0 -rate 50mbit -delay 10ms \
//	        [-jitter 0] [-loss 0] [-queue BYTES|auto] [-rate-ba ...] -ctl /run/linkemu-NAME.sock
//	linkemu ctl SOCK cut|restore [ab|ba|both]
//	linkemu ctl SOCK set ab|ba|both rate=20mbit delay=30ms loss=1
//	linkemu ctl SOCK stats
//
// See docs/EMULATOR.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/bondtun/bondtun/linkemu"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "ctl" {
		if len(os.Args) < 4 {
			fmt.Fprintln(os.Stderr, "usage: linkemu ctl SOCK COMMAND [ARGS...]")
			os.Exit(2)
		}
		if err := runCtlClient(os.Args[2], os.Args[3:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "linkemu:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "linkemu:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(cfg, log); err != nil {
		log.Error("linkemu failed", "err", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	nsA, devA, nsB, devB string
	addrA, addrB         netip.Prefix
	mtu                  int
	ab, ba               dirFlags
	dist                 string
	reorder              bool
	ctl                  string
	seed                 uint64
	cpuprofile           string
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("linkemu", flag.ContinueOnError)
	fs.StringVar(&c.nsA, "ns-a", "", "network namespace of device A (required)")
	fs.StringVar(&c.devA, "dev-a", "", "TUN device name A (required)")
	fs.StringVar(&c.nsB, "ns-b", "", "network namespace of device B (required)")
	fs.StringVar(&c.devB, "dev-b", "", "TUN device name B (required)")
	addrA := fs.String("addr-a", "", "optional address/prefix for device A, e.g. 10.100.1.2/24")
	addrB := fs.String("addr-b", "", "optional address/prefix for device B")
	fs.IntVar(&c.mtu, "mtu", 1500, "MTU of both devices (and the largest packet carried)")
	fs.StringVar(&c.ab.rate, "rate", "0", "rate, tc notation (50mbit); 0 = unlimited")
	fs.StringVar(&c.ab.delay, "delay", "0s", "one-way delay")
	fs.StringVar(&c.ab.jitter, "jitter", "0s", "jitter: ± bound (uniform) or std deviation (normal)")
	fs.StringVar(&c.ab.loss, "loss", "0", "random loss in percent")
	fs.StringVar(&c.ab.queue, "queue", "auto", "queue bound in bytes, or auto = rate×2×delay, min 32 KiB")
	fs.StringVar(&c.ba.rate, "rate-ba", "", "B→A rate (default: -rate)")
	fs.StringVar(&c.ba.delay, "delay-ba", "", "B→A delay (default: -delay)")
	fs.StringVar(&c.ba.jitter, "jitter-ba", "", "B→A jitter (default: -jitter)")
	fs.StringVar(&c.ba.loss, "loss-ba", "", "B→A loss (default: -loss)")
	fs.StringVar(&c.ba.queue, "queue-ba", "", "B→A queue (default: -queue)")
	fs.StringVar(&c.dist, "jitter-dist", "uniform", "jitter distribution: uniform or normal")
	fs.BoolVar(&c.reorder, "reorder", false, "let jitter reorder packets")
	fs.StringVar(&c.ctl, "ctl", "", "control socket path (optional)")
	fs.Uint64Var(&c.seed, "seed", 0, "random seed for loss and jitter (0 = from the clock)")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile to this file until exit")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() != 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.nsA == "" || c.devA == "" || c.nsB == "" || c.devB == "" {
		return c, errors.New("-ns-a, -dev-a, -ns-b and -dev-b are required")
	}
	if c.mtu < 68 || c.mtu > 65535 {
		return c, fmt.Errorf("mtu %d out of range 68..65535", c.mtu)
	}
	c.ba = c.ba.inherit(c.ab)
	for _, a := range []struct {
		s   string
		dst *netip.Prefix
	}{{*addrA, &c.addrA}, {*addrB, &c.addrB}} {
		if a.s == "" {
			continue
		}
		p, err := netip.ParsePrefix(a.s)
		if err != nil {
			return c, err
		}
		*a.dst = p
	}
	for _, d := range []dirFlags{c.ab, c.ba} {
		if _, err := d.params(c.dist, c.reorder); err != nil {
			return c, err
		}
	}
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	return c, nil
}

// run opens the devices, starts the four pump goroutines and the control
// socket, and waits for SIGINT or SIGTERM.
func run(c config, log *slog.Logger) error {
	pab, _ := c.ab.params(c.dist, c.reorder) // validated by parseFlags
	pba, _ := c.ba.params(c.dist, c.reorder)
	fa, err := openTUN(c.nsA, c.devA, c.mtu, c.addrA)
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := openTUN(c.nsB, c.devB, c.mtu, c.addrB)
	if err != nil {
		return err
	}
	defer fb.Close()

	e, err := newEmulator(c, fa, fb, pab, pba, log)
	if err != nil {
		return err
	}
	if c.ctl != "" {
		ln, err := listenUnix(c.ctl)
		if err != nil {
			return err
		}
		defer ln.Close() // also removes the socket file
		go e.serveCtl(ln)
	}
	stopProfile, err := startCPUProfile(c.cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()

	stopPumps := e.startPumps()
	log.Info("linkemu running", "a", c.nsA+"/"+c.devA, "b", c.nsB+"/"+c.devB,
		"ab", pab.String(), "ba", pba.String(), "ctl", c.ctl)
	s := waitForSignal()
	log.Info("linkemu stopping", "signal", s.String())
	// Closing the files unblocks the readers and makes the devices vanish.
	fa.Close()
	fb.Close()
	stopPumps()
	return nil
}

// newEmulator makes the emulator of the two directions between devices fa and fb:
// ab (fa to fb, with pab) and ba (fb to fa, with pba, seeded with the next seed).
func newEmulator(c config, fa, fb *os.File, pab, pba linkemu.Params, log *slog.Logger) (*emulator, error) {
	dab, err := newDirection("ab", fa, fb, pab, c.mtu, c.seed, log)
	if err != nil {
		return nil, err
	}
	dba, err := newDirection("ba", fb, fa, pba, c.mtu, c.seed+1, log)
	if err != nil {
		return nil, err
	}
	return &emulator{dirs: map[string]*direction{"ab": dab, "ba": dba}}, nil
}

// startCPUProfile starts a CPU profile into file, if file is not "", and returns the
// function that ends it.
func startCPUProfile(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// startPumps starts each direction's reader and writer goroutines, and returns the
// function that stops the writers and waits for all of them (the readers return once
// their device's file is closed).
func (e *emulator) startPumps() (stop func()) {
	var wg sync.WaitGroup
	for _, d := range e.dirs {
		wg.Go(d.routineReader)
		wg.Go(d.routineWriter)
	}
	return func() {
		for _, d := range e.dirs {
			d.stop()
		}
		wg.Wait()
	}
}

// waitForSignal waits for SIGINT or SIGTERM and returns it.
func waitForSignal() os.Signal {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	return <-sig
}

// listenUnix listens on a unix stream socket at path, replacing a stale
// socket file left by a killed run. Closing the listener removes the file.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	return net.Listen("unix", path)
}
