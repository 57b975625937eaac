package config

import (
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

// noKeyFiles stands in for the file system: random input must not open files.
func noKeyFiles(name string) ([]byte, error) {
	return nil, fmt.Errorf("open %s: %w", name, fs.ErrNotExist)
}

// FuzzParse checks that Parse never panics on any input, and that what it accepts is
// a fixed point: populating again changes nothing and validating again passes. What
// Parse accepts, the LoadPublic mode (no secrets) accepts too, with the same result but
// the key.
// Seeds are in testdata/fuzz/FuzzParse (the example configs and broken variants).
func FuzzParse(f *testing.F) {
	f.Add([]byte(clientYAML))
	f.Add([]byte(serverYAML))
	f.Fuzz(func(t *testing.T, data []byte) {
		w := &walker{file: "fuzz.yaml", lines: map[string]int{}, readKey: noKeyFiles, secrets: true}
		if root, err := w.parseDocument(data); err == nil {
			if c, err := w.decodeRoot(root); err == nil {
				checkLines(t, c, w.lines)
			}
		}
		c, err := parse("fuzz.yaml", data, noKeyFiles, true)
		pub, perr := parse("fuzz.yaml", data, noKeyFiles, false)
		if err == nil && perr != nil {
			t.Fatalf("accepted with the key, refused without it: %v", perr)
		}
		if err == nil {
			withKey := *c
			withKey.PrivateKey = pub.PrivateKey
			if !pub.PrivateKey.IsZero() || !reflect.DeepEqual(withKey, *pub) {
				t.Fatal("the config without the key differs in more than the key")
			}
		}
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config with an error")
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if err := validate(c); err != nil {
			t.Fatalf("validate of an accepted config failed: %v", err)
		}
		before := *c
		populate(c)
		if !reflect.DeepEqual(before, *c) {
			t.Fatal("populate of an accepted config changed it")
		}
		if mtu := c.MTU(); mtu < MinMTU || mtu > MaxMTU {
			t.Fatalf("MTU() = %d out of range", mtu)
		}
	})
}
