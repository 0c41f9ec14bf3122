package spec

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits of the structural walk. yaml.v3 itself stops at 10,000 levels of
// nesting, but happily builds an alias graph whose expansion is exponential
// in the document size. Every later pass (checks, Bindings, lint rules)
// walks at most what this walk has seen, so these two numbers bound them all;
// passes that also follow $refs bound those themselves (maxRefHops,
// maxOperations, memo sets).
const (
	// maxNodes caps node visits, counting each alias expansion anew: real
	// API descriptions have well under a few hundred thousand nodes.
	maxNodes = 1_000_000
	// maxDepth caps nesting. It also ends self-referential aliases
	// (`&a [*a]`), which yaml.v3 accepts and which would otherwise be an
	// infinite tree.
	maxDepth = 256
	// smallMapping is the size up to which mappings are searched linearly
	// rather than through a map; most mappings in a spec are tiny.
	smallMapping = 16
)

// deref follows an alias to the node it names. yaml.v3 never produces an
// alias of an alias, but hand-built trees might, so the hops are bounded.
func deref(n *yaml.Node) *yaml.Node {
	for hops := 0; n != nil && n.Kind == yaml.AliasNode; hops++ {
		if hops == 8 {
			return nil
		}
		n = n.Alias
	}
	return n
}

// lookup finds key in mapping m and returns the key node and the value,
// aliases followed. k is nil when the key is absent; v can be nil only in a
// hand-built tree. Keys are unique once the walker has passed.
func lookup(m *yaml.Node, key string) (k, v *yaml.Node) {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if kn := deref(m.Content[i]); kn != nil && kn.Kind == yaml.ScalarNode && kn.Value == key {
			return kn, deref(m.Content[i+1])
		}
	}
	return nil, nil
}

// entry is one key/value pair of a mapping, aliases followed.
type entry struct {
	key  string
	k, v *yaml.Node
}

// entries lists the pairs of mapping m in document order. Pairs whose key is
// not a scalar are skipped (the walker refuses them in parsed documents).
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

// stringValue returns the value of n if it is a string scalar. Numbers,
// booleans and nulls are not strings: `version: 1.0` is a float in YAML and
// JSON alike, and tools disagree on how to print it back.
func stringValue(n *yaml.Node) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return "", false
	}
	return n.Value, true
}

// isMapping reports whether n is a mapping, aliases followed.
func isMapping(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.MappingNode
}

var (
	tokenEscaper   = strings.NewReplacer("~", "~0", "/", "~1")
	tokenUnescaper = strings.NewReplacer("~1", "/", "~0", "~")
)

// child appends key to JSON pointer ptr, escaped per RFC 6901.
func child(ptr, key string) string {
	return ptr + "/" + tokenEscaper.Replace(key)
}

// unescapeToken decodes one RFC 6901 reference token; ok is false for a
// "~" not followed by "0" or "1", which the RFC makes an error.
func unescapeToken(t string) (string, bool) {
	if !strings.Contains(t, "~") {
		return t, true
	}
	for i := 0; i < len(t); i++ {
		if t[i] == '~' && (i+1 == len(t) || (t[i+1] != '0' && t[i+1] != '1')) {
			return "", false
		}
	}
	// A single left-to-right pass, so "~01" becomes "~1", not "/".
	return tokenUnescaper.Replace(t), true
}

// walker makes the one pass over every node of a parsed document. It
// enforces the size limits, refuses keys that JSON cannot represent or that
// tools disagree about, and collects $ref sites and $anchor names.
type walker struct {
	nodes   int
	tokens  []string            // pointer tokens to the current node, unescaped
	refs    []*yaml.Node        // $ref values, each once, in document order
	seen    map[*yaml.Node]bool // $ref values already collected, via another alias path
	anchors map[string]bool     // JSON Schema $anchor names, targets of "#name" refs
}

// pointer renders the current position as a JSON pointer. It is only called
// for errors, so the walk itself allocates little.
func (w *walker) pointer() string {
	var b strings.Builder
	for _, t := range w.tokens {
		b.WriteByte('/')
		tokenEscaper.WriteString(&b, t)
	}
	return b.String()
}

// count records one node visit and fails when the budget is spent.
func (w *walker) count(n *yaml.Node) *Error {
	w.nodes++
	if w.nodes > maxNodes {
		return errAt(w.pointer(), n, "document is too large: more than %d nodes, counting each use of a YAML alias", maxNodes)
	}
	return nil
}

// walk visits n, at nesting depth depth, and everything below it. Aliases
// are expanded (and counted) at each use, because that is what every JSON
// view of the document sees.
func (w *walker) walk(n *yaml.Node, depth int) *Error {
	if e := w.count(n); e != nil {
		return e
	}
	if n.Kind == yaml.AliasNode {
		t := deref(n)
		if t == nil {
			return errAt(w.pointer(), n, "YAML alias *%s does not resolve", clip(n.Value))
		}
		n = t
	}
	if depth > maxDepth && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) {
		return errAt(w.pointer(), n, "document nests deeper than %d levels", maxDepth)
	}
	switch n.Kind {
	case yaml.MappingNode:
		return w.mapping(n, depth)
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if c == nil {
				return errAt(w.pointer(), n, "malformed sequence")
			}
			w.tokens = append(w.tokens, strconv.Itoa(i))
			if e := w.walk(c, depth+1); e != nil {
				return e
			}
			w.tokens = w.tokens[:len(w.tokens)-1]
		}
	}
	return nil
}

