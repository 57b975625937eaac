package bond

import (
	"crypto/rand"

	"github.com/bondtun/bondtun/crypto"
)

// PrivateKey is an end's identity (Ed25519); it prints as redacted.
type PrivateKey = crypto.PrivateKey

// PublicKey is the key a peer is pinned by.
type PublicKey = crypto.PublicKey

// GenerateKey makes a new private key.
func GenerateKey() (PrivateKey, error) { return crypto.GenerateKey(rand.Reader) }

// ParsePrivateKey decodes a private key in the base64 form `bondtun genkey` prints.
func ParsePrivateKey(s string) (PrivateKey, error) { return crypto.ParsePrivateKey(s) }

// ParsePublicKey decodes a public key in the base64 form `bondtun pubkey` prints.
func ParsePublicKey(s string) (PublicKey, error) { return crypto.ParsePublicKey(s) }
