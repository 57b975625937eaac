package crypto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// TestExpandLabelRFC9001: HKDF-Expand-Label is TLS 1.3's: with QUIC's labels it gives the
// key update vectors of RFC 9001 Appendix A.5.
func TestExpandLabelRFC9001(t *testing.T) {
	secret, _ := hex.DecodeString("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b")
	for _, tt := range []struct {
		label string
		n     int
		want  string
	}{
		{"quic key", 32, "c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8"},
		{"quic iv", 12, "e0459b3474bdd0e44a41c144"},
		{"quic ku", 32, "1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9"},
	} {
		if got := hex.EncodeToString(expandLabel(secret, tt.label, tt.n)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.label, got, tt.want)
		}
	}
}

// fakeExporter is a deterministic Exporter: the label's bytes repeated.
func fakeExporter(label string, _ []byte, n int) ([]byte, error) {
	b := make([]byte, n)
	for i := range b {
		b[i] = label[i%len(label)]
	}
	return b, nil
}

// TestUpdateSecretChain: both ends derive the same generations, each generation's keys
// differ from the others' and from generation 0's, and the two directions differ.
func TestUpdateSecretChain(t *testing.T) {
	cSend, cRecv, err := DeriveUpdateSecrets(fakeExporter, true)
	if err != nil {
		t.Fatal(err)
	}
	sSend, sRecv, err := DeriveUpdateSecrets(fakeExporter, false)
	if err != nil {
		t.Fatal(err)
	}
	k0, _, _ := DeriveKeys(fakeExporter, true)
	seen := map[DirectionKeys]int{k0: 0}
	for gen := 1; gen <= 5; gen++ {
		a, b := cSend.Next(), sRecv.Next()
		c, d := sSend.Next(), cRecv.Next()
		if a != b || c != d {
			t.Fatalf("generation %d: the two ends derived different keys", gen)
		}
		if a == c {
			t.Fatalf("generation %d: both directions have the same keys", gen)
		}
		for _, k := range []DirectionKeys{a, c} {
			if prev, dup := seen[k]; dup {
				t.Fatalf("generation %d repeats the keys of generation %d", gen, prev)
			}
			seen[k] = gen
		}
	}
	if _, _, err := DeriveUpdateSecrets(func(string, []byte, int) ([]byte, error) { return nil, errors.New("boom") }, true); err == nil {
		t.Fatal("DeriveUpdateSecrets ignored an exporter error")
	}
	if _, _, err := DeriveUpdateSecrets(func(string, []byte, int) ([]byte, error) { return make([]byte, 3), nil }, true); err == nil {
		t.Fatal("DeriveUpdateSecrets accepted a short secret")
	}
	var u UpdateSecret
	u.s[0] = 1
	u.Wipe()
	if u != (UpdateSecret{}) || u.String() != "UpdateSecret{redacted}" {
		t.Fatal("Wipe or String")
	}
}

// TestAEADNext: the next generation's AEAD has its own seal count and limits, shares the
// failed-open count (the integrity limit holds over all keys), and cannot open the
// previous generation's datagrams.
func TestAEADNext(t *testing.T) {
	for _, id := range allCiphers {
		t.Run(id.String(), func(t *testing.T) {
			lim := Limits{Seal: 3, FailedOpen: 4}
			a, err := NewAEADWithLimits(id, testKeys(t), lim)
			if err != nil {
				t.Fatal(err)
			}
			hdr, payload := datagram(20)
			for i := range uint64(3) {
				mustSeal(t, a, nil, payload, hdr, 0, i)
			}
			if _, err := a.Seal(nil, payload, hdr, 0, 3); !errors.Is(err, ErrKeyExhausted) {
				t.Fatalf("fourth seal: %v", err)
			}
			b, err := a.Next(testKeys(t))
			if err != nil {
				t.Fatal(err)
			}
			if b.Sealed() != 0 || b.Limits() != lim || b.Cipher() != id {
				t.Fatalf("next: sealed %d, limits %+v", b.Sealed(), b.Limits())
			}
			ct := mustSeal(t, b, nil, payload, hdr, 0, 3) // packet numbers go on across keys
			if _, err := a.Open(nil, ct, hdr, 0, 3); !errors.Is(err, ErrOpen) {
				t.Fatalf("old key opened the new key's datagram: %v", err)
			}
			if _, err := b.Open(nil, ct, hdr, 0, 3); err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(ct)
			bad[0] ^= 1
			b.Open(nil, bad, hdr, 0, 3)
			b.Open(nil, bad, hdr, 0, 3)
			if a.FailedOpens() != 3 || b.FailedOpens() != 3 {
				t.Fatalf("failed opens %d and %d, want 3 shared", a.FailedOpens(), b.FailedOpens())
			}
			if _, err := a.Open(nil, bad, hdr, 0, 3); !errors.Is(err, ErrIntegrityLimit) {
				t.Fatalf("fourth forgery over both keys: %v, want ErrIntegrityLimit", err)
			}
			if _, err := b.Open(nil, ct, hdr, 0, 3); !errors.Is(err, ErrIntegrityLimit) {
				t.Fatalf("the next key after the limit: %v", err)
			}
		})
	}
}
