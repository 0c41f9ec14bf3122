package yamlx

import (
	"net/url"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file holds read-only helpers over the yaml.Node Tree of a parsed
// spec.Document. spec.Parse has already bounded the Tree (node visits with
// aliases expanded, nesting depth) and checked that every $ref is internal
// and resolves; the helpers still tolerate anything, so that Lint cannot
// panic on a Document it was not meant to see.

// MaxRefHops bounds chains of Reference Objects, as spec.Parse does.
const MaxRefHops = 16

// smallMapping is the size up to which mappings are searched linearly;
// larger ones are indexed on first use so that many lookups into one huge
// mapping (a hostile /paths or /components/schemas) stay linear overall.
const smallMapping = 16

// Deref follows YAML aliases to the node they name.
func Deref(n *yaml.Node) *yaml.Node {
	for hops := 0; n != nil && n.Kind == yaml.AliasNode; hops++ {
		if hops == 8 {
			return nil
		}
		n = n.Alias
	}
	return n
}

// Entry is one pair of a mapping, aliases followed.
type Entry struct {
	Key  string
	K, V *yaml.Node
}

// Entries lists the pairs of mapping m in document order.
func Entries(m *yaml.Node) []Entry {
	m = Deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]Entry, 0, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := Deref(m.Content[i]), Deref(m.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode || v == nil {
			continue
		}
		out = append(out, Entry{Key: k.Value, K: k, V: v})
	}
	return out
}

// Items returns the elements of sequence n, or nil.
func Items(n *yaml.Node) []*yaml.Node {
	n = Deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

// Str returns the value of n if it is a string scalar.
func Str(n *yaml.Node) (string, bool) {
	n = Deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return "", false
	}
	return n.Value, true
}

// IsMap reports whether n is a mapping.
func IsMap(n *yaml.Node) bool {
	n = Deref(n)
	return n != nil && n.Kind == yaml.MappingNode
}

// IsTrue reports whether n is the boolean true.
func IsTrue(n *yaml.Node) bool {
	n = Deref(n)
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" && n.Value == "true"
}

var tokenEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// Child appends key to JSON pointer ptr, escaped per RFC 6901.
func Child(ptr, key string) string { return ptr + "/" + tokenEscaper.Replace(key) }

// Loc is a node with the JSON pointer and the node that positions it: the
// mapping key when it has one (the line authors look for), else the node.
type Loc struct {
	Ptr  string
	Pos  *yaml.Node
	Node *yaml.Node
}

// valid reports whether l names a node.
func (l Loc) Valid() bool { return l.Node != nil }

// line and column of l, 0 when unknown.
func (l Loc) Line() (int, int) {
	n := l.Pos
	if n == nil {
		n = l.Node
	}
	if n == nil {
		return 0, 0
	}
	return n.Line, n.Column
}

// Tree answers lookups and internal $refs over one document.
type Tree struct {
	Root  *yaml.Node
	index map[*yaml.Node]map[string]int // large mapping -> key -> index of the key in Content
	refs  map[string]Loc                // memo of resolved $ref strings
}

func NewTree(root *yaml.Node) *Tree {
	return &Tree{Root: Deref(root), index: map[*yaml.Node]map[string]int{}, refs: map[string]Loc{}}
}

// get returns the key and value nodes of key in mapping m.
func (t *Tree) Get(m *yaml.Node, key string) (k, v *yaml.Node) {
	m = Deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	if len(m.Content)/2 <= smallMapping {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if kn := Deref(m.Content[i]); kn != nil && kn.Kind == yaml.ScalarNode && kn.Value == key {
				return kn, Deref(m.Content[i+1])
			}
		}
		return nil, nil
	}
	idx, ok := t.index[m]
	if !ok {
		idx = make(map[string]int, len(m.Content)/2)
		for i := 0; i+1 < len(m.Content); i += 2 {
			if kn := Deref(m.Content[i]); kn != nil && kn.Kind == yaml.ScalarNode {
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
	return Deref(m.Content[i]), Deref(m.Content[i+1])
}

// val returns the value of key in mapping m, or nil.
func (t *Tree) Val(m *yaml.Node, key string) *yaml.Node {
	_, v := t.Get(m, key)
	return v
}

// at returns the location of key below l; invalid when absent.
func (t *Tree) At(l Loc, key string) Loc {
	k, v := t.Get(l.Node, key)
	if k == nil || v == nil {
		return Loc{}
	}
	return Loc{Ptr: Child(l.Ptr, key), Pos: k, Node: v}
}

// Elems lists the elements of the sequence at l as locations.
func Elems(l Loc) []Loc {
	var out []Loc
	for i, n := range Items(l.Node) {
		if n = Deref(n); n != nil {
			out = append(out, Loc{Ptr: l.Ptr + "/" + strconv.Itoa(i), Node: n})
		}
	}
	return out
}

// Fields lists the pairs of the mapping at l as locations, with their keys.
func Fields(l Loc) ([]string, []Loc) {
	es := Entries(l.Node)
	keys, out := make([]string, len(es)), make([]Loc, len(es))
	for i, e := range es {
		keys[i], out[i] = e.Key, Loc{Ptr: Child(l.Ptr, e.Key), Pos: e.K, Node: e.V}
	}
	return keys, out
}

// resolve evaluates an internal $ref ("#/a/b"). References to $anchor
// names and anything else that does not resolve give an invalid Loc.
func (t *Tree) Resolve(ref string) Loc {
	if l, ok := t.refs[ref]; ok {
		return l
	}
	l := t.ResolvePointer(ref)
	t.refs[ref] = l
	return l
}

func (t *Tree) ResolvePointer(ref string) Loc {
	if !strings.HasPrefix(ref, "#") {
		return Loc{}
	}
	p, err := url.PathUnescape(ref[1:])
	if err != nil {
		return Loc{}
	}
	if p == "" {
		return Loc{Node: t.Root}
	}
	if p[0] != '/' {
		return Loc{}
	}
	cur := Loc{Node: t.Root}
	for _, tok := range strings.Split(p[1:], "/") {
		key := strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := Deref(cur.Node); {
		case n == nil:
			return Loc{}
		case n.Kind == yaml.MappingNode:
			k, v := t.Get(n, key)
			if k == nil || v == nil {
				return Loc{}
			}
			cur = Loc{Ptr: cur.Ptr + "/" + tok, Pos: k, Node: v}
		case n.Kind == yaml.SequenceNode:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n.Content) || Deref(n.Content[i]) == nil {
				return Loc{}
			}
			cur = Loc{Ptr: cur.Ptr + "/" + tok, Node: Deref(n.Content[i])}
		default:
			return Loc{}
		}
	}
	return cur
}

// follow returns the object a Reference Object at l stands for, following
// a chain of $refs; l itself when it is not a reference. A cycle or a dead
// end gives the last object reached, so callers always get something to
// look at and never loop.
func (t *Tree) Follow(l Loc) Loc {
	for hops := 0; hops < MaxRefHops; hops++ {
		ref, ok := Str(t.Val(l.Node, "$ref"))
		if !ok {
			return l
		}
		next := t.Resolve(ref)
		if !next.Valid() || next.Node == Deref(l.Node) {
			return l
		}
		l = next
	}
	return l
}

// TemplateNames lists the {name} placeholders of a path or channel template.
func TemplateNames(s string) []string {
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

// ExpandTemplate replaces each {name} of s with vals[name].
func ExpandTemplate(s string, vals map[string]string) string {
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
