package lint

import (
	"net/url"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file holds read-only helpers over the yaml.Node tree of a parsed
// spec.Document. spec.Parse has already bounded the tree (node visits with
// aliases expanded, nesting depth) and checked that every $ref is internal
// and resolves; the helpers still tolerate anything, so that Lint cannot
// panic on a Document it was not meant to see.

// maxRefHops bounds chains of Reference Objects, as spec.Parse does.
const maxRefHops = 16

// smallMapping is the size up to which mappings are searched linearly;
// larger ones are indexed on first use so that many lookups into one huge
// mapping (a hostile /paths or /components/schemas) stay linear overall.
const smallMapping = 16

// deref follows YAML aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for hops := 0; n != nil && n.Kind == yaml.AliasNode; hops++ {
		if hops == 8 {
			return nil
		}
		n = n.Alias
	}
	return n
}

// entry is one pair of a mapping, aliases followed.
type entry struct {
	key  string
	k, v *yaml.Node
}

// entries lists the pairs of mapping m in document order.
func entries(m *yaml.Node) []entry {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]entry, 0, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := deref(m.Content[i]), deref(m.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode || v == nil {
			continue
		}
		out = append(out, entry{key: k.Value, k: k, v: v})
	}
	return out
}

// items returns the elements of sequence n, or nil.
func items(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

// str returns the value of n if it is a string scalar.
func str(n *yaml.Node) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return "", false
	}
	return n.Value, true
}

// isMap reports whether n is a mapping.
func isMap(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.MappingNode
}

// isTrue reports whether n is the boolean true.
func isTrue(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" && n.Value == "true"
}

var tokenEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// child appends key to JSON pointer ptr, escaped per RFC 6901.
func child(ptr, key string) string { return ptr + "/" + tokenEscaper.Replace(key) }

// loc is a node with the JSON pointer and the node that positions it: the
// mapping key when it has one (the line authors look for), else the node.
type loc struct {
	ptr  string
	pos  *yaml.Node
	node *yaml.Node
}

// valid reports whether l names a node.
func (l loc) valid() bool { return l.node != nil }

// line and column of l, 0 when unknown.
func (l loc) line() (int, int) {
	n := l.pos
	if n == nil {
		n = l.node
	}
	if n == nil {
		return 0, 0
	}
	return n.Line, n.Column
}

// tree answers lookups and internal $refs over one document.
type tree struct {
	root  *yaml.Node
	index map[*yaml.Node]map[string]int // large mapping -> key -> index of the key in Content
	refs  map[string]loc                // memo of resolved $ref strings
}

func newTree(root *yaml.Node) *tree {
	return &tree{root: deref(root), index: map[*yaml.Node]map[string]int{}, refs: map[string]loc{}}
}

// get returns the key and value nodes of key in mapping m.
func (t *tree) get(m *yaml.Node, key string) (k, v *yaml.Node) {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	if len(m.Content)/2 <= smallMapping {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if kn := deref(m.Content[i]); kn != nil && kn.Kind == yaml.ScalarNode && kn.Value == key {
				return kn, deref(m.Content[i+1])
			}
		}
		return nil, nil
	}
	idx, ok := t.index[m]
	if !ok {
		idx = make(map[string]int, len(m.Content)/2)
		for i := 0; i+1 < len(m.Content); i += 2 {
			if kn := deref(m.Content[i]); kn != nil && kn.Kind == yaml.ScalarNode {
				if _, dup := idx[kn.Value]; !dup {
					idx[kn.Value] = i
				}
			}
		}
		t.index[m] = idx
	}
	i, ok := idx[key]
	if !ok {
		return nil, nil
	}
	return deref(m.Content[i]), deref(m.Content[i+1])
}

// val returns the value of key in mapping m, or nil.
func (t *tree) val(m *yaml.Node, key string) *yaml.Node {
	_, v := t.get(m, key)
	return v
}

// at returns the location of key below l; invalid when absent.
func (t *tree) at(l loc, key string) loc {
	k, v := t.get(l.node, key)
	if k == nil || v == nil {
		return loc{}
	}
	return loc{ptr: child(l.ptr, key), pos: k, node: v}
}

// elems lists the elements of the sequence at l as locations.
func elems(l loc) []loc {
	var out []loc
	for i, n := range items(l.node) {
		if n = deref(n); n != nil {
			out = append(out, loc{ptr: l.ptr + "/" + strconv.Itoa(i), node: n})
		}
	}
	return out
}

// fields lists the pairs of the mapping at l as locations, with their keys.
func fields(l loc) ([]string, []loc) {
	es := entries(l.node)
	keys, out := make([]string, len(es)), make([]loc, len(es))
	for i, e := range es {
		keys[i], out[i] = e.key, loc{ptr: child(l.ptr, e.key), pos: e.k, node: e.v}
	}
	return keys, out
}

// resolve evaluates an internal $ref ("#/a/b"). References to $anchor
// names and anything else that does not resolve give an invalid loc.
func (t *tree) resolve(ref string) loc {
	if l, ok := t.refs[ref]; ok {
		return l
	}
	l := t.resolvePointer(ref)
	t.refs[ref] = l
	return l
}

func (t *tree) resolvePointer(ref string) loc {
	if !strings.HasPrefix(ref, "#") {
		return loc{}
	}
	p, err := url.PathUnescape(ref[1:])
	if err != nil {
		return loc{}
	}
	if p == "" {
		return loc{node: t.root}
	}
	if p[0] != '/' {
		return loc{}
	}
	cur := loc{node: t.root}
	for _, tok := range strings.Split(p[1:], "/") {
		key := strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := deref(cur.node); {
		case n == nil:
			return loc{}
		case n.Kind == yaml.MappingNode:
			k, v := t.get(n, key)
			if k == nil || v == nil {
				return loc{}
			}
			cur = loc{ptr: cur.ptr + "/" + tok, pos: k, node: v}
		case n.Kind == yaml.SequenceNode:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n.Content) || deref(n.Content[i]) == nil {
				return loc{}
			}
			cur = loc{ptr: cur.ptr + "/" + tok, node: deref(n.Content[i])}
		default:
			return loc{}
		}
	}
	return cur
}

// follow returns the object a Reference Object at l stands for, following
// a chain of $refs; l itself when it is not a reference. A cycle or a dead
// end gives the last object reached, so callers always get something to
// look at and never loop.
func (t *tree) follow(l loc) loc {
	for hops := 0; hops < maxRefHops; hops++ {
		ref, ok := str(t.val(l.node, "$ref"))
		if !ok {
			return l
		}
		next := t.resolve(ref)
		if !next.valid() || next.node == deref(l.node) {
			return l
		}
		l = next
	}
	return l
}

// templateNames lists the {name} placeholders of a path or channel template.
func templateNames(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, s[i+1:i+j])
		s = s[i+j+1:]
	}
}

// expandTemplate replaces each {name} of s with vals[name].
func expandTemplate(s string, vals map[string]string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(s[:i])
		b.WriteString(vals[s[i+1:i+j]])
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}