func (w *walker) mapping(n *yaml.Node, depth int) *Error {
	if len(n.Content)%2 != 0 {
		return errAt(w.pointer(), n, "malformed mapping")
	}
	var keys map[string]bool // only for large mappings
	if len(n.Content)/2 > smallMapping {
		keys = make(map[string]bool, len(n.Content)/2)
	}
	for i := 0; i < len(n.Content); i += 2 {
		raw, v := n.Content[i], n.Content[i+1]
		if raw == nil || v == nil {
			return errAt(w.pointer(), n, "malformed mapping")
		}
		if e := w.count(raw); e != nil {
			return e
		}
		k := deref(raw)
		if k == nil || k.Kind != yaml.ScalarNode {
			return errAt(w.pointer(), raw, "mapping keys must be strings; JSON cannot represent this key")
		}
		if k.ShortTag() == "!!merge" {
			// YAML 1.1 merge keys are not part of YAML 1.2 or JSON, and
			// tools that do not implement them see a different document.
			return errAt(child(w.pointer(), k.Value), raw, "YAML merge keys (<<) are not supported; write the fields out, or quote the key")
		}
		dup := false
		if keys != nil {
			dup = keys[k.Value]
			keys[k.Value] = true
		} else {
			for j := 0; j < i; j += 2 {
				if p := deref(n.Content[j]); p != nil && p.Value == k.Value {
					dup = true
					break
				}
			}
		}
		if dup {
			// Parsers disagree on which duplicate wins; refusing is the only
			// reading everybody shares.
			return errAt(child(w.pointer(), k.Value), raw, "duplicate key %q", clip(k.Value))
		}
		w.tokens = append(w.tokens, k.Value)
		switch k.Value {
		case "$ref":
			// A $ref whose value is not a scalar is a schema property that
			// happens to be named "$ref", not a reference.
			if t := deref(v); t != nil && t.Kind == yaml.ScalarNode && !w.seen[t] {
				if w.seen == nil {
					w.seen = map[*yaml.Node]bool{}
				}
				w.seen[t] = true
				// No pointer is kept: a document can hold hundreds of
				// thousands of $refs, deep down, and their pointers would
				// cost far more memory than the document. pointerTo finds
				// the one that is needed for an error.
				w.refs = append(w.refs, t)
			}
		case "$anchor":
			if s, ok := stringValue(v); ok {
				if w.anchors == nil {
					w.anchors = map[string]bool{}
				}
				w.anchors[s] = true
			}
		}
		if e := w.walk(v, depth+1); e != nil {
			return e
		}
		w.tokens = w.tokens[:len(w.tokens)-1]
	}
	return nil
}

// resolver evaluates JSON pointers against a document. Large mappings are
// indexed on first use, so that many references into one big mapping (say
// /components/schemas) cost linear, not quadratic, time.
type resolver struct {
	root  *yaml.Node
	index map[*yaml.Node]map[string]*yaml.Node
}

func newResolver(root *yaml.Node) *resolver {
	return &resolver{root: root, index: map[*yaml.Node]map[string]*yaml.Node{}}
}

// key returns the value of key in mapping m (aliases followed), or nil if
// there is none or m is not a mapping.
func (r *resolver) key(m *yaml.Node, key string) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	if len(m.Content)/2 <= smallMapping {
		_, v := lookup(m, key)
		return v
	}
	idx, ok := r.index[m]
	if !ok {
		idx = make(map[string]*yaml.Node, len(m.Content)/2)
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := deref(m.Content[i]); k != nil && k.Kind == yaml.ScalarNode {
				if _, dup := idx[k.Value]; !dup {
					idx[k.Value] = deref(m.Content[i+1])
				}
			}
		}
		r.index[m] = idx
	}
	return idx[key]
}

// pointer returns the node at JSON pointer p, or nil if there is none. It
// evaluates the pointer on the document as written: $refs met on the way are
// not followed, as RFC 6901 prescribes, so evaluation cannot loop.
func (r *resolver) pointer(p string) *yaml.Node {
	cur := deref(r.root)
	if p == "" {
		return cur
	}
	if p[0] != '/' {
		return nil
	}
	for p != "" {
		p = p[1:]
		var tok string
		if i := strings.IndexByte(p, '/'); i >= 0 {
			tok, p = p[:i], p[i:]
		} else {
			tok, p = p, ""
		}
		t, ok := unescapeToken(tok)
		if !ok || cur == nil {
			return nil
		}
		switch cur.Kind {
		case yaml.MappingNode:
			cur = deref(r.key(cur, t))
		case yaml.SequenceNode:
			i, ok := arrayIndex(t)
			if !ok || i >= len(cur.Content) {
				return nil
			}
			cur = deref(cur.Content[i])
		default:
			return nil
		}
	}
	return cur
}

