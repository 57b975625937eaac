package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// TagSize is the size of the authentication tag both ciphers append.
const TagSize = 16

// ErrOpen is returned by [AEAD.Open] for any datagram that does not
// authenticate. It carries no detail: the receiver drops and counts.
var ErrOpen = errors.New("crypto: message authentication failed")

// noncePool holds the nonce scratch buffers of Seal and Open.
//
// Why not a local array: a slice of a local passed to an interface method
// (cipher.AEAD.Seal) escapes, so a stack nonce costs one heap allocation per
// packet. A field of AEAD would make AEAD unsafe for concurrent use. A
// sync.Pool of *[NonceSize]byte is allocation-free in steady state (boxing a
// pointer in an interface does not allocate) and costs a few ns per packet.
var noncePool = sync.Pool{New: func() any { return new([NonceSize]byte) }}

// AEAD seals and opens datagrams with one direction's keys. The nonce is
// implicit: IV XOR (0^5 ‖ path id ‖ 48-bit packet number), so one key serves
// every path without nonce reuse as long as each path's packet numbers never
// repeat under the key (docs/PROTOCOL.md §3).
//
// An AEAD is safe for concurrent use and allocates nothing per packet.
type AEAD struct {
	aead cipher.AEAD
	iv   [NonceSize]byte
	id   CipherID
}

// NewAEAD returns the AEAD for cipher id keyed with k.
func NewAEAD(id CipherID, k DirectionKeys) (*AEAD, error) {
	var (
		a   cipher.AEAD
		err error
	)
	switch id {
	case CipherChaCha20Poly1305:
		a, err = chacha20poly1305.New(k.Key[:])
	case CipherAES256GCM:
		var b cipher.Block
		if b, err = aes.NewCipher(k.Key[:]); err == nil {
			a, err = cipher.NewGCM(b)
		}
	default:
		return nil, fmt.Errorf("crypto: unknown cipher id %d", uint8(id))
	}
	if err != nil {
		return nil, fmt.Errorf("crypto: %v: %w", id, err)
	}
	if a.NonceSize() != NonceSize || a.Overhead() != TagSize {
		return nil, fmt.Errorf("crypto: %v: unexpected nonce or tag size", id)
	}
	return &AEAD{aead: a, iv: k.IV, id: id}, nil
}

// Cipher returns the cipher id a was created with.
func (a *AEAD) Cipher() CipherID { return a.id }

// nonce writes the nonce of (pathID, pn) into n.
func (a *AEAD) nonce(n *[NonceSize]byte, pathID uint8, pn uint64) {
	*n = a.iv
	n[5] ^= pathID
	n[6] ^= byte(pn >> 40)
	n[7] ^= byte(pn >> 32)
	n[8] ^= byte(pn >> 24)
	n[9] ^= byte(pn >> 16)
	n[10] ^= byte(pn >> 8)
	n[11] ^= byte(pn)
}

// Seal encrypts and authenticates plaintext, authenticates aad (the
// cleartext header), and appends the result (len(plaintext)+TagSize bytes)
// to dst, like [cipher.AEAD.Seal]. To seal in place use plaintext[:0] as
// dst; otherwise dst's spare capacity must not overlap plaintext, and the
// appended output must not overlap aad.
//
// The caller must never seal two datagrams with the same (pathID, pn) under
// one key. Seal panics if pn exceeds [MaxPacketNumber], because the nonce
// would repeat: the session must rekey before that.
func (a *AEAD) Seal(dst, plaintext, aad []byte, pathID uint8, pn uint64) []byte {
	if pn > MaxPacketNumber {
		panic("crypto: packet number exceeds 48 bits")
	}
	n := noncePool.Get().(*[NonceSize]byte)
	a.nonce(n, pathID, pn)
	out := a.aead.Seal(dst, n[:], plaintext, aad)
	noncePool.Put(n)
	return out
}

// Open authenticates and decrypts ciphertext (which ends with the tag) and
// aad, and appends the plaintext to dst, like [cipher.AEAD.Open]. To open in
// place use ciphertext[:0] as dst. It returns [ErrOpen] if the datagram does
// not authenticate under (pathID, pn); dst's appended bytes are then
// unspecified.
func (a *AEAD) Open(dst, ciphertext, aad []byte, pathID uint8, pn uint64) ([]byte, error) {
	if pn > MaxPacketNumber || len(ciphertext) < TagSize {
		return nil, ErrOpen
	}
	n := noncePool.Get().(*[NonceSize]byte)
	a.nonce(n, pathID, pn)
	out, err := a.aead.Open(dst, n[:], ciphertext, aad)
	noncePool.Put(n)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
