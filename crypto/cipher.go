package crypto

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/cpu"
)

// CipherID names a data-plane AEAD on the wire (HELLO, WELCOME).
type CipherID uint8

// Cipher ids from docs/PROTOCOL.md §1.
const (
	CipherChaCha20Poly1305 CipherID = 1
	CipherAES256GCM        CipherID = 2
)

// Valid reports whether c is a cipher this package implements.
func (c CipherID) Valid() bool {
	return c == CipherChaCha20Poly1305 || c == CipherAES256GCM
}

// String returns the cipher's name.
func (c CipherID) String() string {
	switch c {
	case CipherChaCha20Poly1305:
		return "ChaCha20-Poly1305"
	case CipherAES256GCM:
		return "AES-256-GCM"
	}
	return fmt.Sprintf("cipher(%d)", uint8(c))
}

// hasAESGCMHardware reports whether AES-GCM runs on dedicated instructions,
// with the same test crypto/tls uses to order its cipher suites.
var hasAESGCMHardware = cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ ||
	cpu.ARM64.HasAES && cpu.ARM64.HasPMULL ||
	cpu.S390X.HasAES && cpu.S390X.HasAESCBC && cpu.S390X.HasAESCTR &&
		(cpu.S390X.HasGHASH || cpu.S390X.HasAESGCM) ||
	runtime.GOARCH == "ppc64" || runtime.GOARCH == "ppc64le"

// PreferredCiphers returns this host's cipher preference, the list a client
// sends in HELLO: AES-256-GCM first when the CPU has AES-GCM instructions
// (about twice as fast there), else ChaCha20-Poly1305 first, which is fast
// and constant-time in software.
func PreferredCiphers() []CipherID { return preferredCiphers(hasAESGCMHardware) }

func preferredCiphers(aesHardware bool) []CipherID {
	if aesHardware {
		return []CipherID{CipherAES256GCM, CipherChaCha20Poly1305}
	}
	return []CipherID{CipherChaCha20Poly1305, CipherAES256GCM}
}

// ChooseCipher is the server's choice: the first cipher of the client's list
// (theirs, in the client's preference order) that is in the server's list
// (ours) and implemented here. The client knows its own CPU, so its order
// wins. It returns false when there is no common cipher.
func ChooseCipher(ours, theirs []CipherID) (CipherID, bool) {
	for _, c := range theirs {
		if !c.Valid() {
			continue
		}
		for _, o := range ours {
			if o == c {
				return c, true
			}
		}
	}
	return 0, false
}

// Key labels for ExportKeyingMaterial (docs/PROTOCOL.md §1 "Data keys").
const (
	labelClientToServer = "bondtun v1 client to server"
	labelServerToClient = "bondtun v1 server to client"
)

// NonceSize is the size of the AEAD nonce and of the per-direction IV.
const NonceSize = 12

// DirectionKeys is the secret of one direction of the data plane: the AEAD
// key and the IV the nonces are derived from.
type DirectionKeys struct {
	Key [32]byte
	IV  [NonceSize]byte
}

// String hides the secret, so that logging a DirectionKeys by mistake leaks
// nothing.
func (DirectionKeys) String() string { return "DirectionKeys{redacted}" }

// GoString hides the secret from %#v as well.
func (DirectionKeys) GoString() string { return "crypto.DirectionKeys{redacted}" }

// Exporter is the shape of [crypto/tls.ConnectionState.ExportKeyingMaterial].
type Exporter func(label string, context []byte, length int) ([]byte, error)

// DeriveKeys derives the data keys of a session from its TLS connection
// state's exporter: the client sends with the client-to-server secret and
// receives with the server-to-client one, the server the other way round.
func DeriveKeys(export Exporter, isClient bool) (send, recv DirectionKeys, err error) {
	c2s, err := exportKeys(export, labelClientToServer)
	if err != nil {
		return DirectionKeys{}, DirectionKeys{}, err
	}
	s2c, err := exportKeys(export, labelServerToClient)
	if err != nil {
		return DirectionKeys{}, DirectionKeys{}, err
	}
	if isClient {
		return c2s, s2c, nil
	}
	return s2c, c2s, nil
}

func exportKeys(export Exporter, label string) (DirectionKeys, error) {
	const size = len(DirectionKeys{}.Key) + NonceSize
	b, err := export(label, nil, size)
	if err != nil {
		return DirectionKeys{}, fmt.Errorf("crypto: exporting %q: %w", label, err)
	}
	defer clear(b)
	if len(b) != size {
		return DirectionKeys{}, errors.New("crypto: exporter returned a secret of the wrong size")
	}
	var k DirectionKeys
	copy(k.Key[:], b)
	copy(k.IV[:], b[len(k.Key):])
	return k, nil
}
