package framing

import (
	"encoding/binary"
	"io"
)

// CtrlType is the type of a control-channel message (PROTOCOL.md §1).
type CtrlType uint8

// Control-channel message types defined in v1.
const (
	// CtrlHello opens the session, client to server; body [Hello].
	CtrlHello CtrlType = 1
	// CtrlWelcome accepts it, server to client; body [Welcome].
	CtrlWelcome CtrlType = 2
	// CtrlError carries a UTF-8 reason; the sender then closes.
	CtrlError CtrlType = 3
	// CtrlBye tears the session down; empty body.
	CtrlBye CtrlType = 4
	// CtrlKeepalive keeps the TCP connection busy; empty body. The server also answers a
	// RESUME it accepts with one.
	CtrlKeepalive CtrlType = 5
	// CtrlResume moves an existing session to this control connection, client to server,
	// instead of HELLO; body [Resume].
	CtrlResume CtrlType = 6
	// CtrlUplinks lists the client's uplinks during a session, client to server, where
	// both sides announced [CapUplinks]; body [Uplinks].
	CtrlUplinks CtrlType = 7
)

// String returns the message's name as PROTOCOL.md spells it.
func (t CtrlType) String() string {
	switch t {
	case CtrlHello:
		return "HELLO"
	case CtrlWelcome:
		return "WELCOME"
	case CtrlError:
		return "ERROR"
	case CtrlBye:
		return "BYE"
	case CtrlKeepalive:
		return "KEEPALIVE"
	case CtrlResume:
		return "RESUME"
	case CtrlUplinks:
		return "UPLINKS"
	}
	return "UNKNOWN"
}

const (
	// CtrlHeaderLen is the size of a control message's type and length prefix.
	CtrlHeaderLen = 3
	// MaxCtrlBody is the largest control message body.
	MaxCtrlBody = 4096
)

// AppendCtrl appends a control message of type t with the given body to b. It panics if
// the body exceeds [MaxCtrlBody]: bodies are built by this package's encoders, which
// enforce smaller limits, or are ERROR reasons the caller must truncate (see
// [TruncateReason]).
func AppendCtrl(b []byte, t CtrlType, body []byte) []byte {
	if len(body) > MaxCtrlBody {
		panic("framing: control message body exceeds MaxCtrlBody")
	}
	b = append(b, byte(t))
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// ReadCtrl reads one control message from r, using buf (at least [CtrlHeaderLen] bytes;
// [MaxCtrlBody] bytes accept every valid message) as its only storage. The body it
// returns aliases buf. It returns io.EOF if r ends cleanly before a message and
// io.ErrUnexpectedEOF if it ends inside one. It fails with [ErrBadType] for a type not
// defined in v1, [ErrTooLong] for a length above MaxCtrlBody or len(buf), and [ErrBody]
// for a BYE or KEEPALIVE with a body; in these cases the stream is not resynchronised and
// the caller must close it.
func ReadCtrl(r io.Reader, buf []byte) (CtrlType, []byte, error) {
	if len(buf) < CtrlHeaderLen {
		return 0, nil, ErrTooLong
	}
	t, n, err := readCtrlHeader(r, buf[:CtrlHeaderLen], len(buf))
	if err != nil {
		return 0, nil, err
	}
	return readCtrlBody(r, t, buf[:n])
}

// ReadCtrlGrow is [ReadCtrl] with storage that grows on demand: it reads the header into
// hdr and the body into *body, which it replaces (by one of the body's length rounded up
// to 256 bytes, at most MaxCtrlBody) only when it is too short. A stream that carries only
// empty messages (KEEPALIVE) so needs no body buffer, and one that carries bodies
// allocates at most a few times. The body it returns aliases *body; the errors are
// ReadCtrl's with a buffer of MaxCtrlBody bytes.
func ReadCtrlGrow(r io.Reader, hdr *[CtrlHeaderLen]byte, body *[]byte) (CtrlType, []byte, error) {
	t, n, err := readCtrlHeader(r, hdr[:], MaxCtrlBody)
	if err != nil {
		return 0, nil, err
	}
	if len(*body) < n {
		*body = make([]byte, min((n+255)&^255, MaxCtrlBody))
	}
	return readCtrlBody(r, t, (*body)[:n])
}

// readCtrlHeader reads a control message's header into hdr and checks it: the body of n
// bytes (at most limit) follows.
func readCtrlHeader(r io.Reader, hdr []byte, limit int) (CtrlType, int, error) {
	if _, err := io.ReadFull(r, hdr); err != nil {
		return 0, 0, err
	}
	t := CtrlType(hdr[0])
	n := int(binary.BigEndian.Uint16(hdr[1:3]))
	switch {
	case t < CtrlHello || t > CtrlUplinks:
		return 0, 0, ErrBadType
	case n > MaxCtrlBody || n > limit:
		return 0, 0, ErrTooLong
	case n > 0 && (t == CtrlBye || t == CtrlKeepalive):
		return 0, 0, ErrBody
	}
	return t, n, nil
}

// readCtrlBody reads the body of a message of type t, len(body) bytes, into body.
func readCtrlBody(r io.Reader, t CtrlType, body []byte) (CtrlType, []byte, error) {
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the header was read: the message is cut
		}
		return 0, nil, err
	}
	return t, body, nil
}

// TruncateReason returns reason cut to at most [MaxCtrlBody] bytes at a UTF-8 rune
// boundary, ready to be an ERROR body.
func TruncateReason(reason string) string {
	if len(reason) <= MaxCtrlBody {
		return reason
	}
	cut := MaxCtrlBody
	for cut > 0 && reason[cut]&0xc0 == 0x80 { // back off continuation bytes
		cut--
	}
	return reason[:cut]
}
