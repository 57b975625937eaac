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
	if _, err := io.ReadFull(r, buf[:CtrlHeaderLen]); err != nil {
		return 0, nil, err
	}
	t := CtrlType(buf[0])
	n := int(binary.BigEndian.Uint16(buf[1:3]))
	switch {
	case t < CtrlHello || t > CtrlUplinks:
		return 0, nil, ErrBadType
	case n > MaxCtrlBody || n > len(buf):
		return 0, nil, ErrTooLong
	case n > 0 && (t == CtrlBye || t == CtrlKeepalive):
		return 0, nil, ErrBody
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the header was read: the message is cut
		}
		return 0, nil, err
	}
	return t, buf[:n], nil
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
