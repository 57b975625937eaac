package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestGenerateKeyRoundTrip(t *testing.T) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if k.IsZero() {
		t.Fatal("generated key is zero")
	}
	k2, err := ParsePrivateKey(k.SecretText())
	if err != nil {
		t.Fatal(err)
	}
	if k2 != k {
		t.Fatal("private key did not round-trip")
	}
	pub, err := ParsePublicKey(k.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if pub != k.Public() {
		t.Fatal("public key did not round-trip")
	}
	// The public key must be the one the standard library derives, or the
	// pinned key would not match the certificate.
	std := ed25519.NewKeyFromSeed(k.seed[:]).Public().(ed25519.PublicKey)
	if !bytes.Equal(std, pub[:]) {
		t.Fatal("Public() differs from ed25519's public key")
	}
}

func TestGenerateKeyShortRead(t *testing.T) {
	if _, err := GenerateKey(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("GenerateKey accepted a short random source")
	}
}

// TestKnownKey pins the text form against RFC 8032 §7.1 test 1.
func TestKnownKey(t *testing.T) {
	seed := "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
	pub := "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	k, err := ParsePrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Public().String(); got != pub {
		t.Fatalf("public key %s, want %s", got, pub)
	}
}

func TestParseKeyErrors(t *testing.T) {
	valid := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"31 bytes", base64.StdEncoding.EncodeToString(make([]byte, 31))},
		{"33 bytes", base64.StdEncoding.EncodeToString(make([]byte, 33))},
		{"64 bytes", base64.StdEncoding.EncodeToString(make([]byte, 64))},
		{"unpadded", strings.TrimRight(valid, "=")},
		{"url alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(
			base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)))},
		{"not base64", strings.Repeat("!", 44)},
		{"trailing newline", valid + "\n"},
		{"newline inside", valid[:20] + "\n" + valid[21:]},
		{"leading space", " " + valid[1:]},
		{"nonzero padding bits", valid[:42] + "9="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParsePublicKey(tt.in); err == nil {
				t.Errorf("ParsePublicKey(%q) succeeded", tt.in)
			}
			_, err := ParsePrivateKey(tt.in)
			if err == nil {
				t.Fatalf("ParsePrivateKey(%q) succeeded", tt.in)
			}
			if tt.in != "" && strings.Contains(err.Error(), tt.in) {
				t.Errorf("private key error quotes the input: %v", err)
			}
		})
	}
}

func TestKeyTextMarshaling(t *testing.T) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var k2 PrivateKey
	if err := k2.UnmarshalText([]byte(k.SecretText())); err != nil || k2 != k {
		t.Fatalf("PrivateKey text round trip: %v", err)
	}
	text, err := k.Public().MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var p PublicKey
	if err := p.UnmarshalText(text); err != nil || p != k.Public() {
		t.Fatalf("PublicKey text round trip: %v", err)
	}
	if err := p.UnmarshalText([]byte("bad")); err == nil {
		t.Fatal("UnmarshalText accepted a bad key")
	}
	if err := k2.UnmarshalText([]byte("bad")); err == nil {
		t.Fatal("UnmarshalText accepted a bad private key")
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	f.Add("")
	f.Add(strings.Repeat("A", 44))
	f.Fuzz(func(t *testing.T, s string) {
		if pub, err := ParsePublicKey(s); err == nil {
			if pub.String() != s {
				t.Fatalf("public key %q printed as %q", s, pub.String())
			}
		}
		k, err := ParsePrivateKey(s)
		if err != nil {
			return
		}
		if k.SecretText() != s {
			t.Fatalf("private key printed differently from its input")
		}
		k2, err := ParsePrivateKey(k.SecretText())
		if err != nil || k2 != k || k2.Public() != k.Public() {
			t.Fatalf("private key did not round-trip: %v", err)
		}
	})
}

// TestPrivateKeyPrintsRedacted: every way fmt, encoding/json or a struct
// holding the key may print it shows no byte of the secret's text form.
func TestPrivateKeyPrintsRedacted(t *testing.T) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := k.SecretText()
	holder := struct {
		Name string
		Key  PrivateKey
	}{"x", k}
	js, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String": k.String(),
		"%v":     fmt.Sprintf("%v", k),
		"%s":     fmt.Sprintf("[%s]", k),
		"%+v":    fmt.Sprintf("%+v", k),
		"%#v":    fmt.Sprintf("%#v", k),
		"%x":     fmt.Sprintf("%x", k),
		"struct": fmt.Sprintf("%v %+v %#v", holder, holder, holder),
		"json":   string(js),
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(out, secret[:16]) {
			t.Errorf("%s leaks the secret: %q", name, out)
		}
	}
	if outputs["%v"] != "PrivateKey(redacted)" {
		t.Errorf("%%v = %q, want PrivateKey(redacted)", outputs["%v"])
	}
	if !strings.Contains(outputs["struct"], "redacted") {
		t.Errorf("a struct holding the key prints %q", outputs["struct"])
	}
}
