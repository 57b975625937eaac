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
	content []*node
	value   string // a scalar's text
	line    int32  // 1-based line
	kind    nodeKind
	tagID   tagID
	anchor  bool // an anchor (&a) is set on it
	// y is the yaml.v3 node it was converted from, nil from the fast parser: an
	// integer is decoded by yaml.v3 itself then, and an unusual tag read from it.
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

// tagID is a node's tag, as yaml.v3's ShortTag names it, in a byte: a file of 10 000
// peers has 90 000 nodes.
type tagID uint8

const (
	noTag tagID = iota // an alias
	tagStr
	tagInt
	tagNull
	tagBool
	tagFloat
	tagMap
	tagSeq
	tagOther // another tag, which only yaml.v3's nodes have: n.y.ShortTag()
)

var tagNames = [...]string{noTag: "", tagStr: "!!str", tagInt: "!!int", tagNull: "!!null", tagBool: "!!bool",
	tagFloat: "!!float", tagMap: "!!map", tagSeq: "!!seq"}

// tag is yaml.v3's ShortTag of the node: "!!str", "!!int", "!!null", "!!map", ...
func (n *node) tag() string {
	if n.tagID == tagOther {
		return n.y.ShortTag()
	}
	return tagNames[n.tagID]
}

func tagOf(short string) tagID {
	for id, name := range tagNames {
		if name == short && id != int(noTag) {
			return tagID(id)
		}
	}
	return tagOther
}

// fromYAML converts a yaml.v3 tree. An alias is kept as a leaf: the decoder refuses
// aliases and never looks into their target (which may be the alias's own ancestor).
func fromYAML(y *yaml.Node) *node {
	n := &node{anchor: y.Anchor != "", line: int32(y.Line), tagID: tagOf(y.ShortTag()), value: y.Value, y: y}
	switch y.Kind {
	case yaml.ScalarNode:
		n.kind = scalarNode
	case yaml.MappingNode:
		n.kind = mappingNode
	case yaml.SequenceNode:
		n.kind = sequenceNode
	case yaml.AliasNode:
		n.kind = aliasNode
		n.tagID = noTag
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
