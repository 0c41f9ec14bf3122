package diff

import (
	"maps"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// direction says who produces the data a schema describes, which decides
// whether a change narrows what a client may send or widens what it must
// understand.
type direction int

const (
	request  direction = iota // produced by the client (request, published message)
	response                  // produced for the client (response, received message)
)

// maxSchemaDepth bounds how deep into nested properties Compare looks.
// Pairs already compared stop $ref cycles; this stops long chains.
const maxSchemaDepth = 64

// maxAllOf bounds the nesting of allOf merged into one view.
const maxAllOf = 8

// view is a schema with the members of its allOf merged in: what a
// validator would require of one value, as far as breaking changes go.
type view struct {
	at         loc // the schema, $refs followed
	types      map[string]bool
	typeAt     loc
	enum       []string // rendered values; nil without enum
	hasEnum    bool
	enumAt     loc
	required   []string
	isRequired map[string]bool
	requiredAt loc
	props      []string
	propAt     map[string]loc
	items      loc
	closed     bool // additionalProperties: false
}

// view builds the view of the schema at s in t. Each schema is merged once (allOf may repeat or cycle), and the work is
// charged to the budget by size.
// Views are memoized per schema node: a schema shared through $refs is
// compared against many others, but read once.
func (d *differ) view(t *tree, s loc) *view {
	s = t.Follow(s)
	if v, ok := d.views[deref(s.Node)]; ok {
		return v
	}
	v := &view{at: s, types: map[string]bool{}, propAt: map[string]loc{}, isRequired: map[string]bool{}}
	d.views[deref(s.Node)] = v
	seen := map[*yaml.Node]bool{}
	var merge func(s loc, depth int)
	merge = func(s loc, depth int) {
		s = t.Follow(s)
		if !isMap(s.Node) || depth > maxAllOf || seen[deref(s.Node)] || !d.spend(1+len(deref(s.Node).Content)) {
			return
		}
		seen[deref(s.Node)] = true
		if tv := t.At(s, "type"); tv.Valid() && !v.typeAt.Valid() {
			v.typeAt = tv
			if name, ok := str(tv.Node); ok {
				v.types[name] = true
			}
			for _, e := range items(tv.Node) {
				if name, ok := str(e); ok {
					v.types[name] = true
				}
			}
		}
		if ev := t.At(s, "enum"); isSeq(ev.Node) && !v.hasEnum && d.spend(len(items(ev.Node))) {
			v.hasEnum, v.enumAt = true, ev
			for _, e := range items(ev.Node) {
				if r, ok := scalar(e); ok {
					v.enum = append(v.enum, r)
				}
			}
		}
		if rv := t.At(s, "required"); isSeq(rv.Node) && d.spend(len(items(rv.Node))) {
			if !v.requiredAt.Valid() {
				v.requiredAt = rv
			}
			for _, e := range items(rv.Node) {
				if name, ok := str(e); ok && !v.isRequired[name] {
					v.isRequired[name] = true
					v.required = append(v.required, name)
				}
			}
		}
		names, locs := fields(t.At(s, "properties"))
		if !d.spend(len(names)) {
			return
		}
		for i, name := range names {
			if _, dup := v.propAt[name]; !dup {
				v.props = append(v.props, name)
				v.propAt[name] = locs[i]
			}
		}
		if it := t.At(s, "items"); isMap(it.Node) && !v.items.Valid() {
			v.items = it
		}
		if ap := t.At(s, "additionalProperties"); ap.Valid() && isFalse(ap.Node) {
			v.closed = true
		}
		for _, m := range elems(t.At(s, "allOf")) {
			merge(m, depth+1)
		}
	}
	merge(s, 0)
	return v
}

// scalar renders an enum value: strings quoted, so "1" and 1 differ.
func scalar(n *yaml.Node) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", false
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(clip(n.Value)), true
	}
	return clip(n.Value), true
}

func isFalse(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" && n.Value == "false"
}

func isSeq(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.SequenceNode
}

