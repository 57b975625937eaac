package framing

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"unicode/utf8"
)

// Version is the protocol version this package speaks.
const Version = 1

// Magic starts every HELLO and WELCOME body.
const Magic = "BTUN"

// Cipher ids (PROTOCOL.md §1).
const (
	CipherChaCha20Poly1305 uint8 = 1
	CipherAES256GCM        uint8 = 2
)

// Capability bits of HELLO and WELCOME (PROTOCOL.md §1). A receiver ignores bits it does
// not know; a server sets in WELCOME only bits the HELLO had.
const (
	// CapKeyUpdate: the sender updates data keys (PROTOCOL.md §1 "Key update"). Both
	// sides must have it for either to start an update.
	CapKeyUpdate uint32 = 1 << 0
	// CapUplinks: the client may announce uplinks added during the session (UPLINKS,
	// PROTOCOL.md §1), and the server adds their paths.
	CapUplinks uint32 = 1 << 1
)

// Limits on HELLO and WELCOME bodies (PROTOCOL.md §1).
const (
	MaxCiphers    = 8
	MaxUplinks    = 16
	MaxUplinkName = 32 // bytes
	MaxAddrs      = 16
	MaxID         = 15 // uplink and address ids fit a path id's nibble
)

// Hello is the body of a HELLO message.
type Hello struct {
	Version       uint8
	Caps          uint32  // capability bits (CapKeyUpdate); unknown ones ignored
	Ciphers       []uint8 // 1..MaxCiphers cipher ids, preferred first; unknown ids allowed
	ReceiverIndex uint16  // what the server must put in datagrams to the client
	Uplinks       []UplinkInfo
}

// UplinkInfo describes one client uplink in a HELLO.
type UplinkInfo struct {
	ID   uint8  // 0..MaxID, unique within the HELLO
	Name string // at most MaxUplinkName bytes of UTF-8, informational
}

// Welcome is the body of a WELCOME message.
type Welcome struct {
	Version       uint8
	Caps          uint32
	Cipher        uint8  // chosen cipher; the client checks it offered it
	ReceiverIndex uint16 // what the client must put in datagrams to the server
	Addrs         []ServerAddr
}

// ServerAddr is one server address in a WELCOME.
type ServerAddr struct {
	ID       uint8 // 0..MaxID, unique within the WELCOME
	AddrPort netip.AddrPort
}

// Append validates h against the limits of PROTOCOL.md §1 and appends its encoding to b.
func (h *Hello) Append(b []byte) ([]byte, error) {
	if err := h.validate(); err != nil {
		return b, err
	}
	b = appendPreamble(b, h.Version, h.Caps)
	b = append(b, byte(len(h.Ciphers)))
	b = append(b, h.Ciphers...)
	b = binary.BigEndian.AppendUint16(b, h.ReceiverIndex)
	return appendUplinks(b, h.Uplinks), nil
}

func (h *Hello) validate() error {
	if h.Version != Version {
		return fmt.Errorf("hello: version %d: %w", h.Version, ErrVersion)
	}
	if n := len(h.Ciphers); n < 1 || n > MaxCiphers {
		return fmt.Errorf("hello: %d ciphers: %w", n, ErrCount)
	}
	return validateUplinks("hello", h.Uplinks)
}

// ParseHello decodes and validates a HELLO body. On [ErrVersion] the returned Hello
// carries the peer's version, so a server can say which one it does not support; the
// rest of a foreign version's body is not parsed.
func ParseHello(b []byte) (Hello, error) {
	var h Hello
	d := decoder{b: b}
	var err error
	if h.Version, h.Caps, err = d.preamble(); err != nil {
		return Hello{Version: h.Version}, fmt.Errorf("hello: %w", err)
	}
	nc := int(d.u8())
	if d.err == nil && (nc < 1 || nc > MaxCiphers) {
		return Hello{}, fmt.Errorf("hello: %d ciphers: %w", nc, ErrCount)
	}
	if c := d.bytes(nc); c != nil {
		h.Ciphers = append([]uint8(nil), c...)
	}
	h.ReceiverIndex = d.u16()
	if h.Uplinks, err = d.uplinks("hello"); err != nil {
		return Hello{}, err
	}
	if err := d.finish(); err != nil {
		return Hello{}, fmt.Errorf("hello: %w", err)
	}
	return h, nil
}

