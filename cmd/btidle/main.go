// Command btidle holds many idle library sessions, for scripts/bench-idle.sh: `btidle
// listen` is one server process with -n configured peers, `btidle dial` opens -n
// connections to it, one per peer, and both then sit idle. The peers' keys are derived
// from -seed, so the two processes agree on them without key files.
//
// The listener prints "ACCEPTED n" once n connections are established, then every -every
// "STATS accepted=… timer_runs=…" (timer_runs: the process's timer queue callbacks so far,
// internal/timerq). With -memprofile FILE, SIGUSR1 makes it write a heap profile to FILE and
// a goroutine profile to FILE.goroutine and print "PROFILED goroutines=… heap_inuse_mb=…"
// (runtime.MemStats after a GC); SIGUSR2 starts a CPU profile into FILE.cpu, and the next
// SIGUSR2 ends it ("CPUPROFILED").
package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/bondtun/bondtun/bond"
	"github.com/bondtun/bondtun/internal/timerq"
)

func key(seed string, i int) bond.PrivateKey {
	h := sha256.New()
	h.Write([]byte(seed))
	binary.Write(h, binary.BigEndian, uint64(i))
	k, err := bond.ParsePrivateKey(base64.StdEncoding.EncodeToString(h.Sum(nil)))
	if err != nil {
		panic(err)
	}
	return k
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: btidle listen|dial [-n N] [-addr A] [-from A] [-seed S] [-every 5s] [-memprofile FILE]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	n := fs.Int("n", 1000, "sessions")
	addr := fs.String("addr", "127.0.0.1:7360", "the listener's address")
	from := fs.String("from", "127.0.0.2", "the dialer's source address")
	seed := fs.String("seed", "btidle", "derives every key")
	every := fs.Duration("every", 5*time.Second, "listener: how often to print STATS")
	memprofile := fs.String("memprofile", "", "listener: on SIGUSR1 write a heap profile to `FILE` and a goroutine profile to FILE.goroutine")
	fs.Parse(os.Args[2:])
	if *memprofile != "" {
		runtime.MemProfileRate = 1 // every allocation: per-session sizes, not 512 KiB samples
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "listen":
		err = listen(ctx, *n, *addr, *seed, *every, *memprofile)
	case "dial":
		err = dial(ctx, *n, *addr, *from, *seed)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "btidle:", err)
		os.Exit(1)
	}
}

// listen is `btidle listen`: a server of peers 0..n-1 of seed on addr that accepts their
// connections and prints ACCEPTED, STATS every every and, with memprofile, the profiles
// SIGUSR1 and SIGUSR2 ask for, until ctx is done.
func listen(ctx context.Context, n int, addr, seed string, every time.Duration, memprofile string) error {
	ln, err := bond.Listen(addr, listenConfig(n, seed))
	if err != nil {
		return err
	}
	defer ln.Close()
	a := &acceptCounter{n: n}
	go a.acceptAll(ctx, ln)
	usr1, usr2, stopSignals := profileSignals(memprofile)
	defer stopSignals()
	var cpu cpuProfile
	defer cpu.stop()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-usr2:
			if err := cpu.toggle(memprofile + ".cpu"); err != nil {
				fmt.Fprintln(os.Stderr, "btidle:", err)
			}
		case <-usr1:
			profile(memprofile)
		case <-t.C:
			a.printStats()
		}
	}
}

// listenConfig is the server's configuration: its key and peers 0..n-1, p0…, all derived
// from seed.
func listenConfig(n int, seed string) *bond.ListenConfig {
	cfg := &bond.ListenConfig{PrivateKey: key(seed, -1)}
	for i := range n {
		cfg.Peers = append(cfg.Peers, bond.Peer{Name: "p" + strconv.Itoa(i), Key: key(seed, i).Public()})
	}
	return cfg
}