// fieldPath is the path of a property below a schema root, as a linked
// list, so that descending costs nothing until a message needs the text.
type fieldPath struct {
	parent *fieldPath
	name   string // a property name, or "[]" for array items
}

// site is where in an API a schema sits: ctx names the operation and part
// ("POST /trees request body"), field the property below it.
type site struct {
	ctx   string
	field *fieldPath
}

// child returns the site of property name (or "[]", the items) below s.
func (s site) child(name string) site {
	return site{ctx: s.ctx, field: &fieldPath{parent: s.field, name: name}}
}

// String renders s for messages: `ctx: field "a.b[]"`, or ctx alone for
// the root schema.
func (s site) String() string {
	if s.field == nil {
		return s.ctx
	}
	var names []string
	for p := s.field; p != nil; p = p.parent {
		names = append(names, p.name)
	}
	var b strings.Builder
	for i := len(names) - 1; i >= 0; i-- {
		if b.Len() > 0 && names[i] != "[]" {
			b.WriteByte('.')
		}
		b.WriteString(names[i])
	}
	return s.ctx + ": field " + strconv.Quote(clip(b.String()))
}

// schema compares the schemas at o (old) and n (new); ctx names the
// operation and part, for messages.
func (d *differ) schema(o, n loc, dir direction, ctx string, depth int) {
	d.schemaAt(o, n, dir, site{ctx: ctx}, depth)
}

func (d *differ) schemaAt(o, n loc, dir direction, at site, depth int) {
	if !o.Valid() || !n.Valid() || depth > maxSchemaDepth {
		return
	}
	o, n = d.old.Follow(o), d.new.Follow(n)
	if !isMap(o.Node) || !isMap(n.Node) || !d.once(o.Node, n.Node, dir) {
		return
	}
	ov, nv := d.view(d.old, o), d.view(d.new, n)
	if !d.spend(len(ov.props) + len(nv.props) + len(ov.enum) + len(nv.enum) + len(ov.required) + len(nv.required)) {
		return
	}
	d.types(ov, nv, dir, at)
	d.enums(ov, nv, dir, at)
	d.fields(ov, nv, dir, at, depth)
	if ov.items.Valid() && nv.items.Valid() {
		d.schemaAt(ov.items, nv.items, dir, at.child("[]"), depth+1)
	}
}

// covers reports whether a value of any type in sub is also valid under
// sup; no types means any type. A number schema accepts integers.
func covers(sup, sub map[string]bool) bool {
	if len(sup) == 0 {
		return true
	}
	if len(sub) == 0 {
		return false
	}
	for t := range sub {
		if !sup[t] && !(t == "integer" && sup["number"]) {
			return false
		}
	}
	return true
}

func typeNames(ts map[string]bool) string {
	if len(ts) == 0 {
		return "any"
	}
	names := make([]string, 0, len(ts))
	for t := range ts {
		names = append(names, clip(t))
	}
	sort.Strings(names)
	return strings.Join(names, "|")
}

func (d *differ) types(ov, nv *view, dir direction, w site) {
	if maps.Equal(ov.types, nv.types) {
		return
	}
	before, after := typeNames(ov.types), typeNames(nv.types)
	at := nv.typeAt
	if !at.Valid() {
		at = nv.at
	}
	if dir == request {
		if covers(nv.types, ov.types) {
			d.add("type-widened", false, at.Ptr, "%s: type widened from %s to %s", w, before, after)
		} else {
			d.add("type-narrowed", true, at.Ptr, "%s: type changed from %s to %s; values clients send today are refused", w, before, after)
		}
		return
	}
	if covers(ov.types, nv.types) {
		d.add("response-type-narrowed", false, at.Ptr, "%s: type narrowed from %s to %s", w, before, after)
	} else {
		d.add("response-type-changed", true, at.Ptr, "%s: type changed from %s to %s; clients parse the old type", w, before, after)
	}
}

// minus returns the values of a not in b.
func minus(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, v := range b {
		in[v] = true
	}
	var out []string
	for _, v := range a {
		if !in[v] {
			out = append(out, v)
		}
	}
	return out
}

