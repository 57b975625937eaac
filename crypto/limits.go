package crypto

// Key-use limits. [AEAD] enforces the confidentiality and integrity limits
// (its Seal and Open return errors past them, see [Limits]); the session
// enforces the packet number limit per path, changes keys ([AEAD.Next],
// [UpdateSecret]) well before the confidentiality limit, and ends when any
// limit is reached all the same. Figures are from RFC 9001 §6.6
// (QUIC-TLS; derived in its Appendix B), whose packet sizes (up to 2^16
// bytes) cover bondtun's MTU-sized datagrams; docs/PROTOCOL.md "Key usage
// limits" has the table.
const (
	// MaxPacketNumber is the largest packet number: the header carries 48
	// bits (docs/PROTOCOL.md §3). A path must never wrap under one key.
	MaxPacketNumber = 1<<48 - 1

	// AES256GCMConfidentialityLimit is the number of datagrams one AES-GCM
	// key may seal, summed over all paths of a direction (RFC 9001 §6.6:
	// 2^23 encrypted packets). About 8.4 M packets: ~100 s at 1 Gbit/s of
	// 1400-byte datagrams, so AES-GCM sessions must rekey on a count, not
	// only on time.
	AES256GCMConfidentialityLimit = 1 << 23

	// ChaCha20Poly1305ConfidentialityLimit is the same limit for
	// ChaCha20-Poly1305. RFC 9001 §6.6 says it exceeds the number of
	// possible packets (2^62) and can be disregarded; in bondtun the 48-bit
	// packet number runs out first.
	ChaCha20Poly1305ConfidentialityLimit = 1 << 62

	// AES256GCMIntegrityLimit is the number of datagrams that may fail to
	// open with AES-GCM (RFC 9001 §6.6: 2^52 invalid packets), counted over
	// all keys of a session; past it the session must close.
	AES256GCMIntegrityLimit = 1 << 52

	// ChaCha20Poly1305IntegrityLimit is the same limit for
	// ChaCha20-Poly1305 (RFC 9001 §6.6: 2^36 invalid packets, ~69 G).
	ChaCha20Poly1305IntegrityLimit = 1 << 36
)

// ConfidentialityLimit returns the number of datagrams one key of cipher c
// may seal (see the constants above), or 0 for an unknown cipher.
func (c CipherID) ConfidentialityLimit() uint64 {
	switch c {
	case CipherAES256GCM:
		return AES256GCMConfidentialityLimit
	case CipherChaCha20Poly1305:
		return ChaCha20Poly1305ConfidentialityLimit
	}
	return 0
}

// IntegrityLimit returns the number of failed opens a session using cipher
// c may tolerate before closing, or 0 for an unknown cipher.
func (c CipherID) IntegrityLimit() uint64 {
	switch c {
	case CipherAES256GCM:
		return AES256GCMIntegrityLimit
	case CipherChaCha20Poly1305:
		return ChaCha20Poly1305IntegrityLimit
	}
	return 0
}
