// Package perf holds the pure, allocation-free pieces of btperf, bondtun's
// traffic tool: the 16-byte TCP test header, the end-of-test report, the
// deterministic pseudo-random byte stream used for integrity checks, the
// receiver-side byte timeline from which goodput and interval rates are
// computed, the UDP datagram format with its loss/reorder counter, and the
// RESULT line format that scripts parse.
//
// Nothing here starts goroutines, touches sockets or reads the clock: time is
// passed in by the caller as an offset from the start of a test.
package perf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Wire layout of the TCP test header, sent by the client as the first 16
// bytes of every data connection. All integers are big-endian.
//
//	off size field
//	0   1    magic 0xB7
//	1   1    version (1)
//	2   1    flags (FlagReverse, FlagVerify, FlagBytes)
//	3   1    congestion-control id (index into the CC table, 0 = kernel default)
//	4   1    number of flows in the test (1..255)
//	5   1    index of this flow (0..flows-1)
//	6   2    test seed for the pseudo-random stream
//	8   4    duration in milliseconds (the test length; in bytes mode the deadline)
//	12  4    bytes this flow carries in bytes mode (0 otherwise)
const (
	HeaderLen     = 16
	HeaderMagic   = 0xB7
	HeaderVersion = 1

	headerOffMagic    = 0
	headerOffVersion  = 1
	headerOffFlags    = 2
	headerOffCC       = 3
	headerOffFlows    = 4
	headerOffFlow     = 5
	headerOffSeed     = 6
	headerOffDuration = 8
	headerOffBytes    = 12
)

// MaxDuration bounds the test length a header may carry, so a server never
// commits to an unbounded test.
const MaxDuration = 24 * time.Hour

// Flags select the test mode.
type Flags uint8

const (
	// FlagReverse makes the server the sender ("download").
	FlagReverse Flags = 1 << 0
	// FlagVerify makes the receiver check every byte against the stream.
	FlagVerify Flags = 1 << 1
	// FlagBytes selects bytes mode: the sender sends exactly Header.Bytes.
	FlagBytes Flags = 1 << 2

	flagsKnown = FlagReverse | FlagVerify | FlagBytes
)

// Header errors.
var (
	ErrShort    = errors.New("perf: message too short")
	ErrMagic    = errors.New("perf: bad magic")
	ErrVersion  = errors.New("perf: unsupported version")
	ErrFlags    = errors.New("perf: unknown flags")
	ErrFlows    = errors.New("perf: bad flow count or index")
	ErrCC       = errors.New("perf: unknown congestion control")
	ErrDuration = errors.New("perf: duration out of range")
	ErrBytes    = errors.New("perf: byte count without bytes mode")
)

// Header describes one flow of a TCP test.
type Header struct {
	Flags    Flags
	CC       uint8         // congestion-control id, see CCID; 0 = kernel default
	Flows    uint8         // flows in the test, 1..255
	Flow     uint8         // this flow's index, 0..Flows-1
	Seed     uint16        // per-test seed of the pseudo-random stream
	Duration time.Duration // test length, millisecond precision, (0, MaxDuration]
	Bytes    uint32        // bytes this flow carries in bytes mode
}

// Reverse reports whether the server is the sender.
func (h *Header) Reverse() bool { return h.Flags&FlagReverse != 0 }

// Verify reports whether the receiver checks the stream.
func (h *Header) Verify() bool { return h.Flags&FlagVerify != 0 }

// BytesMode reports whether the flow carries exactly h.Bytes bytes.
func (h *Header) BytesMode() bool { return h.Flags&FlagBytes != 0 }

func (h *Header) validate() error {
	switch {
	case h.Flags&^flagsKnown != 0:
		return ErrFlags
	case int(h.CC) >= len(ccNames):
		return ErrCC
	case h.Flows == 0 || h.Flow >= h.Flows:
		return ErrFlows
	case h.Duration < time.Millisecond || h.Duration > MaxDuration:
		return ErrDuration
	case h.Bytes != 0 && !h.BytesMode():
		return ErrBytes
	}
	return nil
}

// Append appends the encoded header to b. It rejects a header that
// ParseHeader would reject, so both ends agree on what is valid.
func (h *Header) Append(b []byte) ([]byte, error) {
	if err := h.validate(); err != nil {
		return b, err
	}
	var w [HeaderLen]byte
	w[headerOffMagic] = HeaderMagic
	w[headerOffVersion] = HeaderVersion
	w[headerOffFlags] = byte(h.Flags)
	w[headerOffCC] = h.CC
	w[headerOffFlows] = h.Flows
	w[headerOffFlow] = h.Flow
	binary.BigEndian.PutUint16(w[headerOffSeed:], h.Seed)
	binary.BigEndian.PutUint32(w[headerOffDuration:], uint32(h.Duration/time.Millisecond))
	binary.BigEndian.PutUint32(w[headerOffBytes:], h.Bytes)
	return append(b, w[:]...), nil
}

// ParseHeader decodes a header from the first HeaderLen bytes of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrShort
	}
	if b[headerOffMagic] != HeaderMagic {
		return Header{}, ErrMagic
	}
	if b[headerOffVersion] != HeaderVersion {
		return Header{}, ErrVersion
	}
	h := Header{
		Flags:    Flags(b[headerOffFlags]),
		CC:       b[headerOffCC],
		Flows:    b[headerOffFlows],
		Flow:     b[headerOffFlow],
		Seed:     binary.BigEndian.Uint16(b[headerOffSeed:]),
		Duration: time.Duration(binary.BigEndian.Uint32(b[headerOffDuration:])) * time.Millisecond,
		Bytes:    binary.BigEndian.Uint32(b[headerOffBytes:]),
	}
	if err := h.validate(); err != nil {
		return Header{}, err
	}
	return h, nil
}

// ccNames maps wire ids to Linux TCP_CONGESTION names. The table is
// append-only: ids are part of the wire format.
var ccNames = [...]string{
	"", "cubic", "reno", "bbr", "vegas", "westwood", "htcp", "dctcp", "bic",
	"highspeed", "hybla", "illinois", "lp", "nv", "scalable", "veno", "yeah", "cdg",
}

// CCID returns the wire id of a congestion-control name; "" maps to 0, the
// kernel default.
func CCID(name string) (uint8, error) {
	for i, n := range ccNames {
		if n == name {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrCC, name)
}

// CCName returns the congestion-control name for a wire id; "" means the
// kernel default. It returns false for an unknown id.
func CCName(id uint8) (string, bool) {
	if int(id) >= len(ccNames) {
		return "", false
	}
	return ccNames[id], true
}

// FlowBytes splits a total byte count over flows: flow i carries
// total/flows, and the first total%flows flows one byte more.
func FlowBytes(total uint64, flows, i int) uint64 {
	n := total / uint64(flows)
	if uint64(i) < total%uint64(flows) {
		n++
	}
	return n
}
