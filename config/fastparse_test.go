package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// diffTree describes the first difference between two node trees, "" if none. The
// yaml.v3 node a tree was converted from is not compared.
func diffTree(a, b *node, at string) string {
	if a == nil || b == nil {
		if a != b {
			return fmt.Sprintf("%s: %v vs %v", at, a, b)
		}
		return ""
	}
	if a.kind != b.kind || a.anchor != b.anchor || a.line != b.line || a.tag() != b.tag() || a.value != b.value ||
		len(a.content) != len(b.content) {
		return fmt.Sprintf("%s: kind %d/%d anchor %v/%v line %d/%d tag %s/%s value %q/%q children %d/%d", at,
			a.kind, b.kind, a.anchor, b.anchor, a.line, b.line, a.tag(), b.tag(), a.value, b.value, len(a.content), len(b.content))
	}
	for i := range a.content {
		if d := diffTree(a.content[i], b.content[i], fmt.Sprintf("%s/%d", at, i)); d != "" {
			return d
		}
	}
	return ""
}

// checkLines checks Config.line, which searches the tree, against the lines the walker
// recorded while decoding it: the same line for every field recorded, none for other
// fields of the tree (null values) or near misses of a recorded one.
func checkLines(t *testing.T, c *Config, recorded map[string]int) {
	t.Helper()
	for field, want := range recorded {
		if got, ok := c.line(field); !ok || got != want {
			t.Fatalf("line(%q) = %d, %v; recorded %d", field, got, ok, want)
		}
		for _, near := range []string{field + ".", field + "[0", "." + field, field + "x", field + "[00]", field + "[-1]"} {
			if _, rec := recorded[near]; !rec {
				if got, ok := c.line(near); ok {
					t.Fatalf("line(%q) = %d, true; not recorded", near, got)
				}
			}
		}
	}
	var walk func(n *node, field string)
	walk = func(n *node, field string) {
		switch n.kind {
		case mappingNode:
			for i := 0; i+1 < len(n.content); i += 2 {
				sub := joinField(field, n.content[i].value)
				if _, ok := c.line(sub); ok != (recorded[sub] != 0) {
					t.Fatalf("line(%q) found %v, recorded %v", sub, ok, recorded[sub] != 0)
				}
				walk(n.content[i+1], sub)
			}
		case sequenceNode:
			for i, v := range n.content {
				sub := fmt.Sprintf("%s[%d]", field, i)
				if _, ok := c.line(sub); !ok || recorded[sub] == 0 {
					t.Fatalf("line(%q) found %v, recorded %v", sub, ok, recorded[sub] != 0)
				}
				walk(v, sub)
			}
		}
	}
	walk(c.tree, "")
}

// FuzzFastParse is the differential test of the fast parser: wherever it accepts the
// input, yaml.v3 must accept it too and build the same tree, and decoding either tree
// must give the same Config (field lines included) or the same error. Seeds are in
// testdata/fuzz/FuzzFastParse: the repository's configs, the examples of docs/, and
// variants at the edges of the subset.
func FuzzFastParse(f *testing.F) {
	f.Add([]byte(clientYAML))
	f.Add([]byte(serverYAML))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := fastParse(data)
		if !ok {
			return
		}
		w := &walker{file: "f.yaml", lines: map[string]int{}, readKey: noKeyFiles, secrets: true}
		slow, err := w.yamlDocument(data)
		if err != nil {
			t.Fatalf("the fast parser accepts what yaml.v3 refuses: %v", err)
		}
		if d := diffTree(fast, slow, "root"); d != "" {
			t.Fatalf("trees differ: %s", d)
		}
		wf := &walker{file: "f.yaml", lines: map[string]int{}, readKey: noKeyFiles, secrets: true}
		cf, ef := wf.decodeRoot(fast)
		cs, es := w.decodeRoot(slow)
		if fmt.Sprint(ef) != fmt.Sprint(es) {
			t.Fatalf("errors differ: %v vs %v", ef, es)
		}
		if ef != nil {
			return
		}
		checkLines(t, cf, wf.lines)
		if !reflect.DeepEqual(wf.lines, w.lines) {
			t.Fatalf("lines differ:\n%v\n%v", wf.lines, w.lines)
		}
		cf.tree, cs.tree = nil, nil // equal but for the yaml.v3 nodes the slow one holds
		if !reflect.DeepEqual(cf, cs) {
			t.Fatalf("configs differ:\n%+v\n%+v", cf, cs)
		}
	})
}

