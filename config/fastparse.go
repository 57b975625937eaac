package config

import (
	"math"
	"strings"
	"unicode/utf8"
)

// fastParse builds the node tree of a config file written in the plain block style the
// examples use, ten times faster than yaml.v3 or more, in about a hundred large
// allocations instead of hundreds of thousands of small ones (BenchmarkTree10000Peers):
// a server of 10 000 peers re-reads its file at every reload (docs/DECISIONS.md,
// "Configuration"). It accepts only this subset of YAML:
//
//   - block mappings whose keys are identifiers ([A-Za-z_][A-Za-z0-9_]*) followed by ":"
//     and a space or the end of the line, and block sequences ("- "), "key:" followed by a
//     nested block or by a sequence at the key's own indentation, or by nothing (null);
//   - as values, plain scalars of one word of letters, digits and _ . / : + = @ % ~ -
//     (starting with a letter, a digit, / or _, or - and a digit),
//     single- and double-quoted scalars without escapes, and flow sequences of those on one
//     line ("[10.0.0.1/32, fd00::1/128]");
//   - comments, blank lines, spaces for indentation, one document starting at column 0.
//
// For anything else (tabs, CR, anchors, aliases, tags, flow mappings, block scalars,
// multi-line scalars, document markers, a plain scalar whose type is not obviously a
// string, a null, a boolean or a decimal integer, odd indentation, any syntax error) it
// returns ok false and the caller parses the file with yaml.v3, which also reports the
// errors. Whatever it accepts it parses to the tree fromYAML builds from yaml.v3's
// (FuzzFastParse).
func fastParse(data []byte) (root *node, ok bool) {
	p := &fastParser{}
	if !p.split(data) || len(p.lines) == 0 || p.lines[0].indent != 0 {
		return nil, false
	}
	defer func() {
		if r := recover(); r != nil {
			if r != errNotFast {
				panic(r)
			}
			root, ok = nil, false
		}
	}()
	if p.isEntry(0, 0) {
		return nil, false // a list at the top: yaml.v3 reports "expected a mapping"
	}
	root = p.mapping(0)
	if p.i != len(p.lines) {
		return nil, false
	}
	return root, true
}

// errNotFast is the panic that unwinds fastParse when the input leaves the subset.
var errNotFast = &struct{ string }{"not in the fast subset"}

func notFast() { panic(errNotFast) }

type fastParser struct {
	lines []fastLine // the lines that hold more than a comment
	i     int        // the line being parsed
	slab  []node     // nodes are allocated from here
	ptrs  []*node    // and their content from here
	stack []*node    // the children of the nodes being built
}

type fastLine struct {
	num    int32  // 1-based line number
	indent int32  // leading spaces
	text   string // the whole line
}

// split cuts data into lines, drops those with only spaces and a comment, and checks that
// every character is one the subset allows: printable ASCII, and in comments also the
// printable non-ASCII characters YAML allows (no BOM, no Unicode line separators).
func (p *fastParser) split(data []byte) bool {
	text := string(data)
	p.lines = make([]fastLine, 0, strings.Count(text, "\n")+1)
	if len(text) >= 3 && (text[:3] == "---" || text[:3] == "...") {
		return false
	}
	num := 0
	for len(text) > 0 {
		num++
		if num > math.MaxInt32 {
			return false
		}
		line := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			if c >= 0x80 {
				if !printableRest(line[i:]) {
					return false
				}
				break // only a comment can hold it, which the parser checks
			}
			if c < 0x20 || c == 0x7f {
				return false
			}
		}
		if strings.HasPrefix(line, "---") || strings.HasPrefix(line, "...") {
			return false
		}
		if indent == len(line) || line[indent] == '#' {
			continue
		}
		p.lines = append(p.lines, fastLine{num: int32(num), indent: int32(indent), text: line})
	}
	return true
}

// printableRest reports whether s is valid UTF-8 of characters YAML calls printable,
// apart from the line breaks and the byte order mark it treats specially.
func printableRest(s string) bool {
	for _, r := range s {
		switch {
		case r == utf8.RuneError, r < 0x20, r >= 0x7f && r < 0xa0, r == 0x2028, r == 0x2029, r == 0xfeff,
			r >= 0xd800 && r < 0xe000, r == 0xfffe, r == 0xffff:
			return false
		}
	}
	return true
}

func (p *fastParser) newNode(kind nodeKind, line int, tag tagID) *node {
	if len(p.slab) == cap(p.slab) {
		p.slab = make([]node, 0, 1024)
	}
	p.slab = p.slab[:len(p.slab)+1]
	n := &p.slab[len(p.slab)-1]
	n.kind, n.line, n.tagID = kind, int32(line), tag
	return n
}

