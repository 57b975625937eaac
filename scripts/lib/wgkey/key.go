package main

import (
	"encoding/hex"

	"golang.org/x/crypto/curve25519"
)

// Keypair is a Curve25519 key pair in WireGuard's form: the private key
// clamped as RFC 7748 prescribes, the public key its base-point product.
type Keypair struct {
	Private, Public [32]byte
}

// NewKeypair derives a key pair from 32 random bytes.
func NewKeypair(seed [32]byte) (Keypair, error) {
	kp := Keypair{Private: seed}
	kp.Private[0] &= 248
	kp.Private[31] = kp.Private[31]&127 | 64
	pub, err := curve25519.X25519(kp.Private[:], curve25519.Basepoint)
	if err != nil {
		return Keypair{}, err
	}
	copy(kp.Public[:], pub)
	return kp, nil
}

// String formats the pair as "PRIVATE_HEX PUBLIC_HEX".
func (kp Keypair) String() string {
	return hex.EncodeToString(kp.Private[:]) + " " + hex.EncodeToString(kp.Public[:])
}
