// Package framing is bondtun's wire format, version 1, as specified in docs/PROTOCOL.md.
//
// It encodes and decodes the three layers of the protocol:
//
//   - the data-plane datagram: the cleartext [Header] (the AEAD's associated data) and the
//     sealed [InnerHeader] that prefixes every payload;
//   - the control frames carried in a control datagram's payload ([Probe], [ProbeAck],
//     [Feedback], iterated with [FrameReader]);
//   - the control-channel messages on the TLS stream ([AppendCtrl], [ReadCtrl]) and the
//     HELLO/WELCOME bodies ([Hello], [Welcome]).
//
// The package is pure: no goroutines, sockets or clock reads. Times are passed in by the
// caller. Everything on the data path (headers, frames, sequence and time arithmetic) works
// on caller-owned byte slices and allocates nothing; its errors are bare sentinels so that a
// dropped datagram costs no allocation either. The control-channel codecs run once per
// session and may allocate.
//
// Encoders write into or append to a caller's buffer. A field that does not fit its wire
// width is a caller bug: counters that are defined modulo their width (lane sequence) are
// masked, and a packet number above [MaxPacketNumber], which would reuse a nonce, panics.
package framing
