package crypto

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
)

var allCiphers = []CipherID{CipherChaCha20Poly1305, CipherAES256GCM}

func testKeys(t testing.TB) DirectionKeys {
	t.Helper()
	var k DirectionKeys
	if _, err := rand.Read(k.Key[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(k.IV[:]); err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestAEAD(t testing.TB, id CipherID, k DirectionKeys) *AEAD {
	t.Helper()
	a, err := NewAEAD(id, k)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// datagram builds a test datagram the way the session will: a 10-byte
// header (the aad) followed by the payload, sealed in place after it.
func datagram(size int) (hdr, payload []byte) {
	buf := make([]byte, 10+size, 10+size+TagSize)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	return buf[:10], buf[10:]
}

func TestSealOpenRoundTrip(t *testing.T) {
	for _, id := range allCiphers {
		for _, size := range []int{0, 1, 64, 1400} {
			t.Run(fmt.Sprintf("%v/%d", id, size), func(t *testing.T) {
				k := testKeys(t)
				tx, rx := newTestAEAD(t, id, k), newTestAEAD(t, id, k)
				if tx.Cipher() != id {
					t.Fatalf("Cipher() = %v", tx.Cipher())
				}
				hdr, payload := datagram(size)
				want := bytes.Clone(payload)
				sealed := tx.Seal(payload[:0], payload, hdr, 0x21, 12345)
				if len(sealed) != size+TagSize {
					t.Fatalf("sealed %d bytes, want %d", len(sealed), size+TagSize)
				}
				if size > 0 && bytes.Equal(sealed[:size], want) {
					t.Fatal("Seal did not encrypt")
				}
				opened, err := rx.Open(sealed[:0], sealed, hdr, 0x21, 12345)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(opened, want) {
					t.Fatal("Open returned different plaintext")
				}
			})
		}
	}
}

// TestTamper flips every bit position's byte of the sealed part and of the
// aad in turn; each must make Open fail.
func TestTamper(t *testing.T) {
	for _, id := range allCiphers {
		t.Run(id.String(), func(t *testing.T) {
			a := newTestAEAD(t, id, testKeys(t))
			hdr, payload := datagram(48)
			sealed := a.Seal(nil, payload, hdr, 1, 2)
			for i := range sealed {
				ct := bytes.Clone(sealed)
				ct[i] ^= 0x01
				if _, err := a.Open(nil, ct, hdr, 1, 2); !errors.Is(err, ErrOpen) {
					t.Fatalf("ciphertext byte %d flipped: err = %v", i, err)
				}
			}
			for i := range hdr {
				aad := bytes.Clone(hdr)
				aad[i] ^= 0x80
				if _, err := a.Open(nil, sealed, aad, 1, 2); !errors.Is(err, ErrOpen) {
					t.Fatalf("aad byte %d flipped: err = %v", i, err)
				}
			}
		})
	}
}

func TestOpenWrongParameters(t *testing.T) {
	for _, id := range allCiphers {
		a := newTestAEAD(t, id, testKeys(t))
		other := newTestAEAD(t, id, testKeys(t))
		hdr, payload := datagram(32)
		sealed := a.Seal(nil, payload, hdr, 0x12, 1000)
		tests := []struct {
			name   string
			a      *AEAD
			ct     []byte
			pathID uint8
			pn     uint64
		}{
			{"wrong path id", a, sealed, 0x13, 1000},
			{"wrong packet number", a, sealed, 0x12, 1001},
			{"packet number differs in bit 47", a, sealed, 0x12, 1000 | 1<<47},
			{"packet number above 48 bits", a, sealed, 0x12, 1000 | 1<<48},
			{"wrong key", other, sealed, 0x12, 1000},
			{"truncated tag", a, sealed[:len(sealed)-1], 0x12, 1000},
			{"shorter than a tag", a, sealed[:TagSize-1], 0x12, 1000},
			{"empty", a, nil, 0x12, 1000},
		}
		for _, tt := range tests {
			t.Run(id.String()+"/"+tt.name, func(t *testing.T) {
				if _, err := tt.a.Open(nil, tt.ct, hdr, tt.pathID, tt.pn); !errors.Is(err, ErrOpen) {
					t.Fatalf("err = %v, want ErrOpen", err)
				}
			})
		}
	}
}

// TestNonceUnique checks the property the protocol relies on: distinct
// (path id, packet number) pairs give distinct nonces, including pairs that
// differ only in the top packet-number bits or only in the path id.
func TestNonceUnique(t *testing.T) {
	a := newTestAEAD(t, CipherChaCha20Poly1305, testKeys(t))
	seen := make(map[[NonceSize]byte]string)
	pns := []uint64{0, 1, 2, 255, 256, 1 << 16, 1 << 24, 1 << 32, 1 << 40, 1 << 47, MaxPacketNumber - 1, MaxPacketNumber}
	for path := 0; path < 256; path++ {
		for _, pn := range pns {
			var n [NonceSize]byte
			a.nonce(&n, uint8(path), pn)
			id := fmt.Sprintf("path %d pn %d", path, pn)
			if prev, dup := seen[n]; dup {
				t.Fatalf("%s and %s share a nonce", prev, id)
			}
			seen[n] = id
			// The first five bytes are the IV's: nothing else may touch them.
			if !bytes.Equal(n[:5], a.iv[:5]) {
				t.Fatalf("%s changed the IV prefix", id)
			}
		}
	}
	// Nonce layout from docs/PROTOCOL.md §3 with a zero IV.
	z := newTestAEAD(t, CipherChaCha20Poly1305, DirectionKeys{})
	var n [NonceSize]byte
	z.nonce(&n, 0xab, 0x010203040506)
	want := [NonceSize]byte{0, 0, 0, 0, 0, 0xab, 1, 2, 3, 4, 5, 6}
	if n != want {
		t.Fatalf("nonce = %x, want %x", n, want)
	}
}

func TestSealPanicsPastMaxPacketNumber(t *testing.T) {
	a := newTestAEAD(t, CipherAES256GCM, testKeys(t))
	defer func() {
		if recover() == nil {
			t.Fatal("Seal did not panic")
		}
	}()
	a.Seal(nil, nil, nil, 0, MaxPacketNumber+1)
}

func TestNewAEADUnknownCipher(t *testing.T) {
	for _, id := range []CipherID{0, 3, 255} {
		if _, err := NewAEAD(id, DirectionKeys{}); err == nil {
			t.Errorf("NewAEAD(%d) succeeded", id)
		}
	}
}

func TestSealOpenAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, id := range allCiphers {
		t.Run(id.String(), func(t *testing.T) {
			a := newTestAEAD(t, id, testKeys(t))
			hdr, payload := datagram(1400)
			buf := payload[:len(payload)+TagSize]
			var pn uint64
			allocs := testing.AllocsPerRun(1000, func() {
				pn++
				sealed := a.Seal(buf[:0], buf[:1400], hdr, 5, pn)
				if _, err := a.Open(sealed[:0], sealed, hdr, 5, pn); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Fatalf("Seal+Open allocate %v times per packet", allocs)
			}
		})
	}
}

// TestConcurrentSeal runs Seal and Open on one AEAD from several
// goroutines; under -race it proves the shared state is read-only.
func TestConcurrentSeal(t *testing.T) {
	a := newTestAEAD(t, CipherChaCha20Poly1305, testKeys(t))
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			hdr, payload := datagram(100)
			for i := range 200 {
				pn := uint64(g*1000 + i)
				sealed := a.Seal(nil, payload, hdr, uint8(g), pn)
				if _, err := a.Open(nil, sealed, hdr, uint8(g), pn); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	for _, id := range allCiphers {
		for _, size := range []int{64, 1400} {
			b.Run(fmt.Sprintf("%v/%d", id, size), func(b *testing.B) {
				a := newTestAEAD(b, id, testKeys(b))
				hdr, payload := datagram(size)
				buf := payload[:size+TagSize]
				b.ReportAllocs()
				b.SetBytes(int64(size))
				var pn uint64
				for b.Loop() {
					pn++
					a.Seal(buf[:0], buf[:size], hdr, 1, pn)
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, id := range allCiphers {
		for _, size := range []int{64, 1400} {
			b.Run(fmt.Sprintf("%v/%d", id, size), func(b *testing.B) {
				a := newTestAEAD(b, id, testKeys(b))
				hdr, payload := datagram(size)
				sealed := a.Seal(nil, payload, hdr, 1, 7)
				out := make([]byte, 0, size)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := a.Open(out, sealed, hdr, 1, 7); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