func list(vs []string) string {
	if len(vs) > 10 {
		return strings.Join(vs[:10], ", ") + ", ..."
	}
	return strings.Join(vs, ", ")
}

func (d *differ) enums(ov, nv *view, dir direction, w site) {
	if !ov.hasEnum && !nv.hasEnum {
		return
	}
	at := nv.enumAt
	if !at.Valid() {
		at = nv.at
	}
	removed, added := minus(ov.enum, nv.enum), minus(nv.enum, ov.enum)
	switch {
	case dir == request && !ov.hasEnum:
		d.add("enum-narrowed", true, at.Ptr, "%s: now limited to %s; other values clients send today are refused", w, list(nv.enum))
	case dir == request && !nv.hasEnum:
		d.add("enum-widened", false, at.Ptr, "%s: no longer limited to an enum", w)
	case dir == request:
		if len(removed) > 0 {
			d.add("enum-narrowed", true, at.Ptr, "%s: values %s are no longer accepted", w, list(removed))
		}
		if len(added) > 0 {
			d.add("enum-widened", false, at.Ptr, "%s: values %s were added", w, list(added))
		}
	case !ov.hasEnum:
		d.add("response-enum-narrowed", false, at.Ptr, "%s: now limited to %s", w, list(nv.enum))
	case !nv.hasEnum:
		d.add("response-enum-widened", true, at.Ptr, "%s: no longer limited to %s; clients that switch on the value meet unknown ones", w, list(ov.enum))
	default:
		if len(added) > 0 {
			d.add("response-enum-widened", true, at.Ptr, "%s: may now be %s; clients that switch on the value meet unknown ones", w, list(added))
		}
		if len(removed) > 0 {
			d.add("response-enum-narrowed", false, at.Ptr, "%s: values %s are no longer produced", w, list(removed))
		}
	}
}

// fields compares the properties and required lists of two object schemas
// and recurses into the properties both have.
func (d *differ) fields(ov, nv *view, dir direction, at site, depth int) {
	for _, name := range ov.props {
		if _, ok := nv.propAt[name]; ok {
			continue
		}
		w := at.child(name)
		if dir == response {
			d.add("response-field-removed", true, ov.propAt[name].Ptr, "%s was removed; clients read it", w)
		} else if nv.closed {
			d.add("request-field-removed", true, ov.propAt[name].Ptr, "%s was removed and additional properties are refused; clients still send it", w)
		} else {
			d.add("request-field-removed", false, ov.propAt[name].Ptr, "%s was removed; it is now an ignored additional property", w)
		}
	}
	for _, name := range nv.required {
		if ov.isRequired[name] || dir == response {
			continue
		}
		ptr, ok := nv.propAt[name]
		if !ok {
			ptr = nv.requiredAt
		}
		if _, existed := ov.propAt[name]; existed || !ok {
			d.add("request-field-required-added", true, ptr.Ptr, "%s is now required; clients that omit it are refused", at.child(name))
		} else {
			d.add("request-field-required-added", true, ptr.Ptr, "%s is new and required; existing clients do not send it", at.child(name))
		}
	}
	for _, name := range ov.required {
		if nv.isRequired[name] {
			continue
		}
		ptr, ok := nv.propAt[name]
		if !ok {
			continue // removed: reported above
		}
		if dir == response {
			d.add("response-field-became-optional", true, ptr.Ptr, "%s is no longer always present; clients rely on it", at.child(name))
		} else {
			d.add("request-field-became-optional", false, ptr.Ptr, "%s is no longer required", at.child(name))
		}
	}
	for _, name := range nv.props {
		if _, ok := ov.propAt[name]; ok {
			if depth < maxSchemaDepth {
				d.schemaAt(ov.propAt[name], nv.propAt[name], dir, at.child(name), depth+1)
			}
			continue
		}
		if dir == response {
			d.add("response-field-added", false, nv.propAt[name].Ptr, "%s was added", at.child(name))
		} else if !nv.isRequired[name] {
			d.add("request-field-added", false, nv.propAt[name].Ptr, "%s was added (optional)", at.child(name))
		}
	}
}
