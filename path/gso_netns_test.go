package path

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNetns runs fn on a thread switched into network namespace ns. Sockets and TUN devices
// opened by fn keep belonging to ns afterwards.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer unix.Close(orig)
	target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime ends it with this goroutine.
		t.Fatalf("back to the original namespace: %v", err)
	}
	runtime.UnlockOSThread()
}

// openTUN creates TUN device name (no packet information header, no offloads).
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "tun"), nil
}

// TestGSOThroughTUNWithoutOffload sends GSO trains out of a TUN device that has no checksum
// or segmentation offload, as the uplinks of scripts/lib/testbed.sh are. The kernel must hand
// the TUN reader ordinary datagrams with valid checksums. Where it refuses UDP_SEGMENT on such
// a device (EIO, older kernels), WriteBatch must turn GSO off and still send everything.
// Needs root (a network namespace).
func TestGSOThroughTUNWithoutOffload(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	ns := fmt.Sprintf("btpath-gso-%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	var (
		tun        *os.File
		c          *Conn
		tErr, lErr error
	)
	inNetns(t, ns, func() {
		tun, tErr = openTUN("t0")
	})
	if tErr != nil {
		t.Skipf("no TUN device: %v", tErr)
	}
	defer tun.Close()
	ip("-n", ns, "addr", "add", "10.201.0.1/24", "dev", "t0")
	ip("-n", ns, "link", "set", "t0", "up")
	src := netip.MustParseAddrPort("10.201.0.1:4000")
	dst := netip.MustParseAddrPort("10.201.0.2:9")
	inNetns(t, ns, func() { c, lErr = Listen(ListenOptions{Addr: src}) })
	if lErr != nil {
		t.Fatal(lErr)
	}
	defer c.Close()
	if !c.GSO() {
		t.Skip("kernel refuses UDP_SEGMENT")
	}

	want := datagrams(append(repeatSize(20, 1000), 300)...)
	n, err := c.WriteBatch(want, dst)
	if err != nil || n != len(want) {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", n, err, len(want))
	}
	t.Logf("GSO after sending through the TUN device: %v", c.GSO())

	if err := tun.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for got := 0; got < len(want); {
		k, err := tun.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("got %d of %d datagrams", got, len(want))
		} else if err != nil {
			t.Fatal(err)
		}
		p := buf[:k]
		if k < 28 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_UDP {
			continue // not ours (IPv6 or other traffic the kernel sends)
		}
		ihl := int(p[0]&0xf) * 4
		udp := p[ihl:]
		if binary.BigEndian.Uint16(udp[2:]) != dst.Port() {
			continue
		}
		if l := int(binary.BigEndian.Uint16(udp[4:])); l != len(udp) {
			t.Fatalf("datagram %d: UDP length %d, packet carries %d", got, l, len(udp))
		}
		if !udpChecksumOK(p[12:16], p[16:20], udp) {
			t.Fatalf("datagram %d: bad UDP checksum", got)
		}
		if string(udp[8:]) != string(want[got]) {
			t.Fatalf("datagram %d: payload of %d bytes differs from the %d sent", got, len(udp)-8, len(want[got]))
		}
		got++
	}

	// Datagrams longer than the device MTU (1500) cannot be GSO segments: the kernel refuses
	// the train, and WriteBatch sends them without GSO (fragmented), keeping GSO for later.
	if !c.GSO() {
		return
	}
	big := datagrams(repeatSize(3, 1600)...)
	if n, err := c.WriteBatch(big, dst); err != nil || n != len(big) {
		t.Fatalf("WriteBatch of datagrams over the MTU = %d, %v; want %d, nil", n, err, len(big))
	}
	if !c.GSO() {
		t.Fatal("GSO turned off by datagrams over the MTU")
	}
}

// udpChecksumOK verifies the checksum of an IPv4 UDP datagram (0 means none).
func udpChecksumOK(src, dst, udp []byte) bool {
	if binary.BigEndian.Uint16(udp[6:]) == 0 {
		return true
	}
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(src)
	add(dst)
	sum += unix.IPPROTO_UDP + uint32(len(udp))
	add(udp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff
}
