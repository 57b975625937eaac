package config

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// walker turns a node tree (tree.go) into typed values. It refuses what yaml.v3's
// Node.Decode would let through (unknown keys, duplicate keys, aliases). The Config
// keeps the tree, where validate and ErrorAt find the line of a field (Config.line).
type walker struct {
	file string
	// lines, if not nil, receives the line of every field the walker reads: the
	// definition Config.line is tested against (the tree is searched instead of building
	// this map, a reload of 10 000 peers makes 50 000 entries).
	lines   map[string]int
	readKey keyFileReader
	// secrets: parse private_key and read private_key_file. Without it (LoadPublic)
	// they are only recorded: the key stays zero and its file is never opened.
	secrets bool
}

// errAt builds an *Error for field at node n.
func (w *walker) errAt(n *node, field, format string, args ...any) *Error {
	line := 0
	if n != nil {
		line = int(n.line)
	}
	return &Error{File: w.file, Line: line, Field: strings.Clone(field), Msg: fmt.Sprintf(format, args...)}
}

// yamlLineRE matches the position yaml.v3 puts into syntax errors.
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDocument returns the single document's root node: from the fast parser when the
// file is in its subset (fastparse.go), else from yaml.v3. Syntax errors become *Error
// with the line yaml.v3 reported.
func (w *walker) parseDocument(data []byte) (*node, error) {
	if root, ok := fastParse(data); ok {
		return root, nil
	}
	return w.yamlDocument(data)
}

// yamlDocument is parseDocument by yaml.v3.
func (w *walker) yamlDocument(data []byte) (*node, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: w.file, Msg: "file is empty"}
		}
		return nil, w.syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, w.syntaxError(err)
		}
		return nil, w.errAt(&node{line: int32(extra.Line)}, "", "a config file holds one YAML document, found another")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: w.file, Msg: "file is not a YAML document"}
	}
	return fromYAML(doc.Content[0]), nil
}

func (w *walker) syntaxError(err error) *Error {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: w.file, Line: line, Msg: "invalid YAML: " + m[2], Err: err}
	}
	return &Error{File: w.file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: "), Err: err}
}

// isNull reports whether n is an explicit or implicit null ("key:" or "key: ~"),
// which every field treats as absent.
func isNull(n *node) bool {
	return n.kind == scalarNode && n.tagID == tagNull
}

// checkPlain refuses YAML features a config file has no use for and that would let a
// value's line differ from where it is used.
func (w *walker) checkPlain(n *node, field string) error {
	switch {
	case n.kind == aliasNode:
		return w.errAt(n, field, "aliases are not supported in config files")
	case n.anchor:
		return w.errAt(n, field, "anchors are not supported in config files")
	}
	return nil
}

// mapping calls fn for each key of the mapping n, in file order. Keys must be plain
// strings, unique and listed for the mapping's section in knownKeys (keys.go); fn
// reports with w.unknown a listed key it does not handle. Null values are skipped, so
// every field treats "key:" as absent.
func (w *walker) mapping(n *node, field string, fn func(key string, k, v *node, field string) error) error {
	if err := w.checkPlain(n, field); err != nil {
		return err
	}
	if n.kind != mappingNode {
		return w.errAt(n, field, "expected a mapping, got %s", describe(n))
	}
	keys := sectionKeys(field)
	for i := 0; i+1 < len(n.content); i += 2 {
		k, v := n.content[i], n.content[i+1]
		if err := w.checkPlain(k, field); err != nil {
			return err
		}
		if k.kind != scalarNode || k.tagID != tagStr {
			return w.errAt(k, field, "keys must be plain strings, got %s", describe(k))
		}
		key, ok := canonicalKey(keys, k.value)
		if !ok {
			return w.unknown(k, joinField(field, k.value)) // also a key with a null value: strict means strict
		}
		sub := joinField(field, key)
		for j := 0; j < i; j += 2 { // the keys before are few, and all known
			if n.content[j].value == key {
				return w.errAt(k, sub, "duplicate key")
			}
		}
		if err := w.checkPlain(v, sub); err != nil {
			return err
		}
		if isNull(v) {
			continue
		}
		w.record(sub, int(k.line)) // the key's line: for a block value it names "key:"
		if err := fn(key, k, v, sub); err != nil {
			return err
		}
	}
	return nil
}

