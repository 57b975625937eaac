// Package crypto holds bondtun's cryptography: Ed25519 identities and their
// text form, the TLS 1.3 configurations of the control channel with pinned
// peer keys, the derivation of the per-direction data keys from the TLS
// session, the AEAD that seals and opens datagrams with implicit nonces, and
// the per-path replay window.
//
// The package is pure logic: it starts no goroutines, opens no sockets and
// reads no clock. It derives the successive key generations of a key update
// (rekey.go); when to update is the session's policy, within the key-use
// limits documented in limits.go.
//
// The wire-level rules implemented here are specified in docs/PROTOCOL.md §1
// (TLS, key labels, cipher ids) and §3 (nonce construction, replay window).
package crypto