// arrayIndex parses an RFC 6901 array index: digits, no leading zeros.
func arrayIndex(t string) (int, bool) {
	if t == "" || len(t) > 9 || (len(t) > 1 && t[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(t)
	return i, err == nil && i >= 0
}

// fragment decodes an internal $ref ("#/a/b~1c", "#name") into its JSON
// pointer or anchor name. ok is false for anything else: references that
// leave the document, and fragments that do not percent-decode.
func fragment(ref string) (frag string, ok bool) {
	if !strings.HasPrefix(ref, "#") {
		return "", false
	}
	// The fragment of a URI reference is percent-encoded (RFC 6901 §6):
	// "#/paths/~1cars~1%7Bid%7D" names the path "/cars/{id}".
	f, err := url.PathUnescape(ref[1:])
	if err != nil {
		return "", false
	}
	return f, true
}

// ref returns the target of an internal $ref to a JSON pointer, with the
// pointer itself, or nil.
func (r *resolver) ref(value string) (*yaml.Node, string) {
	f, ok := fragment(value)
	if !ok || (f != "" && f[0] != '/') {
		return nil, ""
	}
	return r.pointer(f), f
}

// checkRefs checks every $ref the walker found: it must stay inside the
// document and resolve there. External references are refused without being
// looked at further; resolving them would mean fetching URLs or files of the
// author's choosing.
func checkRefs(w *walker, r *resolver) *Error {
	for _, n := range w.refs {
		v := n.Value
		if !strings.HasPrefix(v, "#") {
			return errAt(pointerTo(r.root, n), n, "external $ref not allowed: %q; only references within the document (\"#/...\") are accepted", clip(v))
		}
		f, ok := fragment(v)
		if !ok {
			return errAt(pointerTo(r.root, n), n, "invalid $ref %q: bad percent-encoding", clip(v))
		}
		if f != "" && f[0] != '/' {
			if !w.anchors[f] {
				return errAt(pointerTo(r.root, n), n, "$ref %q does not resolve: no $anchor %q in the document", clip(v), clip(f))
			}
			continue
		}
		if r.pointer(f) == nil {
			return errAt(pointerTo(r.root, n), n, "$ref %q does not resolve within the document", clip(v))
		}
	}
	return nil
}

// pointerTo returns the JSON pointer of the first $ref, in document order,
// whose value is the node target. It walks the tree again, which the walker
// has already bounded in size and depth.
func pointerTo(root, target *yaml.Node) string {
	var tokens []string
	var find func(n *yaml.Node, depth int) bool
	find = func(n *yaml.Node, depth int) bool {
		n = deref(n)
		if n == nil || depth > maxDepth {
			return false
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := deref(n.Content[i])
				if k == nil {
					continue
				}
				tokens = append(tokens, k.Value)
				if k.Value == "$ref" && deref(n.Content[i+1]) == target {
					return true
				}
				if find(n.Content[i+1], depth+1) {
					return true
				}
				tokens = tokens[:len(tokens)-1]
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				tokens = append(tokens, strconv.Itoa(i))
				if find(c, depth+1) {
					return true
				}
				tokens = tokens[:len(tokens)-1]
			}
		}
		return false
	}
	find(root, 0)
	w := walker{tokens: tokens}
	return w.pointer()
}

// followRefs follows a chain of internal $refs from n (a mapping that may be
// a Reference Object) and calls visit on n and on each target, stopping at a
// cycle, a dead end, or after maxRefHops refs (as the checks do); it never
// loops. Path items, channels and operations can be references.
func followRefs(r *resolver, n *yaml.Node, visit func(n *yaml.Node)) {
	var seen [maxRefHops + 1]*yaml.Node // no map: this runs once per path
	for hops := 0; hops <= maxRefHops; hops++ {
		n = deref(n)
		if n == nil || n.Kind != yaml.MappingNode || slices.Contains(seen[:hops], n) {
			return
		}
		seen[hops] = n
		visit(n)
		// r.key, not lookup: a target shared by many referrers may be a
		// huge mapping, and must not be scanned once per referrer.
		s, ok := stringValue(r.key(n, "$ref"))
		if !ok {
			return
		}
		n, _ = r.ref(s)
	}
}

// templateProblem describes what is wrong with the {name} placeholders of a
// path or channel template, or returns "" when they are fine. Routers split
// templates on braces, so unbalanced or empty ones would not route as the
// author meant.
func templateProblem(s string) string {
	open := -1
	var names map[string]bool
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			if open >= 0 {
				return "\"{\" inside a parameter (braces do not nest)"
			}
			open = i
		case '}':
			if open < 0 {
				return "\"}\" without a matching \"{\""
			}
			name := s[open+1 : i]
			if name == "" {
				return "empty parameter name \"{}\""
			}
			if names == nil {
				names = map[string]bool{}
			}
			if names[name] {
				return "parameter {" + clip(name) + "} appears twice"
			}
			names[name] = true
			open = -1
		}
	}
	if open >= 0 {
		return "\"{\" without a matching \"}\""
	}
	return ""
}

// templateNames lists the {name} placeholders of a well-formed template.
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
