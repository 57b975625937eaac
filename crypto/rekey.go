package crypto

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Key update (docs/PROTOCOL.md §1 "Key update"). The keys of generation 0 are the
// exported ones ([DeriveKeys]). Each direction also exports a 32-byte update secret,
// secret_1; generation n ≥ 1 uses
//
//	key_n = HKDF-Expand-Label(secret_n, "bondtun key", "", 32)
//	iv_n  = HKDF-Expand-Label(secret_n, "bondtun iv", "", 12)
//	secret_n+1 = HKDF-Expand-Label(secret_n, "bondtun ku", "", 32)
//
// with SHA-256 and TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1), as QUIC's key update
// does (RFC 9001 §6.1, labels "quic key", "quic iv", "quic ku"). The next secret is
// derived from the current one only, so both ends compute the same generations without
// talking, and an old secret, once wiped, cannot be recomputed from a newer one.
const (
	labelUpdateClientToServer = "bondtun v1 client to server key update"
	labelUpdateServerToClient = "bondtun v1 server to client key update"
	labelKU                   = "bondtun ku"
	labelKey                  = "bondtun key"
	labelIV                   = "bondtun iv"
)

// UpdateSecret is one direction's key-update secret: the secret of the next key
// generation. Its String hides it.
type UpdateSecret struct {
	s [sha256.Size]byte
}

// String hides the secret.
func (UpdateSecret) String() string { return "UpdateSecret{redacted}" }

// GoString hides the secret from %#v as well.
func (UpdateSecret) GoString() string { return "crypto.UpdateSecret{redacted}" }

// DeriveUpdateSecrets exports the key-update secrets of a session (generation 1 of each
// direction), the client's sending one first for the client, as [DeriveKeys].
func DeriveUpdateSecrets(export Exporter, isClient bool) (send, recv UpdateSecret, err error) {
	c2s, err := exportSecret(export, labelUpdateClientToServer)
	if err != nil {
		return UpdateSecret{}, UpdateSecret{}, err
	}
	s2c, err := exportSecret(export, labelUpdateServerToClient)
	if err != nil {
		return UpdateSecret{}, UpdateSecret{}, err
	}
	if isClient {
		return c2s, s2c, nil
	}
	return s2c, c2s, nil
}

func exportSecret(export Exporter, label string) (UpdateSecret, error) {
	var u UpdateSecret
	b, err := export(label, nil, len(u.s))
	if err != nil {
		return u, fmt.Errorf("crypto: exporting %q: %w", label, err)
	}
	defer clear(b)
	if len(b) != len(u.s) {
		return u, errors.New("crypto: exporter returned a secret of the wrong size")
	}
	copy(u.s[:], b)
	return u, nil
}

// Next returns the keys of the generation u is the secret of, and moves u on to the
// secret of the generation after it, wiping the one used.
func (u *UpdateSecret) Next() DirectionKeys {
	var k DirectionKeys
	key := expandLabel(u.s[:], labelKey, len(k.Key))
	iv := expandLabel(u.s[:], labelIV, len(k.IV))
	next := expandLabel(u.s[:], labelKU, len(u.s))
	copy(k.Key[:], key)
	copy(k.IV[:], iv)
	copy(u.s[:], next)
	clear(key)
	clear(iv)
	clear(next)
	return k
}

// Wipe clears the secret.
func (u *UpdateSecret) Wipe() { clear(u.s[:]) }

// expandLabel is HKDF-Expand-Label(secret, label, "", length) of RFC 8446 §7.1 with
// SHA-256: info is uint16 length, the label with the "tls13 " prefix as an 8-bit
// length-prefixed string, and an empty context.
func expandLabel(secret []byte, label string, length int) []byte {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = append(info, byte(length>>8), byte(length), byte(len(full)))
	info = append(info, full...)
	info = append(info, 0)
	out, err := hkdf.Expand(sha256.New, secret, string(info), length)
	if err != nil {
		panic("crypto: HKDF-Expand of a fixed small length failed: " + err.Error()) // cannot happen: length ≤ 255·32
	}
	return out
}