// Append validates w against the limits of PROTOCOL.md §1 and appends its encoding to b.
func (w *Welcome) Append(b []byte) ([]byte, error) {
	if err := w.validate(); err != nil {
		return b, err
	}
	b = appendPreamble(b, w.Version, w.Caps)
	b = append(b, w.Cipher)
	b = binary.BigEndian.AppendUint16(b, w.ReceiverIndex)
	b = append(b, byte(len(w.Addrs)))
	for _, a := range w.Addrs {
		ip := a.AddrPort.Addr()
		b = append(b, a.ID)
		if ip.Is4() {
			v4 := ip.As4()
			b = append(b, 4)
			b = append(b, v4[:]...)
		} else {
			v6 := ip.As16()
			b = append(b, 6)
			b = append(b, v6[:]...)
		}
		b = binary.BigEndian.AppendUint16(b, a.AddrPort.Port())
	}
	return b, nil
}

func (w *Welcome) validate() error {
	if w.Version != Version {
		return fmt.Errorf("welcome: version %d: %w", w.Version, ErrVersion)
	}
	if n := len(w.Addrs); n < 1 || n > MaxAddrs {
		return fmt.Errorf("welcome: %d addresses: %w", n, ErrCount)
	}
	var seen idSet
	for _, a := range w.Addrs {
		if err := seen.add(a.ID); err != nil {
			return fmt.Errorf("welcome: address %d: %w", a.ID, err)
		}
		if err := checkAddr(a.AddrPort); err != nil {
			return fmt.Errorf("welcome: address %d (%v): %w", a.ID, a.AddrPort, err)
		}
	}
	return nil
}

// ParseWelcome decodes and validates a WELCOME body. On [ErrVersion] the returned
// Welcome carries only the peer's version.
func ParseWelcome(b []byte) (Welcome, error) {
	var w Welcome
	d := decoder{b: b}
	var err error
	if w.Version, w.Caps, err = d.preamble(); err != nil {
		return Welcome{Version: w.Version}, fmt.Errorf("welcome: %w", err)
	}
	w.Cipher = d.u8()
	w.ReceiverIndex = d.u16()
	n := int(d.u8())
	if d.err == nil && (n < 1 || n > MaxAddrs) {
		return Welcome{}, fmt.Errorf("welcome: %d addresses: %w", n, ErrCount)
	}
	var seen idSet
	for i := 0; i < n && d.err == nil; i++ {
		a, err := d.serverAddr()
		if err != nil {
			return Welcome{}, fmt.Errorf("welcome: address %d: %w", a.ID, err)
		}
		if d.err != nil {
			break
		}
		if err := seen.add(a.ID); err != nil {
			return Welcome{}, fmt.Errorf("welcome: address %d: %w", a.ID, err)
		}
		w.Addrs = append(w.Addrs, a)
	}
	if err := d.finish(); err != nil {
		return Welcome{}, fmt.Errorf("welcome: %w", err)
	}
	return w, nil
}

func appendPreamble(b []byte, version uint8, caps uint32) []byte {
	b = append(b, Magic...)
	b = append(b, version)
	return binary.BigEndian.AppendUint32(b, caps)
}

func checkName(name string) error {
	if len(name) > MaxUplinkName {
		return ErrTooLong
	}
	if !utf8.ValidString(name) {
		return ErrName
	}
	return nil
}

// checkAddr rejects what a client could not send datagrams to.
func checkAddr(ap netip.AddrPort) error {
	ip := ap.Addr()
	if !ip.IsValid() || ip.IsUnspecified() || ip.Zone() != "" || ap.Port() == 0 {
		return ErrAddr
	}
	return nil
}

// idSet tracks the uplink or address ids seen in one message.
type idSet uint16

func (s *idSet) add(id uint8) error {
	if id > MaxID || *s&(1<<id) != 0 {
		return ErrID
	}
	*s |= 1 << id
	return nil
}
