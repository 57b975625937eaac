package config

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// node is the part of a YAML node the decoder reads: what yaml.v3's Node holds, without
// comments, styles and columns. Two parsers build it: the fast one (fastparse.go) for the
// plain block style config files are written in, and yaml.v3 for everything else
// (fromYAML). The decoder sees only nodes, so what it accepts, refuses and reports with
// which line is the same whichever parser built the tree; FuzzFastParse checks that the
// two build the same tree wherever the fast one accepts the input.
type node struct {
	kind    nodeKind
	anchor  bool   // an anchor (&a) is set on it
	line    int    // 1-based line
	tag     string // yaml.v3's ShortTag: "!!str", "!!int", "!!null", "!!map", ...
	value   string // a scalar's text
	content []*node
	// y is the yaml.v3 node it was converted from, nil from the fast parser: an
	// integer is decoded by yaml.v3 itself then.
	y *yaml.Node
}

type nodeKind uint8

const (
	scalarNode nodeKind = iota + 1
	mappingNode
	sequenceNode
	aliasNode
	otherNode // a kind the decoder never expects (a document inside a document)
)

// fromYAML converts a yaml.v3 tree. An alias is kept as a leaf: the decoder refuses
// aliases and never looks into their target (which may be the alias's own ancestor).
func fromYAML(y *yaml.Node) *node {
	n := &node{anchor: y.Anchor != "", line: y.Line, tag: y.ShortTag(), value: y.Value, y: y}
	switch y.Kind {
	case yaml.ScalarNode:
		n.kind = scalarNode
	case yaml.MappingNode:
		n.kind = mappingNode
	case yaml.SequenceNode:
		n.kind = sequenceNode
	case yaml.AliasNode:
		n.kind = aliasNode
		n.tag = ""
		return n
	default:
		n.kind = otherNode
		return n
	}
	if len(y.Content) > 0 {
		n.content = make([]*node, len(y.Content))
		for i, c := range y.Content {
			n.content[i] = fromYAML(c)
		}
	}
	return n
}

// intValue decodes an integer scalar (tag !!int) as yaml.v3's Node.Decode into an int
// does. The fast parser gives that tag only to decimal literals of at most 18 digits,
// where strconv.Atoi is the same.
func (n *node) intValue() (int, error) {
	if n.y != nil {
		var v int
		err := n.y.Decode(&v)
		return v, err
	}
	return strconv.Atoi(n.value)
}
