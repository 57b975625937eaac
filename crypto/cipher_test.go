package crypto

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestPreferredCiphers(t *testing.T) {
	tests := []struct {
		name  string
		aesHW bool
		want  []CipherID
	}{
		{"AES hardware", true, []CipherID{CipherAES256GCM, CipherChaCha20Poly1305}},
		{"no AES hardware", false, []CipherID{CipherChaCha20Poly1305, CipherAES256GCM}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := preferredCiphers(tt.aesHW); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := PreferredCiphers(); len(got) != 2 || !got[0].Valid() || !got[1].Valid() {
		t.Fatalf("PreferredCiphers() = %v", got)
	}
}

func TestChooseCipher(t *testing.T) {
	const (
		chacha = CipherChaCha20Poly1305
		aes    = CipherAES256GCM
	)
	tests := []struct {
		name        string
		ours, their []CipherID
		want        CipherID
		wantOK      bool
	}{
		{"client order wins", []CipherID{chacha, aes}, []CipherID{aes, chacha}, aes, true},
		{"client order wins reversed", []CipherID{aes, chacha}, []CipherID{chacha, aes}, chacha, true},
		{"only common one", []CipherID{chacha}, []CipherID{aes, chacha}, chacha, true},
		{"unknown ids skipped", []CipherID{chacha, aes, 9}, []CipherID{9, 0, aes}, aes, true},
		{"nothing in common", []CipherID{chacha}, []CipherID{aes}, 0, false},
		{"client sent none", []CipherID{chacha, aes}, nil, 0, false},
		{"server has none", nil, []CipherID{aes}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ChooseCipher(tt.ours, tt.their)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("got %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestCipherIDNamesAndLimits(t *testing.T) {
	tests := []struct {
		id                    CipherID
		name                  string
		valid                 bool
		confidentiality, intg uint64
	}{
		{CipherChaCha20Poly1305, "ChaCha20-Poly1305", true, 1 << 62, 1 << 36},
		{CipherAES256GCM, "AES-256-GCM", true, 1 << 23, 1 << 52},
		{0, "cipher(0)", false, 0, 0},
		{7, "cipher(7)", false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.id.String() != tt.name || tt.id.Valid() != tt.valid ||
				tt.id.ConfidentialityLimit() != tt.confidentiality || tt.id.IntegrityLimit() != tt.intg {
				t.Fatalf("%d: got %q valid=%v limits %d/%d", uint8(tt.id), tt.id.String(),
					tt.id.Valid(), tt.id.ConfidentialityLimit(), tt.id.IntegrityLimit())
			}
		})
	}
}

func TestDirectionKeysRedacted(t *testing.T) {
	k := DirectionKeys{Key: [32]byte{0xaa, 0xaa}, IV: [NonceSize]byte{0xbb, 0xbb}}
	tests := []struct{ name, format string }{
		{"v", "%v"}, {"+v", "%+v"}, {"#v", "%#v"}, {"s", "%s"},
		{"in a struct", "%+v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var arg any = k
			if tt.name == "in a struct" {
				arg = struct{ K DirectionKeys }{k}
			}
			out := fmt.Sprintf(tt.format, arg)
			if !strings.Contains(out, "redacted") || strings.Contains(out, "170") ||
				strings.Contains(strings.ToLower(out), "aa") {
				t.Fatalf("%s printed %q", tt.format, out)
			}
		})
	}
}
