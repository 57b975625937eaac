package main

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bondtun/bondtun/session"
)

// controlDir holds one unix socket per running `bondtun up`, named DEVICE-KEY.sock:
// DEVICE is the real device name (a pattern such as bt%d resolved by the kernel) and KEY
// is a hash of the network namespace and the configuration file's absolute path
// (controlKey). So `status -c FILE`, `tier` and `down` find the socket from the file
// whatever the device's name, `status` alone finds every tunnel by listing the directory,
// and the same file used in two network namespaces (which share /run) gives two sockets.
// A variable so that tests can use a temporary directory.
var controlDir = "/run/bondtun"

// controlKey is the KEY part of the socket names of configPath's tunnel in this process's
// network namespace.
func controlKey(configPath string) string {
	abs, err := filepath.Abs(configPath)
	if err != nil {
		abs = configPath
	}
	ns, _ := os.Readlink("/proc/self/ns/net") // "net:[4026531840]"; empty if unknown
	h := fnv.New32a()
	h.Write([]byte(ns))
	h.Write([]byte{0})
	h.Write([]byte(abs))
	return fmt.Sprintf("%08x", h.Sum32())
}

// controlSocketPath is the socket of configPath's tunnel on device.
func controlSocketPath(device, configPath string) string {
	return filepath.Join(controlDir, device+"-"+controlKey(configPath)+".sock")
}

// controlSocket is a socket file found in controlDir.
type controlSocket struct {
	Path   string
	Device string // from the file name
}

// listControlSockets returns the socket files of configPath's tunnel in this namespace,
// or every socket file when configPath is empty; live or not.
func listControlSockets(configPath string) ([]controlSocket, error) {
	pattern := "*.sock"
	if configPath != "" {
		pattern = "*-" + controlKey(configPath) + ".sock"
	}
	matches, err := filepath.Glob(filepath.Join(controlDir, pattern))
	if err != nil {
		return nil, err
	}
	var out []controlSocket
	for _, m := range matches {
		base := strings.TrimSuffix(filepath.Base(m), ".sock")
		i := strings.LastIndexByte(base, '-')
		if i <= 0 {
			continue // not one of ours
		}
		out = append(out, controlSocket{Path: m, Device: base[:i]})
	}
	return out, nil
}

// errStaleSocket: the socket file exists but no process listens on it (what a crashed or
// killed `up` leaves).
var errStaleSocket = errors.New("stale control socket (no process listens on it)")

// dialControl connects to a control socket. A file nobody listens on gives
// errStaleSocket, a missing one an error matching os.ErrNotExist.
func dialControl(path string) (*net.UnixConn, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("%s: %w", path, errStaleSocket)
	}
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// peerPID is the process ID of the process listening on c's other end (SO_PEERCRED), 0
// if unknown.
func peerPID(c *net.UnixConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var pid int
	raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	return pid
}

