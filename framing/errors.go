package framing

import "errors"

// Sentinel errors returned by the parsers. Data-path parsers return them bare (no
// allocation); control-channel parsers wrap them with context, so test with [errors.Is].
var (
	// ErrShort means the input ends before the structure does.
	ErrShort = errors.New("framing: input too short")
	// ErrBadType means a message, datagram or control type is not defined in v1.
	ErrBadType = errors.New("framing: unknown type")
	// ErrReserved means a reserved header bit is set.
	ErrReserved = errors.New("framing: reserved bit set")
	// ErrTooLong means a length exceeds its protocol limit or the caller's buffer.
	ErrTooLong = errors.New("framing: too long")
	// ErrFrameLen means a known control frame has a body of the wrong length.
	ErrFrameLen = errors.New("framing: bad frame body length")
	// ErrTrailing means bytes follow the end of a structure that must end its input.
	ErrTrailing = errors.New("framing: trailing bytes")
	// ErrMagic means a HELLO or WELCOME body does not start with "BTUN".
	ErrMagic = errors.New("framing: bad magic")
	// ErrVersion means a HELLO or WELCOME carries a protocol version other than [Version].
	ErrVersion = errors.New("framing: unsupported protocol version")
	// ErrCount means a list in a HELLO or WELCOME has too few or too many entries.
	ErrCount = errors.New("framing: list count out of range")
	// ErrID means an uplink or address id is above 15 or repeated.
	ErrID = errors.New("framing: bad or duplicate id")
	// ErrName means an uplink name is not valid UTF-8.
	ErrName = errors.New("framing: uplink name is not UTF-8")
	// ErrAddr means a server address has a bad family, no usable IP, a zone, or port 0.
	ErrAddr = errors.New("framing: bad server address")
	// ErrBody means a control message that must be empty (BYE, KEEPALIVE) has a body.
	ErrBody = errors.New("framing: unexpected body")
	// ErrTier means a PATH_STATUS frame names an unknown tier.
	ErrTier = errors.New("framing: unknown path tier")
)
