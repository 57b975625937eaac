package config

import (
	"fmt"
	"strconv"
	"strings"
)

// ErrorAt returns an error about field placed like the loader's own: at the field's line
// or, when the field is absent, at the line of its nearest present parent. It is for
// checks made outside this package against the host (`bondtun check`), so that their
// findings name the file, line and field too.
func (c *Config) ErrorAt(field, format string, args ...any) *Error {
	return &Error{File: c.Path, Line: c.lineOf(field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ForgetLines drops the line of every field, which only errors about the file use
// (ErrorAt then places its errors at no line). For a Config kept for a whole run, as
// `up` keeps the running one to compare a reload with: the lines are the file's node
// tree, with 10 000 peers several hundred bytes per peer.
func (c *Config) ForgetLines() { c.tree = nil }

// line returns the line of field ("peers[3].allowed_ips[0]") as the walker recorded it:
// for a key with a value (not null) the key's line, for a list item the item's, for ""
// the root's. ok is false for a field the file does not have.
func (c *Config) line(field string) (line int, ok bool) {
	n := c.tree
	if n == nil {
		return 0, false
	}
	line = int(n.line)
	for first := true; field != ""; first = false {
		if field[0] == '[' {
			j := strings.IndexByte(field, ']')
			if j < 0 || n.kind != sequenceNode {
				return 0, false
			}
			i, err := strconv.Atoi(field[1:j])
			if err != nil || i < 0 || i >= len(n.content) || strconv.Itoa(i) != field[1:j] {
				return 0, false
			}
			n, field = n.content[i], field[j+1:]
			line = int(n.line)
			continue
		}
		if !first {
			if field[0] != '.' {
				return 0, false
			}
			field = field[1:]
		}
		j := strings.IndexAny(field, ".[")
		if j < 0 {
			j = len(field)
		}
		key := field[:j]
		if key == "" || n.kind != mappingNode {
			return 0, false
		}
		v := (*node)(nil)
		for i := 0; i+1 < len(n.content); i += 2 {
			if k := n.content[i]; k.value == key && k.kind == scalarNode {
				v, line = n.content[i+1], int(k.line)
				break
			}
		}
		if v == nil || isNull(v) {
			return 0, false
		}
		n, field = v, field[j:]
	}
	return line, true
}