// finish gives n the children pushed onto the stack since start.
func (p *fastParser) finish(n *node, start int) {
	k := len(p.stack) - start
	if k == 0 {
		return
	}
	if len(p.ptrs)+k > cap(p.ptrs) {
		p.ptrs = make([]*node, 0, max(4096, k))
	}
	at := len(p.ptrs)
	p.ptrs = append(p.ptrs, p.stack[start:]...)
	n.content = p.ptrs[at:len(p.ptrs):len(p.ptrs)]
	clear(p.stack[start:])
	p.stack = p.stack[:start]
}

// next is the indentation of the next line, -1 at the end.
func (p *fastParser) next() int {
	if p.i >= len(p.lines) {
		return -1
	}
	return int(p.lines[p.i].indent)
}

// isEntry reports whether line i holds a sequence entry ("-" then a space or the end) at col.
func (p *fastParser) isEntry(i, col int) bool {
	t := p.lines[i].text
	return col < len(t) && t[col] == '-' && (col+1 == len(t) || t[col+1] == ' ')
}

// mapping parses the block mapping whose first key is at column col of the current line.
func (p *fastParser) mapping(col int) *node {
	l := p.lines[p.i]
	m := p.newNode(mappingNode, int(l.num), tagMap)
	start := len(p.stack)
	for {
		l = p.lines[p.i]
		key, rest := p.key(l, col)
		p.stack = append(p.stack, key)
		p.stack = append(p.stack, p.value(l, rest, col, true))
		d := p.next()
		if d < col {
			break
		}
		if d > col || p.isEntry(p.i, col) {
			notFast() // a continuation line, or a list where a key belongs
		}
	}
	p.finish(m, start)
	return m
}

// key parses "key:" at column col of l and returns the key and the column after the colon.
func (p *fastParser) key(l fastLine, col int) (*node, int) {
	j := keyEnd(l.text, col)
	if j < 0 || j-col > 64 {
		notFast()
	}
	k := p.newNode(scalarNode, int(l.num), tagStr)
	k.value = l.text[col:j]
	if resolvesSpecial(k.value) {
		notFast()
	}
	return k, j + 1
}

// keyEnd returns the column of the colon if t at at holds an identifier
// ([A-Za-z_][A-Za-z0-9_]*), ":" and a space or the end of the line; else -1.
func keyEnd(t string, at int) int {
	j := at
	for j < len(t) && (isIdentChar(t[j]) || j > at && t[j] >= '0' && t[j] <= '9') {
		j++
	}
	if j > at && j < len(t) && t[j] == ':' && (j+1 == len(t) || t[j+1] == ' ') {
		return j
	}
	return -1
}

func isIdentChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// value parses what follows "key:" (ofKey) or "-" at column at of l, in the block whose
// keys or entries are at column parent, and moves past it.
func (p *fastParser) value(l fastLine, at, parent int, ofKey bool) *node {
	t := l.text
	for at < len(t) && t[at] == ' ' {
		at++
	}
	if at == len(t) || t[at] == '#' && t[at-1] == ' ' {
		if at < len(t) && !printableRest(t[at:]) {
			notFast()
		}
		p.i++
		d := p.next()
		switch {
		case d > parent:
			return p.block()
		case d == parent && ofKey && p.isEntry(p.i, d):
			return p.sequence(d) // a list at its key's indentation
		}
		return p.newNode(scalarNode, int(l.num), tagNull) // "key:" alone, or "-" alone
	}
	var n *node
	if t[at] == '[' {
		n, at = p.flowSequence(l, at)
	} else {
		n, at = p.scalar(l, at, false)
	}
	p.endOfLine(t, at)
	p.i++
	return n
}

// block parses the block node that starts on the current line.
func (p *fastParser) block() *node {
	d := p.next()
	if p.isEntry(p.i, d) {
		return p.sequence(d)
	}
	return p.mapping(d)
}

// sequence parses the block sequence whose entries start at column col.
func (p *fastParser) sequence(col int) *node {
	s := p.newNode(sequenceNode, int(p.lines[p.i].num), tagSeq)
	start := len(p.stack)
	for p.next() == col && p.isEntry(p.i, col) {
		l := p.lines[p.i]
		at := col + 1
		for at < len(l.text) && l.text[at] == ' ' {
			at++
		}
		var item *node
		if keyEnd(l.text, at) >= 0 {
			item = p.mapping(at) // "- name: x": a mapping at the key's column
		} else {
			item = p.value(l, col+1, col, false)
		}
		p.stack = append(p.stack, item)
		if d := p.next(); d > col {
			notFast()
		}
	}
	p.finish(s, start)
	return s
}

