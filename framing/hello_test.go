package framing

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func randHello(r *rand.Rand) Hello {
	h := Hello{Version: Version, Caps: r.Uint32(), ReceiverIndex: uint16(r.Uint32())}
	for range 1 + r.IntN(MaxCiphers) {
		h.Ciphers = append(h.Ciphers, uint8(r.Uint32()))
	}
	for _, id := range r.Perm(MaxID + 1)[:1+r.IntN(MaxUplinks)] {
		name := make([]rune, r.IntN(MaxUplinkName/4+1))
		for i := range name {
			name[i] = rune(0x20 + r.IntN(0x3000)) // up to 3-byte UTF-8 runes
		}
		h.Uplinks = append(h.Uplinks, UplinkInfo{ID: uint8(id), Name: string(name)})
	}
	return h
}

func randWelcome(r *rand.Rand) Welcome {
	w := Welcome{Version: Version, Caps: r.Uint32(), Cipher: uint8(r.Uint32()), ReceiverIndex: uint16(r.Uint32())}
	for _, id := range r.Perm(MaxID + 1)[:1+r.IntN(MaxAddrs)] {
		var ip netip.Addr
		if r.IntN(2) == 0 {
			ip = netip.AddrFrom4([4]byte{10, byte(r.Uint32()), byte(r.Uint32()), 1})
		} else {
			var a [16]byte
			a[0], a[1], a[15] = 0x20, 0x01, byte(r.Uint32())|1
			ip = netip.AddrFrom16(a)
		}
		port := uint16(1 + r.IntN(0xffff))
		w.Addrs = append(w.Addrs, ServerAddr{ID: uint8(id), AddrPort: netip.AddrPortFrom(ip, port)})
	}
	return w
}

// codec adapts Hello and Welcome to one shape, for the tests they share.
type codec struct {
	name   string
	random func(*rand.Rand) (any, []byte, error)
	parse  func([]byte) (any, error)
}

var ctrlBodyCodecs = []codec{
	{
		name: "hello",
		random: func(r *rand.Rand) (any, []byte, error) {
			h := randHello(r)
			b, err := h.Append(nil)
			return h, b, err
		},
		parse: func(b []byte) (any, error) { return ParseHello(b) },
	},
	{
		name: "welcome",
		random: func(r *rand.Rand) (any, []byte, error) {
			w := randWelcome(r)
			b, err := w.Append(nil)
			return w, b, err
		},
		parse: func(b []byte) (any, error) { return ParseWelcome(b) },
	},
}

func TestCtrlBodyRoundTrip(t *testing.T) {
	for _, c := range ctrlBodyCodecs {
		t.Run(c.name, func(t *testing.T) {
			r := newRand(t)
			for range 500 {
				want, enc, err := c.random(r)
				if err != nil {
					t.Fatalf("Append(%+v): %v", want, err)
				}
				if len(enc) > MaxCtrlBody {
					t.Fatalf("encoding of %d bytes exceeds MaxCtrlBody", len(enc))
				}
				got, err := c.parse(enc)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("parse = %+v, %v\nwant %+v", got, err, want)
				}
			}
		})
	}
}

func TestCtrlBodyEveryPrefixFails(t *testing.T) {
	for _, c := range ctrlBodyCodecs {
		t.Run(c.name, func(t *testing.T) {
			r := newRand(t)
			for range 20 {
				_, enc, _ := c.random(r)
				for n := range len(enc) {
					if _, err := c.parse(enc[:n]); !errors.Is(err, ErrShort) {
						t.Fatalf("%d-byte prefix of %d: err = %v, want ErrShort", n, len(enc), err)
					}
				}
				if _, err := c.parse(append(enc, 0)); !errors.Is(err, ErrTrailing) {
					t.Fatalf("extra byte: err = %v, want ErrTrailing", err)
				}
			}
		})
	}
}