// acceptCounter counts the connections a listener accepted.
type acceptCounter struct {
	n        int // ACCEPTED is printed when accepted reaches it
	mu       sync.Mutex
	accepted int
}

// acceptAll accepts connections (and leaves them idle) until ln fails or ctx is done.
func (a *acceptCounter) acceptAll(ctx context.Context, ln *bond.Listener) {
	for {
		c, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		_ = c
		a.mu.Lock()
		a.accepted++
		if a.accepted == a.n {
			fmt.Printf("ACCEPTED %d\n", a.n)
		}
		a.mu.Unlock()
	}
}

// printStats prints the STATS line.
func (a *acceptCounter) printStats() {
	a.mu.Lock()
	fmt.Printf("STATS accepted=%d timer_runs=%d\n", a.accepted, timerq.Default().Runs())
	a.mu.Unlock()
}

// profileSignals returns the channels SIGUSR1 and SIGUSR2 arrive on, and the function that
// stops them. Only with memprofile are the signals caught; without, the channels never
// receive.
func profileSignals(memprofile string) (usr1, usr2 chan os.Signal, stop func()) {
	usr1, usr2 = make(chan os.Signal, 1), make(chan os.Signal, 1)
	if memprofile == "" {
		return usr1, usr2, func() {}
	}
	signal.Notify(usr1, syscall.SIGUSR1)
	signal.Notify(usr2, syscall.SIGUSR2)
	return usr1, usr2, func() {
		signal.Stop(usr2)
		signal.Stop(usr1)
	}
}

// cpuProfile is the CPU profile SIGUSR2 starts and the next SIGUSR2 ends.
type cpuProfile struct {
	f *os.File // nil while none runs
}

// toggle starts a CPU profile into file if none runs, or else ends the one that does
// and prints CPUPROFILED.
func (p *cpuProfile) toggle(file string) error {
	var err error
	if p.f == nil {
		if p.f, err = os.Create(file); err == nil {
			err = pprof.StartCPUProfile(p.f)
		}
	} else {
		pprof.StopCPUProfile()
		err = p.f.Close()
		p.f = nil
		fmt.Println("CPUPROFILED")
	}
	return err
}

// stop ends the CPU profile, if one runs.
func (p *cpuProfile) stop() {
	if p.f != nil {
		pprof.StopCPUProfile()
		p.f.Close()
	}
}

// profile is SIGUSR1's: it writes the heap and goroutine profiles to memprofile
// (writeProfiles) and prints the PROFILED line.
func profile(memprofile string) {
	if err := writeProfiles(memprofile); err != nil {
		fmt.Fprintln(os.Stderr, "btidle:", err)
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Printf("PROFILED goroutines=%d heap_inuse_mb=%.1f heap_idle_mb=%.1f heap_released_mb=%.1f stack_inuse_mb=%.1f sys_mb=%.1f\n",
		runtime.NumGoroutine(), mb(m.HeapInuse), mb(m.HeapIdle), mb(m.HeapReleased), mb(m.StackInuse), mb(m.Sys))
}

func dial(ctx context.Context, n int, addr, from, seed string) error {
	src, err := netip.ParseAddr(from)
	if err != nil {
		return err
	}
	server := key(seed, -1).Public()
	var conns []*bond.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		c, err := bond.Dial(dctx, addr, &bond.Config{
			PrivateKey: key(seed, i),
			PeerKey:    server,
			Uplinks:    []bond.Uplink{{Addr: src}},
		})
		cancel()
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	fmt.Printf("DIALED %d\n", n)
	<-ctx.Done()
	return nil
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// writeProfiles writes a heap profile (after a GC, so in-use figures are live data) to file
// and a goroutine profile to file.goroutine.
func writeProfiles(file string) error {
	runtime.GC()
	for _, p := range []struct{ name, file string }{{"heap", file}, {"goroutine", file + ".goroutine"}} {
		f, err := os.Create(p.file)
		if err != nil {
			return err
		}
		err = pprof.Lookup(p.name).WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
