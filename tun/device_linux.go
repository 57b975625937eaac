package tun

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// cloneDevice is the Linux TUN/TAP clone device.
const cloneDevice = "/dev/net/tun"

// Create opens a TUN device with IFF_VNET_HDR and the kernel offloads
// (TSO/checksum, and USO where the kernel has it) switched on, sets its MTU and
// returns it with the device's actual name. name may be a kernel pattern such
// as "bt%d".
//
// The returned device follows the [wgtun.Device] contract with two Linux
// traps, see the package doc: Write needs offset >= [VirtioNetHdrLen] (bondtun
// uses [PacketOffset]) and returns a byte count (virtio headers included),
// not a packet count.
//
// Create neither brings the link up nor adds addresses; [Host.Up] does that.
func Create(name string, mtu int) (wgtun.Device, string, error) {
	if mtu <= 0 {
		return nil, "", fmt.Errorf("tun: create %q: invalid MTU %d", name, mtu)
	}
	dev, err := wgtun.CreateTUN(name, mtu)
	if err != nil {
		return nil, "", fmt.Errorf("tun: create %q: %w", name, err)
	}
	return named(dev, name)
}

// CreatePlain is like [Create] but opens the device without IFF_VNET_HDR, so
// no offloads are negotiated and Read/Write move one packet per call
// (BatchSize 1). It exists for A/B benchmarks and as a fallback on kernels
// whose TUN GRO/GSO path misbehaves. The offset rules of [Create] still hold
// (bondtun passes [PacketOffset] either way).
func CreatePlain(name string, mtu int) (wgtun.Device, string, error) {
	if mtu <= 0 {
		return nil, "", fmt.Errorf("tun: create %q: invalid MTU %d", name, mtu)
	}
	fd, err := unix.Open(cloneDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("tun: create %q: open %s: %w", name, cloneDevice, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("tun: create %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("tun: create %q: TUNSETIFF: %w", name, err)
	}
	// CreateTUNFromFile hands the fd to the runtime poller, which requires
	// it to be nonblocking before os.NewFile sees it.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("tun: create %q: set nonblocking: %w", name, err)
	}
	file := os.NewFile(uintptr(fd), cloneDevice)
	dev, err := wgtun.CreateTUNFromFile(file, mtu)
	if err != nil {
		file.Close()
		return nil, "", fmt.Errorf("tun: create %q: %w", name, err)
	}
	return named(dev, name)
}

// named returns dev with its real name, closing dev on failure.
func named(dev wgtun.Device, pattern string) (wgtun.Device, string, error) {
	actual, err := dev.Name()
	if err != nil {
		dev.Close()
		return nil, "", fmt.Errorf("tun: create %q: read name: %w", pattern, err)
	}
	return dev, actual, nil
}