// TestLargestBodiesFit checks that the limits keep every valid HELLO and WELCOME within
// MaxCtrlBody, so AppendCtrl can never panic on one.
func TestLargestBodiesFit(t *testing.T) {
	h := Hello{Version: Version, Ciphers: make([]uint8, MaxCiphers)}
	w := Welcome{Version: Version}
	for id := range uint8(MaxID + 1) {
		h.Uplinks = append(h.Uplinks, UplinkInfo{ID: id, Name: strings.Repeat("n", MaxUplinkName)})
		w.Addrs = append(w.Addrs, ServerAddr{ID: id, AddrPort: netip.MustParseAddrPort("[2001:db8::1]:1")})
	}
	tests := []struct {
		name   string
		append func() ([]byte, error)
	}{
		{"hello", func() ([]byte, error) { return h.Append(nil) }},
		{"welcome", func() ([]byte, error) { return w.Append(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.append()
			if err != nil || len(b) > MaxCtrlBody {
				t.Errorf("largest body: %d bytes, %v; want ≤ %d", len(b), err, MaxCtrlBody)
			}
		})
	}
}

func validHello() Hello {
	return Hello{Version: Version, Ciphers: []uint8{CipherAES256GCM}, ReceiverIndex: 1,
		Uplinks: []UplinkInfo{{ID: 0, Name: "eth0"}}}
}

func TestHelloAppendErrors(t *testing.T) {
	many := func(n int) []UplinkInfo {
		u := make([]UplinkInfo, n)
		for i := range u {
			u[i].ID = uint8(i % (MaxID + 1))
		}
		return u
	}
	tests := []struct {
		name   string
		mutate func(*Hello)
		want   error
	}{
		{"valid", func(*Hello) {}, nil},
		{"version 0", func(h *Hello) { h.Version = 0 }, ErrVersion},
		{"no ciphers", func(h *Hello) { h.Ciphers = nil }, ErrCount},
		{"nine ciphers", func(h *Hello) { h.Ciphers = make([]uint8, 9) }, ErrCount},
		{"eight ciphers", func(h *Hello) { h.Ciphers = make([]uint8, 8) }, nil},
		{"no uplinks", func(h *Hello) { h.Uplinks = nil }, ErrCount},
		{"sixteen uplinks", func(h *Hello) { h.Uplinks = many(16) }, nil},
		{"seventeen uplinks", func(h *Hello) { h.Uplinks = many(17) }, ErrCount},
		{"uplink id 16", func(h *Hello) { h.Uplinks[0].ID = 16 }, ErrID},
		{"duplicate id", func(h *Hello) { h.Uplinks = append(h.Uplinks, UplinkInfo{ID: 0}) }, ErrID},
		{"name of 32 bytes", func(h *Hello) { h.Uplinks[0].Name = strings.Repeat("n", 32) }, nil},
		{"name of 33 bytes", func(h *Hello) { h.Uplinks[0].Name = strings.Repeat("n", 33) }, ErrTooLong},
		{"name not UTF-8", func(h *Hello) { h.Uplinks[0].Name = "\xff" }, ErrName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := validHello()
			tt.mutate(&h)
			_, err := h.Append(nil)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseHelloErrors(t *testing.T) {
	// Offsets into the encoding of validHello: 9 cipher count, 10 cipher, 11..12
	// receiver index, 13 uplink count, 14 uplink id, 15 name length, 16.. name.
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"valid", func(b []byte) []byte { return b }, nil},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrMagic},
		{"version 2", func(b []byte) []byte { b[4] = 2; return b }, ErrVersion},
		{"zero ciphers", func(b []byte) []byte { b[9] = 0; return b }, ErrCount},
		{"nine ciphers", func(b []byte) []byte { b[9] = 9; return b }, ErrCount},
		{"zero uplinks", func(b []byte) []byte { b[13] = 0; return b }, ErrCount},
		{"seventeen uplinks", func(b []byte) []byte { b[13] = 17; return b }, ErrCount},
		{"uplink id 16", func(b []byte) []byte { b[14] = 16; return b }, ErrID},
		{"name length 33", func(b []byte) []byte { b[15] = 33; return append(b, make([]byte, 29)...) }, ErrTooLong},
		{"name not UTF-8", func(b []byte) []byte { b[16] = 0xff; return b }, ErrName},
		{"duplicate uplink", func(b []byte) []byte { b[13] = 2; return append(b, 0, 0) }, ErrID},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }, ErrTrailing},
		{"unknown caps ignored", func(b []byte) []byte { b[5] = 0xff; return b }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := validHello()
			enc, err := h.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseHello(tt.mutate(enc))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseHelloVersionReported(t *testing.T) {
	h, err := ParseHello([]byte("BTUN\x07 anything"))
	if !errors.Is(err, ErrVersion) || h.Version != 7 {
		t.Errorf("got version %d, err %v; want 7, ErrVersion", h.Version, err)
	}
}

func validWelcome() Welcome {
	return Welcome{Version: Version, Cipher: CipherChaCha20Poly1305, ReceiverIndex: 2,
		Addrs: []ServerAddr{{ID: 0, AddrPort: netip.MustParseAddrPort("192.0.2.1:7351")}}}
}

func TestWelcomeAppendErrors(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name   string
		mutate func(*Welcome)
		want   error
	}{
		{"valid", func(*Welcome) {}, nil},
		{"version 2", func(w *Welcome) { w.Version = 2 }, ErrVersion},
		{"no addresses", func(w *Welcome) { w.Addrs = nil }, ErrCount},
		{"seventeen addresses", func(w *Welcome) { w.Addrs = make([]ServerAddr, 17) }, ErrCount},
		{"id 16", func(w *Welcome) { w.Addrs[0].ID = 16 }, ErrID},
		{"duplicate id", func(w *Welcome) { w.Addrs = append(w.Addrs, w.Addrs[0]) }, ErrID},
		{"zero address", func(w *Welcome) { w.Addrs[0].AddrPort = netip.AddrPort{} }, ErrAddr},
		{"unspecified v4", func(w *Welcome) { w.Addrs[0].AddrPort = ap("0.0.0.0:1") }, ErrAddr},
		{"unspecified v6", func(w *Welcome) { w.Addrs[0].AddrPort = ap("[::]:1") }, ErrAddr},
		{"port 0", func(w *Welcome) { w.Addrs[0].AddrPort = ap("192.0.2.1:0") }, ErrAddr},
		{"zone", func(w *Welcome) { w.Addrs[0].AddrPort = ap("[fe80::1%eth0]:1") }, ErrAddr},
		{"v6", func(w *Welcome) { w.Addrs[0].AddrPort = ap("[2001:db8::1]:443") }, nil},
		{"v4-mapped v6", func(w *Welcome) { w.Addrs[0].AddrPort = ap("[::ffff:192.0.2.1]:443") }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := validWelcome()
			tt.mutate(&w)
			enc, err := w.Append(nil)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil {
				if got, err := ParseWelcome(enc); err != nil || !reflect.DeepEqual(got, w) {
					t.Errorf("round trip = %+v, %v", got, err)
				}
			}
		})
	}
}