// flowSequence parses "[a, b]" at column at of l, all on that line.
func (p *fastParser) flowSequence(l fastLine, at int) (*node, int) {
	t := l.text
	s := p.newNode(sequenceNode, int(l.num), tagSeq)
	start := len(p.stack)
	at = skipSpaces(t, at+1)
	if at < len(t) && t[at] == ']' {
		return s, at + 1
	}
	for {
		var item *node
		item, at = p.scalar(l, at, true)
		p.stack = append(p.stack, item)
		at = skipSpaces(t, at)
		if at >= len(t) {
			notFast()
		}
		if t[at] == ']' {
			break
		}
		if t[at] != ',' {
			notFast()
		}
		at = skipSpaces(t, at+1)
	}
	p.finish(s, start)
	return s, at + 1
}

func skipSpaces(t string, at int) int {
	for at < len(t) && t[at] == ' ' {
		at++
	}
	return at
}

// endOfLine accepts only spaces and a comment after a value that ends at at.
func (p *fastParser) endOfLine(t string, at int) {
	j := skipSpaces(t, at)
	if j == len(t) {
		return
	}
	if t[j] != '#' || j == at || !printableRest(t[j:]) {
		notFast()
	}
}

// scalar parses a plain or quoted scalar at column at of l (inside a flow sequence if
// flow) and returns it with the column after it.
func (p *fastParser) scalar(l fastLine, at int, flow bool) (*node, int) {
	t := l.text
	if at >= len(t) {
		notFast()
	}
	if q := t[at]; q == '"' || q == '\'' {
		j := at + 1
		for j < len(t) && t[j] != q && t[j] < 0x80 && (q == '\'' || t[j] != '\\') {
			j++
		}
		if j >= len(t) || t[j] != q || j+1 < len(t) && t[j+1] == q {
			notFast() // unterminated, an escape or a doubled quote, or not ASCII
		}
		n := p.newNode(scalarNode, int(l.num), tagStr)
		n.value = t[at+1 : j]
		return n, p.afterScalar(t, j+1, flow)
	}
	j := at
	for j < len(t) && plainChar(t[j]) {
		if t[j] == ':' && (j+1 == len(t) || !plainChar(t[j+1])) {
			notFast() // ": " is a key here; let yaml.v3 say what it is
		}
		j++
	}
	c := t[at]
	if j == at || !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' ||
		c == '-' && at+1 < j && t[at+1] >= '0' && t[at+1] <= '9') {
		notFast()
	}
	tag := plainTag(t[at:j])
	if tag == noTag {
		notFast()
	}
	n := p.newNode(scalarNode, int(l.num), tag)
	n.value = t[at:j]
	return n, p.afterScalar(t, j, flow)
}

// afterScalar checks what may follow a scalar that ends at at: in a flow sequence a
// comma or "]", elsewhere the end of the line, either possibly after spaces and, out of
// a flow sequence, a comment.
func (p *fastParser) afterScalar(t string, at int, flow bool) int {
	if at == len(t) || t[at] == ' ' || flow && (t[at] == ',' || t[at] == ']') {
		return at
	}
	notFast()
	return at
}

func plainChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_./:+=@%~-", c) >= 0
}

// plainTag is the tag yaml.v3 resolves the plain scalar s to, for the scalars whose tag
// is plain to see; noTag for the rest (floats, timestamps, octal, hexadecimal, ...), which
// leave the subset (noTag).
func plainTag(s string) tagID {
	switch s {
	case "null", "Null", "NULL":
		return tagNull
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return tagBool
	}
	c := s[0]
	if c != '-' && (c < '0' || c > '9') {
		return tagStr
	}
	if decimal(s) {
		return tagInt
	}
	// Digits, dots, colons, slashes and hexadecimal letters with a colon, a slash or two
	// dots: an address, never a number or a date (those need a '-' or at most one '.').
	if c == '-' || strings.Trim(s, "0123456789abcdefABCDEF.:/") != "" {
		return noTag
	}
	if strings.ContainsAny(s, ":/") || strings.Count(s, ".") >= 2 {
		return tagStr
	}
	return noTag
}

// decimal reports whether s is 0 or a decimal integer of at most 18 digits without a
// leading zero, optionally negative: one that yaml.v3 and strconv.Atoi read alike.
func decimal(s string) bool {
	if s == "0" {
		return true
	}
	s = strings.TrimPrefix(s, "-")
	if s == "" || len(s) > 18 || s[0] == '0' {
		return false
	}
	return strings.Trim(s, "0123456789") == ""
}

// resolvesSpecial reports whether the plain scalar s would not be a string for yaml.v3
// although it starts with a letter.
func resolvesSpecial(s string) bool {
	return plainTag(s) != tagStr
}
