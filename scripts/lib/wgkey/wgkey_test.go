package main

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func TestNewKeypairRFC7748(t *testing.T) {
	// RFC 7748 section 6.1, Alice's key pair; the printed private key is
	// clamped (X25519 clamps internally, so the public key is the same).
	var seed [32]byte
	hex.Decode(seed[:], []byte("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	kp, err := NewKeypair(seed)
	if err != nil {
		t.Fatal(err)
	}
	const want = "70076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c6a " +
		"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	if got := kp.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestNewKeypairClamps(t *testing.T) {
	var seed [32]byte
	for i := range seed {
		seed[i] = 0xff
	}
	kp, err := NewKeypair(seed)
	if err != nil {
		t.Fatal(err)
	}
	if kp.Private[0] != 0xf8 || kp.Private[31] != 0x7f {
		t.Errorf("not clamped: %x ... %x", kp.Private[0], kp.Private[31])
	}
}

func TestParseErrno(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"errno=0\n", 0, true},
		{"errno=0", 0, true},
		{"private_key=ab\nerrno=74\n", 74, true},
		{"errno=-1\n", 0, false},
		{"errno=x\n", 0, false},
		{"errno\n", 0, false},
		{"", 0, false},
		{"ok=1\n", 0, false},
	} {
		got, err := ParseErrno(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseErrno(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseErrno(f *testing.F) {
	f.Add("errno=0\n")
	f.Add("errno=74\n")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseErrno(s)
		if err == nil && (n < 0 || !strings.Contains(s, "errno=")) {
			t.Fatalf("ParseErrno(%q) = %d without error", s, n)
		}
	})
}

func TestRunUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"nope"}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage") {
		t.Errorf("code %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"uapi", "/nonexistent"}, strings.NewReader("get=1\n"), &out, &errb); code != 1 {
		t.Errorf("uapi without set=1: code %d", code)
	}
}

func TestRunGenkey(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"genkey"}, nil, &out, &errb); code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	f := strings.Fields(out.String())
	if len(f) != 2 || len(f[0]) != 64 || len(f[1]) != 64 {
		t.Fatalf("output %q", out.String())
	}
	var seed [32]byte
	hex.Decode(seed[:], []byte(f[0]))
	kp, _ := NewKeypair(seed)
	if kp.String() != strings.TrimSpace(out.String()) {
		t.Errorf("public key does not match private key: %q", out.String())
	}
}