// ask sends one command line to the control socket at path and returns the answer.
func ask(path, line string) ([]byte, error) {
	c, err := dialControl(path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

// liveSocket returns the socket of configPath's running tunnel, or an error that says why
// there is none (not running; only a stale socket, which `down` removes).
func liveSocket(configPath string) (controlSocket, error) {
	socks, err := listControlSockets(configPath)
	if err != nil {
		return controlSocket{}, err
	}
	var stale []string
	for _, s := range socks {
		c, err := dialControl(s.Path)
		if err == nil {
			c.Close()
			return s, nil
		}
		if errors.Is(err, errStaleSocket) {
			stale = append(stale, s.Path)
			continue
		}
		return controlSocket{}, err
	}
	if len(stale) > 0 {
		return controlSocket{}, fmt.Errorf("the tunnel of %s is not running: %s is a stale control socket left by a crashed `up` (`bondtun down -c %s` removes it)",
			configPath, strings.Join(stale, ", "), configPath)
	}
	return controlSocket{}, fmt.Errorf("the tunnel of %s is not running (no control socket for it in %s)", configPath, controlDir)
}

// claimControlSockets is run by `up` before it changes anything: it refuses to start when
// a live `up` of the same file (in this namespace) answers on a socket, and removes the
// stale sockets of crashed runs.
func claimControlSockets(configPath string, log *slog.Logger) error {
	socks, err := listControlSockets(configPath)
	if err != nil {
		return err
	}
	for _, s := range socks {
		if err := removeIfStale(s.Path, configPath, log); err != nil {
			return err
		}
	}
	return nil
}

// removeIfStale removes the socket file at path if nobody listens on it, and fails if a
// process does.
func removeIfStale(path, configPath string, log *slog.Logger) error {
	c, err := dialControl(path)
	switch {
	case err == nil:
		pid := peerPID(c)
		c.Close()
		return fmt.Errorf("already running: a bondtun up of %s (pid %d) owns %s; stop it with `bondtun down -c %s`", configPath, pid, path, configPath)
	case errors.Is(err, errStaleSocket):
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing stale control socket: %w", err)
		}
		log.Info("removed the stale control socket of an earlier run", "socket", path)
		return nil
	case errors.Is(err, os.ErrNotExist):
		return nil
	}
	return fmt.Errorf("control socket %s: %w", path, err)
}

// controller is what the control socket can reach in a running node.
type controller struct {
	snapshot func() session.Snapshot
	setTier  func(uplink string, tier uint8) error // nil on a server
	trace    func(io.Writer) error                 // the flight recorder as CSV (docs/TRACE.md)
}

// controlServer serves a running `up`'s control socket. Each connection sends one line:
//
//	status            answered with the status JSON of docs/STATUS.md (one tunnel)
//	trace             the flight recorder as CSV (docs/TRACE.md)
//	tier UPLINK TIER  answered "ok" or "error: …"
//	shutdown          answered "ok", then the run ends as on SIGTERM (`bondtun down`)
//	reload            answered "ok: SUMMARY" or "error: …" (`bondtun reload`)
//
// The node's controller is set once it exists; until then status, trace and tier answer
// "error: starting". Shutdown and reload work from the start.
type controlServer struct {
	ln       net.Listener
	info     tunnelInfo
	ctl      atomic.Pointer[controller]
	shutdown func()
	reload   func() (string, error)
	log      *slog.Logger
}

// listenControl creates the control socket of configPath's tunnel on device. shutdown and
// reload are what the "shutdown" and "reload" requests call.
func listenControl(device, configPath string, shutdown func(), reload func() (string, error), log *slog.Logger) (*controlServer, error) {
	if err := privateDir(controlDir); err != nil {
		if errors.Is(err, os.ErrPermission) {
			// Not root: CAP_NET_ADMIN alone cannot create a directory in /run.
			err = fmt.Errorf("%w (as a user other than root, make it first: `install -d -m 0700 -o %d %s`; the systemd unit's RuntimeDirectory= does)",
				err, os.Geteuid(), controlDir)
		}
		return nil, fmt.Errorf("control socket: %w", err)
	}
	path := controlSocketPath(device, configPath)
	if err := removeIfStale(path, configPath, log); err != nil {
		return nil, err
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	abs, err := filepath.Abs(configPath)
	if err != nil {
		abs = configPath
	}
	ns, _ := os.Readlink("/proc/self/ns/net")
	s := &controlServer{
		ln:       ln,
		info:     tunnelInfo{Device: device, Config: abs, Socket: path, PID: os.Getpid(), Netns: ns, Started: time.Now()},
		shutdown: shutdown,
		reload:   reload,
		log:      log,
	}
	go s.serve()
	return s, nil
}

// listenPrivate listens on the unix socket path inside a directory only this user may
// enter, so the socket is never reachable by others, not even for the moment between
// bind(2) (which creates it with the process's umask) and a chmod. The directory is
// created 0700, or tightened to 0700 if an older bondtun made it 0755, and must be a
// real directory (not a symbolic link) owned by this user. The socket is then made 0600
// as well. Changing the umask instead would race with every other goroutine creating
// files (umask is per process); see docs/DECISIONS.md.
func listenPrivate(path string) (net.Listener, error) {
	if err := privateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// privateDir makes dir a directory of mode 0700 owned by the effective user.
func privateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user", dir, sys.Uid)
	}
	if st.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// set makes the node reachable through the socket.
func (s *controlServer) set(ctl controller) { s.ctl.Store(&ctl) }

// Close closes the socket and removes its file. `down` takes the file's disappearance for
// the end of the run, so `up` closes it last.
func (s *controlServer) Close() { s.ln.Close() }

func (s *controlServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(io.LimitReader(c, 512)).ReadString('\n')
		if err := s.answer(c, strings.Fields(line)); err != nil {
			s.log.Debug("control socket", "err", err)
		}
		c.Close()
	}
}

func (s *controlServer) answer(w io.Writer, cmd []string) error {
	if len(cmd) == 1 && cmd[0] == "shutdown" {
		_, err := fmt.Fprintln(w, "ok")
		s.log.Info("shutdown requested on the control socket")
		s.shutdown()
		return err
	}
	if len(cmd) == 1 && cmd[0] == "reload" {
		sum, err := s.reload()
		if err != nil {
			// One line: the error may span several (errors.Join).
			_, werr := fmt.Fprintf(w, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
			return werr
		}
		_, err = fmt.Fprintf(w, "ok: %s\n", sum)
		return err
	}
	ctl := s.ctl.Load()
	if ctl == nil {
		_, err := fmt.Fprintln(w, "error: starting")
		return err
	}
	return answer(w, cmd, s.info, *ctl)
}
