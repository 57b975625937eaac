// Package tun owns bondtun's TUN device and every change bondtun makes to the
// host's network configuration: the device's addresses, the routes that send
// inner traffic into the device, and the per-uplink routing tables and
// policy-routing rules that make each path socket leave through its own
// uplink. It also removes them again, both after a clean run ([Host.Down]) and
// after a crash ([Cleanup]). The package is Linux only.
//
// # Device
//
// [Create] wraps golang.zx2c4.com/wireguard/tun.CreateTUN, which opens the
// device with IFF_VNET_HDR and kernel offloads, so one Read may return many
// MSS-sized packets split from a GSO super-packet and one Write may be
// coalesced (GRO) into fewer, larger packets for the kernel. Two rules follow
// from the upstream Linux implementation:
//
//   - Write(bufs, offset) writes a 10-byte virtio-net header in front of each
//     packet, at bufs[i][offset-10:offset], so offset must be at least
//     [VirtioNetHdrLen] or Write fails with "invalid offset". bondtun reads
//     and writes at [PacketOffset] (16), which also leaves room for its own
//     header. Write may append into bufs[i] up to its capacity and may swap
//     the slice headers inside bufs, so callers reset bufs after each Write.
//   - Write returns the sum of bytes passed to write(2), not the number of
//     packets its interface comment promises; with the vnet header that
//     includes 10 header bytes per (possibly coalesced) packet. Do not use it
//     as a packet count, only as "nil error means all were written".
//
// [CreatePlain] opens the same kind of device without IFF_VNET_HDR (no
// offloads, batch size 1) for A/B measurements and as a fallback.
//
// # Host changes
//
// All netlink calls go through the small [Netlink] interface so the logic is
// tested without root against the recording fake in package tun/tuntest.
// [Host.Up] applies a [Plan]; every route and rule it adds carries the routing
// protocol number [RTProtBondtun], which is how [Cleanup] recognises bondtun's
// entries and leaves everything else alone (the same idea as tailscale's and
// wg-quick's markers). Within bondtun's entries, an instance is known by its
// device (main-table routes go through it) and its uplink tables with the
// rules from its uplink sources: another instance's are never touched. Routes
// are added, never blindly replaced: an existing route with the same table and
// destination is replaced only if it is this instance's own, otherwise Up
// fails and names it.
//
// A plan with its own Table and Mark keeps the inner routes out of the main table,
// behind two rules that traffic with Mark skips (tun/table.go): the tunnel's own
// sockets carry that mark (path.MarkedHost), so its outer traffic never enters the
// tunnel, even where a tunnel route covers a peer's outer address.
//
// Two nftables tables of an instance's own, both named bondtun_DEVICE and applied
// through the nft tool, keep the sysctl values from before in their comments
// (tun/statetable.go): a server's gateway ([Gateway], family inet) and, under strict
// reverse-path filtering, a server's marks on what comes in for its port ([RPF], family
// ip, tun/rpf.go).
package tun

// VirtioNetHdrLen is the size of the virtio-net header that a vnet-hdr TUN
// device expects in front of every written packet. Write's offset must be at
// least this large.
const VirtioNetHdrLen = 10

// PacketOffset is the offset at which bondtun places packets in its buffers
// for TUN Read and Write. It is >= [VirtioNetHdrLen] and leaves headroom for
// bondtun's own 16-byte header when sealing in place.
const PacketOffset = 16
