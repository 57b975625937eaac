package tun_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/bondtun/bondtun/tun"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// newIODevice creates a device with create inside a fresh namespace (see
// enterFreshNetns) and gives it 10.99.0.2/24.
func newIODevice(tb testing.TB, create func(string, int) (wgtun.Device, string, error)) wgtun.Device {
	tb.Helper()
	enterFreshNetns(tb)
	dev, name, err := create("bt%d", 1420)
	if err != nil {
		tb.Skipf("cannot create TUN: %v", err)
	}
	tb.Cleanup(func() { dev.Close() })
	plan := tun.Plan{Device: name, Addresses: []netip.Prefix{pfx("10.99.0.2/24")}}
	if err := tun.NewHost(tun.SystemNetlink(), quiet).Up(plan); err != nil {
		tb.Fatalf("Up: %v", err)
	}
	return dev
}

// udpPacket is a 1400-byte IPv4/UDP datagram from the peer 10.99.0.1 to the
// local 10.99.0.2, port 9 (discard): the kernel drops it, replying at most
// with rate-limited ICMP.
func udpPacket() []byte {
	p := make([]byte, 1400)
	p[0], p[8], p[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:16], []byte{10, 99, 0, 1})
	copy(p[16:20], []byte{10, 99, 0, 2})
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20]))
	binary.BigEndian.PutUint16(p[20:], 40000)
	binary.BigEndian.PutUint16(p[22:], 9)
	binary.BigEndian.PutUint16(p[24:], uint16(len(p)-20)) // UDP checksum 0: none
	return p
}

// writer returns a function that writes batch copies of one packet at
// tun.PacketOffset, resetting the slice headers that Write may reorder.
func writer(tb testing.TB, dev wgtun.Device, batch int) func() {
	pkt := udpPacket()
	arrays := make([][]byte, batch)
	for i := range arrays {
		arrays[i] = make([]byte, tun.PacketOffset+65535)
		copy(arrays[i][tun.PacketOffset:], pkt)
	}
	bufs := make([][]byte, batch)
	return func() {
		for i := range bufs {
			bufs[i] = arrays[i][:tun.PacketOffset+len(pkt)]
		}
		if _, err := dev.Write(bufs, tun.PacketOffset); err != nil {
			tb.Fatalf("Write: %v", err)
		}
	}
}

var devices = []struct {
	name   string
	create func(string, int) (wgtun.Device, string, error)
	batch  int
}{
	{name: "vnet", create: tun.Create, batch: 16},
	{name: "plain", create: tun.CreatePlain, batch: 1},
}

// TestDeviceWriteAllocs checks that writing to the device at
// tun.PacketOffset allocates nothing per packet.
func TestDeviceWriteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	// Each device needs its own namespace and thread, hence one subtest
	// goroutine each.
	for _, d := range devices {
		t.Run(d.name, func(t *testing.T) {
			write := writer(t, newIODevice(t, d.create), d.batch)
			if n := testing.AllocsPerRun(100, write); n != 0 {
				t.Errorf("Write of %d packets: %v allocs, want 0", d.batch, n)
			}
		})
	}
}

func BenchmarkDeviceWrite(b *testing.B) {
	for _, d := range devices {
		b.Run(d.name, func(b *testing.B) {
			write := writer(b, newIODevice(b, d.create), d.batch)
			b.ReportAllocs()
			b.SetBytes(int64(d.batch * len(udpPacket())))
			for b.Loop() {
				write()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*d.batch), "ns/packet")
		})
	}
}