func TestParseWelcomeErrors(t *testing.T) {
	// Offsets into the encoding of validWelcome: 12 address count, 13 id, 14 family,
	// 15..18 IPv4, 19..20 port.
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"valid", func(b []byte) []byte { return b }, nil},
		{"bad magic", func(b []byte) []byte { b[3] = 'X'; return b }, ErrMagic},
		{"version 0", func(b []byte) []byte { b[4] = 0; return b }, ErrVersion},
		{"zero addresses", func(b []byte) []byte { b[12] = 0; return b }, ErrCount},
		{"seventeen addresses", func(b []byte) []byte { b[12] = 17; return b }, ErrCount},
		{"id 16", func(b []byte) []byte { b[13] = 16; return b }, ErrID},
		{"family 5", func(b []byte) []byte { b[14] = 5; return b }, ErrAddr},
		{"family 6 with 4 bytes", func(b []byte) []byte { b[14] = 6; return b }, ErrShort},
		{"unspecified", func(b []byte) []byte { copy(b[15:19], []byte{0, 0, 0, 0}); return b }, ErrAddr},
		{"port 0", func(b []byte) []byte { b[19], b[20] = 0, 0; return b }, ErrAddr},
		{"duplicate id", func(b []byte) []byte { b[12] = 2; return append(b, b[13:21]...) }, ErrID},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }, ErrTrailing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := validWelcome()
			enc, err := w.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseWelcome(tt.mutate(enc))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
