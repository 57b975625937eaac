package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// openTUN creates TUN device dev inside network namespace ns (a name under
// /var/run/netns), sets its MTU, optionally adds addr, brings it up, and
// returns its file. The fd was opened inside ns, so the device lives there,
// but it keeps working from any namespace. The file is non-blocking so that
// Close unblocks a pending Read through the runtime poller.
func openTUN(ns, dev string, mtu int, addr netip.Prefix) (*os.File, error) {
	runtime.LockOSThread()
	// The thread is unlocked only if it is back in its own namespace;
	// otherwise it stays locked and the runtime discards it on exit.
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("setns %s: %w", ns, err)
	}
	f, err := createTUNHere(dev, mtu, addr)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
		runtime.UnlockOSThread()
	}
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", dev, ns, err)
	}
	return f, nil
}

// createTUNHere creates and configures the device in the calling thread's
// namespace. netlink's package-level functions open their socket in the
// current thread's namespace, which is why the thread must be locked.
func createTUNHere(dev string, mtu int, addr netip.Prefix) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(dev)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	// IFF_NO_PI and no IFF_VNET_HDR: one whole IP packet per read and
	// write, so the rate counts real packets.
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "/dev/net/tun:"+dev)
	if err := configureLink(dev, mtu, addr); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func configureLink(dev string, mtu int, addr netip.Prefix) error {
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("mtu: %w", err)
	}
	if addr.IsValid() {
		a := &netlink.Addr{IPNet: netipToIPNet(addr)}
		if err := netlink.AddrAdd(link, a); err != nil {
			return fmt.Errorf("addr %v: %w", addr, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	return nil
}

func netipToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
