package crypto

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// KeySize is the size in bytes of a private key seed and of a public key.
const KeySize = 32

// keyTextLen is the length of a key's text form: standard padded base64 of
// 32 bytes.
var keyTextLen = base64.StdEncoding.EncodedLen(KeySize)

// PublicKey is an Ed25519 public key, the identity of a bondtun peer.
// Its text form is the standard (padded) base64 encoding of its 32 bytes.
type PublicKey [KeySize]byte

// PrivateKey is an Ed25519 private key. It keeps the 32-byte seed, whose
// standard base64 encoding is the key's text form (as in the YAML
// `private_key`), and the derived public key.
//
// The zero PrivateKey is not a usable identity; [ServerTLSConfig] and
// [ClientTLSConfig] reject it.
type PrivateKey struct {
	seed [KeySize]byte
	pub  PublicKey
}

// GenerateKey returns a new private key whose seed is read from rand
// (normally crypto/rand.Reader).
func GenerateKey(rand io.Reader) (PrivateKey, error) {
	var seed [KeySize]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("crypto: generating key: %w", err)
	}
	return newPrivateKey(seed), nil
}

func newPrivateKey(seed [KeySize]byte) PrivateKey {
	k := PrivateKey{seed: seed}
	priv := ed25519.NewKeyFromSeed(seed[:])
	copy(k.pub[:], priv.Public().(ed25519.PublicKey))
	clear(priv)
	return k
}

// decodeKey decodes the canonical text form of a 32-byte key. It is strict
// (exactly 44 characters, no whitespace, zero padding bits) so that a key has
// exactly one text form and parsing then printing gives back the input.
func decodeKey(s string) ([KeySize]byte, error) {
	var k [KeySize]byte
	if len(s) != keyTextLen {
		return k, fmt.Errorf("want %d base64 characters, got %d", keyTextLen, len(s))
	}
	// Decode needs room for DecodedLen(44) = 33 bytes.
	var buf [KeySize + 1]byte
	defer clear(buf[:])
	n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(s))
	if err != nil {
		return k, errors.New("not valid standard base64")
	}
	if n != KeySize {
		return k, fmt.Errorf("want %d bytes, got %d", KeySize, n)
	}
	copy(k[:], buf[:KeySize])
	return k, nil
}

// ParsePrivateKey parses the text form of a private key (base64 of the
// 32-byte seed). The error never quotes the input, which may be a secret.
func ParsePrivateKey(s string) (PrivateKey, error) {
	seed, err := decodeKey(s)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("crypto: invalid private key: %v", err)
	}
	return newPrivateKey(seed), nil
}

// ParsePublicKey parses the text form of a public key (base64 of 32 bytes).
func ParsePublicKey(s string) (PublicKey, error) {
	k, err := decodeKey(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("crypto: invalid public key: %v", err)
	}
	return PublicKey(k), nil
}

// Public returns the public key of k.
func (k PrivateKey) Public() PublicKey { return k.pub }

// IsZero reports whether k is the zero PrivateKey, which is not a key.
func (k PrivateKey) IsZero() bool { return k.pub == PublicKey{} }

// String returns "PrivateKey(redacted)", never the secret, so that a key
// logged or printed by mistake (%v, %s, a struct holding it) leaks nothing.
// [PrivateKey.SecretText] is the text form for the few places that need it.
func (PrivateKey) String() string { return "PrivateKey(redacted)" }

// GoString hides the secret from %#v as well.
func (PrivateKey) GoString() string { return "crypto.PrivateKey(redacted)" }

// SecretText returns the text form of k: standard base64 of its seed, as in
// the YAML `private_key` and the output of `bondtun genkey`. It is the secret
// itself: call it only to hand the key to its owner (key generation, writing
// a key file), never for logs or status. PrivateKey has no MarshalText on
// purpose, so encoding/json and friends cannot serialise the secret either.
func (k PrivateKey) SecretText() string { return base64.StdEncoding.EncodeToString(k.seed[:]) }

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParsePrivateKey].
func (k *PrivateKey) UnmarshalText(text []byte) error {
	p, err := ParsePrivateKey(string(text))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// ed25519 returns the standard library form of k. The caller owns the slice.
func (k PrivateKey) ed25519() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(k.seed[:]) }

// String returns the text form of k: base64 of its 32 bytes.
func (k PublicKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// MarshalText implements [encoding.TextMarshaler] with the text form.
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParsePublicKey].
func (k *PublicKey) UnmarshalText(text []byte) error {
	p, err := ParsePublicKey(string(text))
	if err != nil {
		return err
	}
	*k = p
	return nil
}
