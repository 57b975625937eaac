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
				sealed := mustSeal(t, tx, payload[:0], payload, hdr, 0x21, 12345)
				if len(sealed) != size+TagSize {
					t.Fatalf("sealed %d bytes, want %d", len(sealed), size+TagSize)
				}
				// With random keys a short ciphertext equals its plaintext by chance (1 in
				// 256 for one byte): only a 16-byte or longer one tells an unencrypted copy.
				if size >= 16 && bytes.Equal(sealed[:size], want) {
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
			sealed := mustSeal(t, a, nil, payload, hdr, 1, 2)
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
		sealed := mustSeal(t, a, nil, payload, hdr, 0x12, 1000)
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

// mustSeal seals or fails the test.
func mustSeal(tb testing.TB, a *AEAD, dst, plaintext, aad []byte, pathID uint8, pn uint64) []byte {
	tb.Helper()
	out, err := a.Seal(dst, plaintext, aad, pathID, pn)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestSealPastMaxPacketNumber: a packet number past 48 bits is an error, not a
// panic, and uses up nothing of the key's limit.
func TestSealPastMaxPacketNumber(t *testing.T) {
	a := newTestAEAD(t, CipherAES256GCM, testKeys(t))
	mustSeal(t, a, nil, nil, nil, 0, MaxPacketNumber)
	out, err := a.Seal(nil, []byte("x"), nil, 0, MaxPacketNumber+1)
	if !errors.Is(err, ErrPacketNumberExhausted) || out != nil {
		t.Fatalf("Seal past the limit: %x, %v; want ErrPacketNumberExhausted", out, err)
	}
	if a.Sealed() != 1 {
		t.Fatalf("Sealed() = %d, want 1", a.Sealed())
	}
}

// TestSealLimit: a key with a confidentiality limit of n seals n datagrams, on any
// mix of paths, and refuses the next ones without writing to dst.
func TestSealLimit(t *testing.T) {
	for _, id := range allCiphers {
		t.Run(id.String(), func(t *testing.T) {
			const n = 5
			k := testKeys(t)
			a, err := NewAEADWithLimits(id, k, Limits{Seal: n})
			if err != nil {
				t.Fatal(err)
			}
			rx := newTestAEAD(t, id, k)
			hdr, payload := datagram(40)
			for i := range uint64(n) {
				ct := mustSeal(t, a, nil, payload, hdr, uint8(i%2), i)
				if _, err := rx.Open(nil, ct, hdr, uint8(i%2), i); err != nil {
					t.Fatalf("datagram %d within the limit does not open: %v", i, err)
				}
			}
			dst := make([]byte, 0, 64)
			for i := range 3 {
				out, err := a.Seal(dst, payload, hdr, 7, uint64(100+i))
				if !errors.Is(err, ErrKeyExhausted) || out != nil || !bytes.Equal(dst[:cap(dst)], make([]byte, 64)) {
					t.Fatalf("seal %d past the limit: %v, want ErrKeyExhausted and nothing written", n+i, err)
				}
			}
			if a.Sealed() != n {
				t.Fatalf("Sealed() = %d, want %d", a.Sealed(), n)
			}
		})
	}
}

// TestIntegrityLimit: after Limits.FailedOpen forgeries the key opens nothing, not
// even a genuine datagram.
func TestIntegrityLimit(t *testing.T) {
	const n = 4
	k := testKeys(t)
	tx := newTestAEAD(t, CipherChaCha20Poly1305, k)
	rx, err := NewAEADWithLimits(CipherChaCha20Poly1305, k, Limits{FailedOpen: n})
	if err != nil {
		t.Fatal(err)
	}
	hdr, payload := datagram(40)
	good := mustSeal(t, tx, nil, payload, hdr, 1, 1)
	forged := bytes.Clone(good)
	forged[0] ^= 1
	for i := 1; i <= n; i++ {
		_, err := rx.Open(nil, forged, hdr, 1, 1)
		want := ErrOpen
		if i == n {
			want = ErrIntegrityLimit
		}
		if !errors.Is(err, want) {
			t.Fatalf("forgery %d: %v, want %v", i, err, want)
		}
	}
	if _, err := rx.Open(nil, good, hdr, 1, 1); !errors.Is(err, ErrIntegrityLimit) {
		t.Fatalf("genuine datagram after the limit: %v, want ErrIntegrityLimit", err)
	}
	if rx.FailedOpens() != n {
		t.Fatalf("FailedOpens() = %d, want %d", rx.FailedOpens(), n)
	}
}

// TestLimitsClampedToCipher: limits above the cipher's own, or zero, are the
// cipher's.
func TestLimitsClampedToCipher(t *testing.T) {
	a, err := NewAEADWithLimits(CipherAES256GCM, testKeys(t), Limits{Seal: 1 << 60})
	if err != nil {
		t.Fatal(err)
	}
	if a.limits != DefaultLimits(CipherAES256GCM) {
		t.Fatalf("limits %+v, want %+v", a.limits, DefaultLimits(CipherAES256GCM))
	}
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
				sealed, _ := a.Seal(buf[:0], buf[:1400], hdr, 5, pn)
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
				sealed, err := a.Seal(nil, payload, hdr, uint8(g), pn)
				if err == nil {
					_, err = a.Open(nil, sealed, hdr, uint8(g), pn)
				}
				if err != nil {
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
					if _, err := a.Seal(buf[:0], buf[:size], hdr, 1, pn); err != nil {
						b.Fatal(err)
					}
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
				sealed := mustSeal(b, a, nil, payload, hdr, 1, 7)
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
