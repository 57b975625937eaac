package config

import (
	"slices"
	"strings"
)

// knownKeys is the one table of the keys a config file may hold. It maps each mapping of
// the file, named by its field path with list indexes written as "[]" ("" for the top
// level, "tun", "uplinks[]", "listen", "peers[]"), to the keys that mapping accepts, in
// the order docs/CONFIG.md lists them. walker.mapping refuses every key that is not here
// ("unknown field") before a section's decoder sees it, so a key the decoder handles but
// this table lacks is refused, and configdoc_test.go checks both that the decoder handles
// every key listed here and that docs/CONFIG.md documents exactly these keys. A new key is
// added here, in its section's decoder and in docs/CONFIG.md.
var knownKeys = map[string][]string{
	"":          {"version", "private_key", "private_key_file", "log_level", "tun", "uplinks", "listen", "peers", "scheduler", "table_base", "gateway", "metrics"},
	"tun":       {"name", "addresses", "mtu", "routes", "while_down", "table", "fwmark"},
	"uplinks[]": {"name", "interface", "address", "gateway", "table", "tier"},
	"listen":    {"port", "addresses"},
	"peers[]":   {"name", "public_key", "endpoint", "allowed_ips"},
	"gateway":   {"out", "forward", "nat"},
	"metrics":   {"listen"},
}

// sectionKeys returns the keys the mapping at field path field ("", "tun", "uplinks[2]",
// ...) accepts.
func sectionKeys(field string) []string {
	if !strings.Contains(field, "[") {
		return knownKeys[field]
	}
	var buf [64]byte
	return knownKeys[string(appendSection(buf[:0], field))] // the lookup does not allocate
}

// canonicalKey returns the element of keys equal to key: the table's own string rather
// than the file's, which the decoder records in its field paths.
func canonicalKey(keys []string, key string) (string, bool) {
	for _, k := range keys {
		if k == key {
			return k, true
		}
	}
	return "", false
}

// sectionOf names the mapping at field as knownKeys does: list indexes become "[]"
// ("uplinks[2]" -> "uplinks[]").
func sectionOf(field string) string {
	return string(appendSection(nil, field))
}

// appendSection appends sectionOf(field) to b.
func appendSection(b []byte, field string) []byte {
	for {
		i := strings.IndexByte(field, '[')
		if i < 0 {
			return append(b, field...)
		}
		j := strings.IndexByte(field[i:], ']')
		if j < 0 {
			return append(b, field...)
		}
		b = append(append(b, field[:i]...), "[]"...)
		field = field[i+j+1:]
	}
}

// keyPaths returns the path of every key a config file may hold, sorted: "log_level",
// "tun.mtu", "uplinks[].name", ... (list items written as "[]"). It is derived from the
// decoder's own table, so it is always the set the decoder accepts.
func keyPaths() []string {
	var out []string
	for section, keys := range knownKeys {
		for _, k := range keys {
			out = append(out, joinField(section, k))
		}
	}
	slices.Sort(out)
	return out
}
