package config

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// configDoc is the reference of every key, which TestConfigDocKeys holds to the decoder.
const configDoc = "../docs/CONFIG.md"

// docKeyRE matches a key's row in one of docs/CONFIG.md's tables: the first cell is the
// key's path in backquotes, as keyPaths writes it ("uplinks[].name").
var docKeyRE = regexp.MustCompile("^\\|\\s*`([a-z_]+(?:\\[\\])?(?:\\.[a-z_]+(?:\\[\\])?)*)`\\s*\\|")

// documentedKeys returns the key paths docs/CONFIG.md's tables document, each once.
func documentedKeys(t *testing.T, doc string) []string {
	t.Helper()
	var keys []string
	seen := map[string]int{}
	for i, line := range strings.Split(doc, "\n") {
		m := docKeyRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if j, dup := seen[m[1]]; dup {
			t.Errorf("%s:%d: %s is already documented on line %d", configDoc, i+1, m[1], j)
		}
		seen[m[1]] = i + 1
		keys = append(keys, m[1])
	}
	slices.Sort(keys)
	return keys
}

// TestConfigDocKeys checks that docs/CONFIG.md documents every key the decoder accepts
// and no key it refuses. The accepted set comes from the decoder's own table
// (knownKeys, through keyPaths), which TestKnownKeysDecoded holds to the decoders.
func TestConfigDocKeys(t *testing.T) {
	data, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	documented := documentedKeys(t, string(data))
	accepted := keyPaths()
	for _, k := range accepted {
		if !slices.Contains(documented, k) {
			t.Errorf("%s: key %s is accepted by the decoder but not documented (add a row \"| `%s` | ... |\")", configDoc, k, k)
		}
	}
	for _, k := range documented {
		if !slices.Contains(accepted, k) {
			t.Errorf("%s: key %s is documented but the decoder refuses it", configDoc, k)
		}
	}
	if len(accepted) < 20 {
		t.Errorf("keyPaths() = %d keys; the table lost some: %v", len(accepted), accepted)
	}
}

// probeDoc is a file holding only the key at path (as keyPaths writes it), with a value
// of the wrong kind for every key: a list of one mapping.
func probeDoc(path string) *yaml.Node {
	leaf := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	parts := strings.Split(path, ".")
	node := leaf
	for i := len(parts) - 1; i >= 0; i-- {
		key, list := strings.CutSuffix(parts[i], "[]")
		if list && i < len(parts)-1 {
			node = &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{node}}
		}
		node = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, node}}
	}
	return node
}

// TestKnownKeysDecoded checks the other half of knownKeys' promise: the decoder handles
// every key the table lists (a key listed but not handled would be refused as unknown).
// Each key is given a value of the wrong kind, so its decoder, not the table, answers.
func TestKnownKeysDecoded(t *testing.T) {
	for _, path := range keyPaths() {
		out, err := yaml.Marshal(probeDoc(path))
		if err != nil {
			t.Fatal(err)
		}
		_, err = parse("probe.yaml", out, stubKeyReader, true)
		var e *Error
		if errors.As(err, &e) && e.Msg == "unknown field" {
			t.Errorf("%s is in knownKeys but the decoder does not handle it:\n%s-> %v", path, out, err)
		}
		if err == nil {
			t.Errorf("%s: a probe with a list of a mapping for a value was accepted:\n%s", path, out)
		}
	}
}

// TestUnknownKeysRefused checks that the table refuses keys the decoders would not see:
// one that no section lists and one listed only in another section, also with a null value.
func TestUnknownKeysRefused(t *testing.T) {
	for _, doc := range []string{
		"version: 1\ncolour:\n", "version: 1\ntun:\n  port: 1\n", "version: 1\nlisten:\n  mtu: ~\n",
		"version: 1\npeers:\n  - mtu: 1\n", "version: 1\nuplinks:\n  - public_key:\n",
	} {
		_, err := parse("t.yaml", []byte(doc), stubKeyReader, true)
		var e *Error
		if !errors.As(err, &e) || e.Msg != "unknown field" || e.Line != strings.Count(doc, "\n") {
			t.Errorf("%q: got %v, want unknown field on its last line", doc, err)
		}
	}
}

func TestSectionOf(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "tun": "tun", "uplinks[0]": "uplinks[]", "peers[12]": "peers[]", "a[1].b[2]": "a[].b[]", "a[": "a[",
	} {
		if got := sectionOf(in); got != want {
			t.Errorf("sectionOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// stubKeyReader stands in for the key file of private_key_file in the docs' examples.
func stubKeyReader(string) ([]byte, error) { return []byte(clientPriv + "\n"), nil }

// TestConfigDocExamples parses every yaml block of docs/CONFIG.md: the complete client
// and server examples must be valid as they stand (private_key_file reads a stub key).
func TestConfigDocExamples(t *testing.T) {
	data, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	var client, server int
	for i, b := range blocks {
		c, err := parse(configDoc+" example", []byte(b[1]), stubKeyReader, true)
		if err != nil {
			t.Errorf("yaml block %d: %v", i+1, err)
			continue
		}
		if c.IsClient() {
			client++
		} else {
			server++
		}
	}
	if client == 0 || server == 0 {
		t.Errorf("%s has %d valid client and %d valid server examples; want at least one of each", configDoc, client, server)
	}
}
