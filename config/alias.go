package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// maxAliasNodes bounds the nodes a file's aliases may add once expanded.
// Anchors in a configuration share a block of defaults (<<: *defaults) or
// settings several receivers repeat, which adds hundreds of nodes; an alias
// bomb ("billion laughs": nine anchors of ten aliases each) adds 10^9 from a
// few hundred bytes, and everything that reads the file (the key-path walk,
// the decode, the route tree) would pay for each one. yaml.v3 refuses
// excessive aliasing only inside its decode and by the ratio of aliases to
// nodes decoded, which a deep bomb stays under.
const maxAliasNodes = 100_000

// checkAliases refuses a file whose aliases would expand it by more than
// maxAliasNodes nodes, and an alias inside the value it refers to (which
// yaml.v3 finds only while decoding, and which is infinitely deep), before
// anything expands an alias. It goes through the file once, in document
// order, and counts each anchor's expanded size once, so its own work is
// linear in the file's size whatever the aliases say. The error names the
// key path and line of the alias at which the budget runs out.
func checkAliases(root *yaml.Node) *Error {
	a := aliasCount{size: map[*yaml.Node]int{}, open: map[*yaml.Node]bool{}}
	return a.visit(root, "")
}

type aliasCount struct {
	added int                // nodes the aliases seen so far add
	size  map[*yaml.Node]int // a node's expanded size, at most maxAliasNodes+1
	open  map[*yaml.Node]bool
	cycle *yaml.Node // an alias found inside the value it refers to
}

// visit goes through the file as written, without following aliases.
func (a *aliasCount) visit(n *yaml.Node, path string) *Error {
	switch n.Kind {
	case yaml.AliasNode:
		s := a.expanded(n)
		if a.cycle != nil {
			return &Error{Path: path, Line: a.cycle.Line, Msg: fmt.Sprintf("alias *%s is inside the value it refers to", a.cycle.Value)}
		}
		// The alias node itself is part of the file as written.
		if a.added += s - 1; a.added > maxAliasNodes {
			return &Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("alias *%s expands the file past the %d nodes aliases may add", n.Value, maxAliasNodes)}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if e := a.visit(k, path); e != nil {
				return e
			}
			if e := a.visit(v, join(path, k.Value)); e != nil {
				return e
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if e := a.visit(c, fmt.Sprintf("%s[%d]", path, i)); e != nil {
				return e
			}
		}
	default:
		for _, c := range n.Content {
			if e := a.visit(c, path); e != nil {
				return e
			}
		}
	}
	return nil
}

// expanded is the number of nodes n stands for once its aliases are
// expanded, counted once per node and capped just past the budget so that no
// sum can overflow. A node reached again while it is being counted closes a
// cycle: the alias that led back to it is recorded.
func (a *aliasCount) expanded(n *yaml.Node) int {
	const over = maxAliasNodes + 1
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if a.open[n.Alias] {
			a.cycle = n
			return over
		}
		n = n.Alias
	}
	if s, ok := a.size[n]; ok {
		return s
	}
	a.open[n] = true
	s := 1
	for _, c := range n.Content {
		if s = min(s+a.expanded(c), over); a.cycle != nil {
			break
		}
	}
	delete(a.open, n)
	a.size[n] = s
	return s
}
