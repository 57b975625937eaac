package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// TagSize is the size of the authentication tag both ciphers append.
const TagSize = 16

// ErrOpen is returned by [AEAD.Open] for any datagram that does not
// authenticate. It carries no detail: the receiver drops and counts.
var ErrOpen = errors.New("crypto: message authentication failed")

// Errors of a key that must not be used any more. None is a panic: a long-lived session
// that runs out ends cleanly. The session changes keys ([AEAD.Next]) well before the
// confidentiality limit, so reaching it means a key update could not happen in time.
var (
	// ErrPacketNumberExhausted: the path's packet number passed [MaxPacketNumber], so
	// the nonce would repeat.
	ErrPacketNumberExhausted = errors.New("crypto: packet numbers of this key are used up")
	// ErrKeyExhausted: the key sealed as many datagrams as its confidentiality limit
	// allows ([Limits.Seal]).
	ErrKeyExhausted = errors.New("crypto: key reached its confidentiality limit")
	// ErrIntegrityLimit: as many datagrams failed to open as the integrity limit allows
	// ([Limits.FailedOpen]); Open refuses everything from then on.
	ErrIntegrityLimit = errors.New("crypto: key reached its integrity limit")
)

// Limits bound the use of one key (see limits.go for the figures and their sources).
type Limits struct {
	Seal       uint64 // datagrams the key may seal, over all paths
	FailedOpen uint64 // datagrams that may fail to open under it
}

// DefaultLimits returns the limits of cipher id: its confidentiality and integrity
// limits.
func DefaultLimits(id CipherID) Limits {
	return Limits{Seal: id.ConfidentialityLimit(), FailedOpen: id.IntegrityLimit()}
}

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
// It enforces the key's usage limits where their counters live: it counts the
// datagrams it sealed and those that failed to open (one atomic add each), and
// refuses to go past [Limits]. The seal count is the key's own; the failed-open
// count is shared by every key of a chain made with [AEAD.Next], since the
// integrity limit holds over all the keys of a connection (RFC 9001 §6.6).
//
// An AEAD is safe for concurrent use and allocates nothing per packet.
type AEAD struct {
	aead   cipher.AEAD
	iv     [NonceSize]byte
	id     CipherID
	limits Limits
	sealed atomic.Uint64  // datagrams sealed (or refused at the limit)
	failed *atomic.Uint64 // datagrams that failed to open, under this key or another of its chain
}

// NewAEAD returns the AEAD for cipher id keyed with k, with the cipher's
// [DefaultLimits].
func NewAEAD(id CipherID, k DirectionKeys) (*AEAD, error) {
	return NewAEADWithLimits(id, k, DefaultLimits(id))
}

// NewAEADWithLimits is [NewAEAD] with explicit limits, which must not exceed the
// cipher's defaults; a zero field means the default. Tests use small limits to reach
// them in a few packets.
func NewAEADWithLimits(id CipherID, k DirectionKeys, lim Limits) (*AEAD, error) {
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
	def := DefaultLimits(id)
	if lim.Seal == 0 || lim.Seal > def.Seal {
		lim.Seal = def.Seal
	}
	if lim.FailedOpen == 0 || lim.FailedOpen > def.FailedOpen {
		lim.FailedOpen = def.FailedOpen
	}
	return &AEAD{aead: a, iv: k.IV, id: id, limits: lim, failed: new(atomic.Uint64)}, nil
}

// Next returns the AEAD of the next key generation, keyed with k (from
// [UpdateSecret.Next]): the same cipher and limits, its own seal count starting
// at zero, and the same failed-open count as a, so that forgeries add up over
// all the keys of a session.
func (a *AEAD) Next(k DirectionKeys) (*AEAD, error) {
	n, err := NewAEADWithLimits(a.id, k, a.limits)
	if err != nil {
		return nil, err
	}
	n.failed = a.failed
	return n, nil
}

// Limits returns the limits a enforces.
func (a *AEAD) Limits() Limits { return a.limits }

// Sealed returns how many datagrams a has sealed.
func (a *AEAD) Sealed() uint64 { return min(a.sealed.Load(), a.limits.Seal) }

// FailedOpens returns how many datagrams failed to open under a and the other
// keys of its chain ([AEAD.Next]).
func (a *AEAD) FailedOpens() uint64 { return a.failed.Load() }

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
// one key. Seal returns [ErrPacketNumberExhausted] if pn exceeds
// [MaxPacketNumber] (the nonce would repeat), and [ErrKeyExhausted] once the
// key has sealed [Limits.Seal] datagrams; it then writes nothing. The session
// must change keys or end before either.
func (a *AEAD) Seal(dst, plaintext, aad []byte, pathID uint8, pn uint64) ([]byte, error) {
	if pn > MaxPacketNumber {
		return nil, ErrPacketNumberExhausted
	}
	if a.sealed.Add(1) > a.limits.Seal {
		return nil, ErrKeyExhausted
	}
	n := noncePool.Get().(*[NonceSize]byte)
	a.nonce(n, pathID, pn)
	out := a.aead.Seal(dst, n[:], plaintext, aad)
	noncePool.Put(n)
	return out, nil
}

// Open authenticates and decrypts ciphertext (which ends with the tag) and
// aad, and appends the plaintext to dst, like [cipher.AEAD.Open]. To open in
// place use ciphertext[:0] as dst. It returns [ErrOpen] if the datagram does
// not authenticate under (pathID, pn); dst's appended bytes are then
// unspecified. Failures are counted; the one that reaches [Limits.FailedOpen],
// and every call after it, returns [ErrIntegrityLimit] instead, without
// trying: past that many forgeries the key's integrity bound no longer holds.
func (a *AEAD) Open(dst, ciphertext, aad []byte, pathID uint8, pn uint64) ([]byte, error) {
	if a.failed.Load() >= a.limits.FailedOpen {
		return nil, ErrIntegrityLimit
	}
	if pn > MaxPacketNumber || len(ciphertext) < TagSize {
		return nil, a.openFailed()
	}
	n := noncePool.Get().(*[NonceSize]byte)
	a.nonce(n, pathID, pn)
	out, err := a.aead.Open(dst, n[:], ciphertext, aad)
	noncePool.Put(n)
	if err != nil {
		return nil, a.openFailed()
	}
	return out, nil
}

// openFailed counts a failed open and returns its error.
func (a *AEAD) openFailed() error {
	if a.failed.Add(1) >= a.limits.FailedOpen {
		return ErrIntegrityLimit
	}
	return ErrOpen
}
