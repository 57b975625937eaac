package config

import (
	"fmt"
	"os"
	"strings"
)

// secretPermMask is the mode bits a file holding the private key must not have:
// any access by group or others. ssh refuses a private key file on the same rule.
const secretPermMask = 0o077

// CheckSecretPermissions refuses a private key that other users may read. It checks
// the mode of c.SecretFile: the YAML file itself for an inline private_key, or the
// private_key_file. If that file gives its group or others any access, the error
// names the file and its mode and gives the exact fix ("chmod 600 FILE"). [LoadPrivate]
// (for `up`) applies the same rule; this form works on a Config from [LoadPublic] too (it
// reads no key), so `check` reports it with its other findings and reads the key only
// once it passed. A Config built in Go (no SecretFile) passes.
//
// The mode is read with stat(2) when it is called, following symbolic links as the
// key file's reader does; a file whose mode changes afterwards is not noticed.
func CheckSecretPermissions(c *Config) error {
	if c.SecretFile == "" {
		return nil
	}
	st, err := os.Stat(c.SecretFile)
	if err != nil {
		return &Error{File: c.Path, Line: c.lineOf(c.secretField), Field: c.secretField, Msg: err.Error(), Err: err}
	}
	perm := st.Mode().Perm()
	if perm&secretPermMask == 0 {
		return nil
	}
	what := c.SecretFile + " holds the private key"
	if c.SecretFile == c.Path {
		what = "the private key is inline in " + c.SecretFile + ", which"
	} else {
		what += " and"
	}
	return &Error{File: c.Path, Line: c.lineOf(c.secretField), Field: c.secretField,
		Msg: fmt.Sprintf("%s is accessible by group or others (mode %04o); fix it with: chmod 600 %s",
			what, perm, shellQuote(c.SecretFile))}
}

// shellQuote returns name as one word for a POSIX shell: as is when it has only safe
// characters, else in single quotes.
func shellQuote(name string) string {
	safe := name != "" && !strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./-+=:,@%", r))
	})
	if strings.HasPrefix(name, "-") {
		name = "./" + name // not an option of chmod
	}
	if safe {
		return name
	}
	return "'" + strings.ReplaceAll(name, "'", `'\''`) + "'"
}
