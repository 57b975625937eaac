package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Offload is what the running kernel supports of the offloads a faster
// bondtun data path would use.
type Offload struct {
	TunUSO bool // TUNSETOFFLOAD accepts TUN_F_USO4|TUN_F_USO6 (UDP segmentation through a vnet-hdr TUN)
	UDPGSO bool // the UDP_SEGMENT socket option
	UDPGRO bool // the UDP_GRO socket option
}

// String formats o as "tun_uso=yes|no udp_gso=yes|no udp_gro=yes|no".
func (o Offload) String() string {
	return "tun_uso=" + yesNo(o.TunUSO) + " udp_gso=" + yesNo(o.UDPGSO) + " udp_gro=" + yesNo(o.UDPGRO)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ProbeOffload asks the kernel. An offload it cannot probe (e.g. no
// /dev/net/tun, no permission) counts as unavailable.
func ProbeOffload() Offload {
	return Offload{TunUSO: probeTunUSO(), UDPGSO: probeUDPOpt(unix.UDP_SEGMENT, 1200), UDPGRO: probeUDPOpt(unix.UDP_GRO, 1)}
}

// probeTunUSO creates a non-persistent vnet-hdr TUN device (it disappears
// when the file is closed) and tries to enable TCP and UDP segmentation
// offload on it, as wireguard-go's tun package does.
func probeTunUSO() bool {
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return false
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if unix.IoctlIfreq(int(f.Fd()), unix.TUNSETIFF, ifr) != nil {
		return false
	}
	const flags = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_USO4 | unix.TUN_F_USO6
	return unix.IoctlSetInt(int(f.Fd()), unix.TUNSETOFFLOAD, flags) == nil
}

// probeUDPOpt sets an integer UDP socket option on a fresh IPv4 UDP socket.
func probeUDPOpt(opt, val int) bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.SetsockoptInt(fd, syscall.IPPROTO_UDP, opt, val) == nil
}