// The fast path must take the files bondtun is shipped with and the one the scale
// benchmark writes: else a reload of many peers silently falls back to yaml.v3.
func TestFastParseAcceptsExamples(t *testing.T) {
	files, err := filepath.Glob("../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs: %v", err)
	}
	inputs := map[string][]byte{"manyPeersYAML(100)": manyPeersYAML(100), "clientYAML": []byte(clientYAML), "serverYAML": []byte(serverYAML)}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[f] = data
	}
	for name, data := range inputs {
		if _, ok := fastParse(data); !ok {
			t.Errorf("%s: not in the fast parser's subset", name)
		}
	}
}

// The fast parser leaves to yaml.v3 what is outside its subset.
func TestFastParseRefuses(t *testing.T) {
	for _, in := range []string{
		"",
		"# only a comment\n",
		"a: &x 1\n", "a: *x\n", "a: !!str 1\n", "a: {b: 1}\n", "a: |\n  x\n", "a: >\n  x\n",
		"---\na: 1\n", "a: 1\n...\n", "a: 1\n---\nb: 2\n", "%YAML 1.2\n---\na: 1\n",
		"a:\tb\n", "a: b\r\n", "\ufeffa: 1\n", "a: 1.5\n", "a: 0x10\n", "a: 010\n", "a: 2001-12-14\n",
		"a: 1_000\n", "a: +1\n", "a: .5\n", "a: 1e3\n", "a: ~\n", "a: b c\n", "a: b#c\n", "a: \"x\\ty\"\n",
		"a: 'it''s'\n", "a: \"x\n", "a: [b, c\n", "a: [b,]\n", "a: [[b]]\n", "a: b\n  c\n", "a:\n  b\n",
		"- a\n", "  a: 1\n", "a: 1\n b: 2\n", "a:\n    b: 1\n  c: 2\n", "\"a\": 1\n", "a : 1\n", "a:b\n",
		"true: 1\n", "null: 1\n", "a: b:\n", "a: b: c\n", "? a\n: 1\n", "a: - b\n", "a: @b\n", "a: %b\n",
		"a:\n- b\n  c: 1\n", "a: b\n- c\n", "a: [b: c]\n", "a: 1 # c\u2028d\n",
	} {
		if _, ok := fastParse([]byte(in)); ok {
			t.Errorf("fastParse(%q) accepted", in)
		}
	}
}

// The strings a Config keeps are copies, not slices of the file's text that the fast
// parser's values are: one name kept for the run would keep the whole file in memory.
func TestFastParseStringsAreCopies(t *testing.T) {
	data := []byte(strings.Replace(serverYAML, "version: 1", "version: 1\nscheduler: drr", 1))
	root, ok := fastParse(data)
	if !ok {
		t.Fatal("not in the subset")
	}
	lo, hi := ^uintptr(0), uintptr(0)
	var walk func(n *node)
	walk = func(n *node) {
		if n.value != "" {
			p := uintptr(unsafe.Pointer(unsafe.StringData(n.value)))
			lo, hi = min(lo, p), max(hi, p+uintptr(len(n.value)))
		}
		for _, c := range n.content {
			walk(c)
		}
	}
	walk(root)
	c, err := (&walker{file: "s.yaml", lines: map[string]int{}, readKey: noKeyFiles, secrets: true}).decodeRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	kept := []string{c.Scheduler, c.TUN.Name, c.Peers[0].Name}
	for _, s := range kept {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); s != "" && p >= lo && p < hi {
			t.Errorf("%q points into the file's text", s)
		}
	}
}

// BenchmarkTree10000Peers compares the two parsers on a server file of 10 000 peers.
func BenchmarkTree10000Peers(b *testing.B) {
	data := manyPeersYAML(10000)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := fastParse(data); !ok {
				b.Fatal("not in the subset")
			}
		}
	})
	b.Run("yaml.v3", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (&walker{}).yamlDocument(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
