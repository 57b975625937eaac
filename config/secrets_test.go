package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeMode writes a file and sets its mode exactly (the umask would only narrow it).
func writeMode(t *testing.T, name, text string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
}

func TestCheckSecretPermissions(t *testing.T) {
	dir := t.TempDir()
	keyLine := `private_key: "` + clientPriv + `"`
	cases := []struct {
		name      string
		yamlMode  os.FileMode
		keyFile   bool // the key is in k.key instead of inline
		keyMode   os.FileMode
		badFile   string // the file the error must name ("" for no error)
		wantField string
	}{
		{"inline, 0600", 0o600, false, 0, "", ""},
		{"inline, 0400", 0o400, false, 0, "", ""},
		{"inline, world-readable", 0o644, false, 0, "c.yaml", "c.yaml:2: private_key: "},
		{"inline, group-readable", 0o640, false, 0, "c.yaml", "c.yaml:2: private_key: "},
		{"inline, group-writable", 0o620, false, 0, "c.yaml", "c.yaml:2: private_key: "},
		{"key file 0600, yaml world-readable", 0o644, true, 0o600, "", ""},
		{"key file world-readable", 0o600, true, 0o644, "k.key", "c.yaml:2: private_key_file: "},
		{"key file others-only", 0o600, true, 0o604, "k.key", "c.yaml:2: private_key_file: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			yamlPath := filepath.Join(dir, "c.yaml")
			keyPath := filepath.Join(dir, "k.key")
			text := clientYAML
			if tc.keyFile {
				text = strings.Replace(text, keyLine, "private_key_file: k.key", 1)
				writeMode(t, keyPath, clientPriv+"\n", tc.keyMode)
			}
			writeMode(t, yamlPath, text, tc.yamlMode)
			for _, load := range []func(string) (*Config, error){Load, LoadPublic} {
				c, err := load(yamlPath)
				if err != nil {
					t.Fatal(err)
				}
				err = CheckSecretPermissions(c)
				if tc.badFile == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					continue
				}
				bad := filepath.Join(dir, tc.badFile)
				if err == nil {
					t.Fatalf("accepted a key in %s", bad)
				}
				msg := err.Error()
				for _, want := range []string{tc.wantField, bad, "chmod 600 " + bad} {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q does not contain %q", msg, want)
					}
				}
			}
			c, err := LoadPrivate(yamlPath)
			if tc.badFile == "" {
				if err != nil || c.PrivateKey.IsZero() {
					t.Fatalf("LoadPrivate: %v, key loaded %v", err, !c.PrivateKey.IsZero())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "chmod 600 "+filepath.Join(dir, tc.badFile)) {
				t.Fatalf("LoadPrivate: %v, want the chmod for %s", err, tc.badFile)
			}
		})
	}
}

// LoadPrivate refuses a loose key file before it reads it: its contents, not a key, are
// never parsed.
func TestLoadPrivateDoesNotReadLooseKeyFile(t *testing.T) {
	dir := t.TempDir()
	yamlPath := filepath.Join(dir, "c.yaml")
	keyLine := `private_key: "` + clientPriv + `"`
	writeMode(t, yamlPath, strings.Replace(clientYAML, keyLine, "private_key_file: k.key", 1), 0o600)
	writeMode(t, filepath.Join(dir, "k.key"), "not a key\n", 0o644)
	_, err := LoadPrivate(yamlPath)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "bad key") {
		t.Fatalf("LoadPrivate: %v, want a refusal on the mode without parsing the file", err)
	}
	if _, err := Load(yamlPath); err == nil || !strings.Contains(err.Error(), "bad key") {
		t.Fatalf("Load: %v, want the file read (and its bad key found)", err)
	}
}

func TestCheckSecretPermissionsMissingFile(t *testing.T) {
	dir := t.TempDir()
	yamlPath := filepath.Join(dir, "c.yaml")
	text := strings.Replace(clientYAML, `private_key: "`+clientPriv+`"`, "private_key_file: gone.key", 1)
	writeMode(t, yamlPath, text, 0o600)
	c, err := LoadPublic(yamlPath)
	if err != nil {
		t.Fatalf("LoadPublic opened the key file: %v", err)
	}
	if err := CheckSecretPermissions(c); err == nil || !strings.Contains(err.Error(), "private_key_file") {
		t.Fatalf("got %v, want an error about the missing key file", err)
	}
}

// TestLoadPublicReadsNoKey: LoadPublic neither parses an inline key nor opens a key
// file (a missing one loads); the rest is validated as by Load.
func TestLoadPublicReadsNoKey(t *testing.T) {
	dir := t.TempDir()
	keyLine := `private_key: "` + clientPriv + `"`
	for name, text := range map[string]string{
		"bad inline key":   strings.Replace(clientYAML, clientPriv, strings.Repeat("!", 44), 1),
		"missing key file": strings.Replace(clientYAML, keyLine, "private_key_file: gone.key", 1),
	} {
		t.Run(name, func(t *testing.T) {
			yamlPath := filepath.Join(dir, "c.yaml")
			writeMode(t, yamlPath, text, 0o600)
			c, err := LoadPublic(yamlPath)
			if err != nil {
				t.Fatal(err)
			}
			if !c.PrivateKey.IsZero() {
				t.Fatal("LoadPublic loaded the private key")
			}
			if c.SecretFile == "" || c.TUN.Name != DefaultTUNName || len(c.Uplinks) == 0 {
				t.Fatalf("LoadPublic config incomplete: %+v", c)
			}
		})
	}
	// Without any key at all the file is still refused.
	yamlPath := filepath.Join(dir, "none.yaml")
	writeMode(t, yamlPath, strings.Replace(clientYAML, keyLine+"\n", "", 1), 0o600)
	if _, err := LoadPublic(yamlPath); err == nil || !strings.Contains(err.Error(), "private_key: required") {
		t.Fatalf("got %v, want private_key: required", err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/bondtun/c.key": "/etc/bondtun/c.key",
		"my key":             "'my key'",
		"it's":               `'it'\''s'`,
		"-x.key":             "./-x.key",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