// record notes the line of field in w.lines, if the walker keeps them.
func (w *walker) record(field string, line int) {
	if w.lines != nil {
		w.lines[field] = line
	}
}

// unknown is the error for a key that no field of the section has.
func (w *walker) unknown(k *node, field string) error {
	return w.errAt(k, field, "unknown field")
}

// sequence calls fn for each item of the list n with the item's field path.
func (w *walker) sequence(n *node, field string, fn func(i int, v *node, field string) error) error {
	if n.kind != sequenceNode {
		return w.errAt(n, field, "expected a list, got %s", describe(n))
	}
	for i, v := range n.content {
		sub := field + "[" + strconv.Itoa(i) + "]"
		if err := w.checkPlain(v, sub); err != nil {
			return err
		}
		w.record(sub, int(v.line))
		if err := fn(i, v, sub); err != nil {
			return err
		}
	}
	return nil
}

// str returns the text of a scalar. Numbers are accepted as text, so `name: 1` works.
// The text is a copy: the fast parser's values are slices of the whole file, which a
// string kept for the run would keep in memory.
func (w *walker) str(n *node, field string) (string, error) {
	s, err := w.text(n, field)
	return strings.Clone(s), err
}

// text is str without the copy, for a value that is parsed and dropped.
func (w *walker) text(n *node, field string) (string, error) {
	if n.kind != scalarNode || isNull(n) {
		return "", w.errAt(n, field, "expected a string, got %s", describe(n))
	}
	return n.value, nil
}

// integer returns the value of an integer scalar.
func (w *walker) integer(n *node, field string) (int, error) {
	if n.kind != scalarNode || n.tagID != tagInt {
		return 0, w.errAt(n, field, "expected an integer, got %s", describe(n))
	}
	v, err := n.intValue()
	if err != nil {
		return 0, w.errAt(n, field, "integer %q out of range", n.value)
	}
	return v, nil
}

func (w *walker) prefix(n *node, field string) (netip.Prefix, error) {
	s, err := w.text(n, field)
	if err != nil {
		return netip.Prefix{}, err
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, w.errAt(n, field, "%q is not an IP prefix like 10.0.0.0/24 or fd00::/64", s)
	}
	return p, nil
}

func (w *walker) prefixes(n *node, field string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := w.sequence(n, field, func(_ int, v *node, sub string) error {
		p, err := w.prefix(v, sub)
		out = append(out, p)
		return err
	})
	return out, err
}

// addr parses an IP literal. IPv4-mapped IPv6 addresses are unmapped so that an
// address has one form.
func (w *walker) addr(n *node, field string) (netip.Addr, error) {
	s, err := w.text(n, field)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, w.errAt(n, field, "%q is not an IP address", s)
	}
	return a.Unmap(), nil
}

func (w *walker) addrs(n *node, field string) ([]netip.Addr, error) {
	var out []netip.Addr
	err := w.sequence(n, field, func(_ int, v *node, sub string) error {
		a, err := w.addr(v, sub)
		out = append(out, a)
		return err
	})
	return out, err
}

// describe names a node's kind for "expected X, got Y" messages.
func describe(n *node) string {
	switch n.kind {
	case mappingNode:
		return "a mapping"
	case sequenceNode:
		return "a list"
	case aliasNode:
		return "an alias"
	case scalarNode:
		switch n.tag() {
		case "!!null":
			return "null"
		case "!!str":
			return strconv.Quote(n.value)
		case "!!int":
			return "integer " + n.value
		case "!!float":
			return "number " + n.value
		case "!!bool":
			return "boolean " + n.value
		}
		return fmt.Sprintf("%s %q", n.tag(), n.value)
	}
	return "an unexpected node"
}

func joinField(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}
