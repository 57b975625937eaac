package crypto_test

import (
	"fmt"

	"github.com/bondtun/bondtun/crypto"
)

// The receive path of one datagram: a cheap replay check, then the AEAD,
// then the window update, so that only authenticated datagrams move it.
func ExampleReplayWindow() {
	var keys crypto.DirectionKeys // from crypto.DeriveKeys in a real session
	tx, _ := crypto.NewAEAD(crypto.CipherChaCha20Poly1305, keys)
	rx, _ := crypto.NewAEAD(crypto.CipherChaCha20Poly1305, keys)

	const pathID, pn = 0x10, 42
	header := []byte{0x01, pathID, 0, 7, 0, 0, 0, 0, 0, pn} // the cleartext header is the aad
	datagram, _ := tx.Seal(nil, []byte("inner packet"), header, pathID, pn)

	var window crypto.ReplayWindow
	receive := func() {
		if !window.Check(pn) {
			fmt.Println("replay dropped before decrypting")
			return
		}
		plain, err := rx.Open(nil, datagram, header, pathID, pn)
		if err != nil {
			fmt.Println("forgery dropped")
			return
		}
		if !window.Update(pn) {
			fmt.Println("replay dropped after decrypting")
			return
		}
		fmt.Printf("delivered %q\n", plain)
	}
	receive()
	receive()
	// Output:
	// delivered "inner packet"
	// replay dropped before decrypting
}
