package framing

import (
	"encoding/binary"
	"net/netip"
)

// decoder reads big-endian fields from a HELLO or WELCOME body. The first read past the
// end sets err to [ErrShort]; later reads return zero values, so a parser can read a run
// of fields and check err once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = ErrShort
		d.b = nil
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.bytes(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.bytes(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// preamble reads magic, version and capabilities. It stops after the version if that is
// not [Version], since another version's layout is unknown.
func (d *decoder) preamble() (version uint8, caps uint32, err error) {
	if m := d.bytes(len(Magic)); d.err == nil && string(m) != Magic {
		return 0, 0, ErrMagic
	}
	version = d.u8()
	if d.err == nil && version != Version {
		return version, 0, ErrVersion
	}
	caps = d.u32()
	return version, caps, d.err
}

// serverAddr reads one WELCOME address entry. A short read is left in d.err.
func (d *decoder) serverAddr() (ServerAddr, error) {
	var a ServerAddr
	a.ID = d.u8()
	var ip netip.Addr
	switch family := d.u8(); {
	case d.err != nil:
		return a, nil
	case family == 4:
		if v := d.bytes(4); v != nil {
			ip = netip.AddrFrom4([4]byte(v))
		}
	case family == 6:
		if v := d.bytes(16); v != nil {
			ip = netip.AddrFrom16([16]byte(v))
		}
	default:
		return a, ErrAddr
	}
	port := d.u16()
	if d.err != nil {
		return a, nil
	}
	a.AddrPort = netip.AddrPortFrom(ip, port)
	return a, checkAddr(a.AddrPort)
}

// finish reports a short read, or bytes left over after the structure.
func (d *decoder) finish() error {
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return ErrTrailing
	}
	return nil
}
