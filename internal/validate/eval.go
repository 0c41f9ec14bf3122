package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	jskind "github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// maxEvalDepth bounds schema applications nested at one time. Instance depth
// is already capped by maxDepth; this catches schemas that recurse without
// consuming the instance ({"$ref": "#"}), which would otherwise never end.
const maxEvalDepth = 2048

// pathElem is one step of the instance location. Indices are kept as ints
// and only rendered when an error is reported, so descending allocates
// nothing.
type pathElem struct {
	key string
	idx int // -1 for a member name
}

// evaluator applies progs to the nodes of one doc. It is single-use per
// Validate call and pooled with its doc.
type evaluator struct {
	d      *doc
	prefix string // the request part: "/body", "/query/limit"...
	path   []pathElem
	quiet  int // > 0 inside anyOf/oneOf/not/if/contains: failures are expected
	depth  int
	budget int // remaining schema applications
	q      Error
}

func (ev *evaluator) reset(d *doc, prefix string) {
	ev.d, ev.prefix, ev.path, ev.quiet, ev.depth = d, prefix, ev.path[:0], 0, 0
	// Every node is normally checked by a few schemas; the budget is
	// generous for that and still bounds pathological anyOf/oneOf nesting.
	ev.budget = 64*(len(d.nodes)+1) + 4096
}

// fail reports a failure. In quiet mode it returns a shared placeholder and
// formats nothing, because the caller only wants to know that it failed.
func (ev *evaluator) fail(keyword, format string, args ...any) *Error {
	if ev.quiet > 0 {
		return &ev.q
	}
	return &Error{Pointer: ev.pointer(), Keyword: keyword, Detail: fmt.Sprintf(format, args...)}
}

func (ev *evaluator) pointer() string {
	var b strings.Builder
	b.WriteString(ev.prefix)
	for _, e := range ev.path {
		b.WriteByte('/')
		if e.idx >= 0 {
			b.WriteString(strconv.Itoa(e.idx))
		} else {
			b.WriteString(escapeToken(e.key))
		}
	}
	return b.String()
}

func (ev *evaluator) push(key string, idx int) { ev.path = append(ev.path, pathElem{key, idx}) }
func (ev *evaluator) pop()                     { ev.path = ev.path[:len(ev.path)-1] }

// check evaluates p in quiet mode and reports whether n is valid.
func (ev *evaluator) check(p *prog, n *node) bool {
	ev.quiet++
	err := ev.eval(p, n)
	ev.quiet--
	return err == nil
}

func (ev *evaluator) eval(p *prog, n *node) *Error {
	ev.budget--
	if ev.budget < 0 || ev.depth >= maxEvalDepth {
		return ev.fail("complexity", "validation exceeded its work limit (recursive schema?)")
	}
	ev.depth++
	err := ev.apply(p, n)
	ev.depth--
	return err
}

func (ev *evaluator) apply(p *prog, n *node) *Error {
	switch {
	case p.library:
		return ev.viaLibrary(p, n)
	case p.falseSchema:
		return ev.fail("false", "no value is allowed here")
	case p.legacyRef && p.ref != nil:
		return ev.eval(p.ref, n)
	}
	if p.types != 0 && !hasType(p.types, n) {
		if ev.quiet > 0 {
			return &ev.q
		}
		return ev.fail("type", "got %s, want %s", typeName(n), typeList(p.types))
	}
	if p.constV != nil && !equal(ev.d, n, p.consts, p.constV) {
		return ev.fail("const", "value differs from the constant")
	}
	if p.enum != nil && !ev.inEnum(p, n) {
		return ev.fail("enum", "value is not one of the %d allowed values", len(p.enum))
	}
	if p.format != nil {
		if err := ev.checkFormat(p, n); err != nil {
			return err
		}
	}
	if p.ref != nil {
		if err := ev.eval(p.ref, n); err != nil {
			return err
		}
	}
	var err *Error
	switch n.kind {
	case kObject:
		err = ev.object(p, n)
	case kArray:
		err = ev.array(p, n)
	case kString:
		err = ev.string(p, n)
	case kNumber:
		err = ev.number(p, n)
	}
	if err != nil {
		return err
	}
	return ev.applicators(p, n)
}

func (ev *evaluator) applicators(p *prog, n *node) *Error {
	for _, s := range p.allOf {
		if err := ev.eval(s, n); err != nil {
			return err
		}
	}
	if len(p.anyOf) > 0 {
		ok := false
		for _, s := range p.anyOf {
			if ev.check(s, n) {
				ok = true
				break
			}
		}
		if !ok {
			return ev.fail("anyOf", "value matches none of the %d alternatives", len(p.anyOf))
		}
	}
	if len(p.oneOf) > 0 {
		first := -1
		for i, s := range p.oneOf {
			if !ev.check(s, n) {
				continue
			}
			if first >= 0 {
				return ev.fail("oneOf", "value matches alternatives %d and %d, want exactly one", first, i)
			}
			first = i
		}
		if first < 0 {
			return ev.fail("oneOf", "value matches none of the %d alternatives", len(p.oneOf))
		}
	}
	if p.not != nil && ev.check(p.not, n) {
		return ev.fail("not", "value must not match the schema under \"not\"")
	}
	if p.ifS != nil {
		branch := p.els
		if ev.check(p.ifS, n) {
			branch = p.thenS
		}
		if branch != nil {
			return ev.eval(branch, n)
		}
	}
	return nil
}

func (ev *evaluator) inEnum(p *prog, n *node) bool {
	for i := range p.enum {
		if equal(ev.d, n, p.consts, &p.enum[i]) {
			return true
		}
	}
	return false
}

// checkFormat hands the value to the library's format checker; only
// formatted values pay for the boxing.
func (ev *evaluator) checkFormat(p *prog, n *node) *Error {
	var err error
	switch {
	case n.kind == kString && p.native.str != nil:
		err = p.native.str(n.str)
	case n.kind == kNumber && p.native.num != nil:
		err = p.native.num(n.str)
	case p.native.str != nil || p.native.num != nil:
		return nil // a native format that does not apply to this type
	default:
		err = ev.libraryFormat(p, n)
	}
	if err != nil {
		return ev.fail("format", "not a valid %s: %v", p.format.Name, err)
	}
	return nil
}

func (ev *evaluator) libraryFormat(p *prog, n *node) error {
	var v any
	switch n.kind {
	case kString:
		v = n.str
	case kNumber:
		v = json.Number(n.str)
	default:
		return nil
	}
	return p.format.Validate(v)
}

func (ev *evaluator) object(p *prog, n *node) *Error {
	members := ev.d.children(n)
	if p.minProps >= 0 && len(members) < p.minProps {
		return ev.fail("minProperties", "%d properties, want at least %d", len(members), p.minProps)
	}
	if p.maxProps >= 0 && len(members) > p.maxProps {
		return ev.fail("maxProperties", "%d properties, want at most %d", len(members), p.maxProps)
	}
	for _, r := range p.required {
		if member(members, r) == nil {
			ev.push(r, -1)
			err := ev.fail("required", "required property is missing")
			ev.pop()
			return err
		}
	}
	for _, dr := range p.depRequired {
		if member(members, dr.name) == nil {
			continue
		}
		for _, r := range dr.required {
			if member(members, r) == nil {
				ev.push(r, -1)
				err := ev.fail("dependentRequired", "required when %q is present", dr.name)
				ev.pop()
				return err
			}
		}
	}
	for i := range members {
		m := &members[i]
		ev.push(m.key, -1)
		err := ev.member(p, m)
		ev.pop()
		if err != nil {
			return err
		}
	}
	for _, ds := range p.depSchemas {
		if member(members, ds.name) != nil {
			if err := ev.eval(ds.p, n); err != nil {
				return err
			}
		}
	}
	return nil
}

func (ev *evaluator) member(p *prog, m *node) *Error {
	if p.propertyNames != nil {
		name := node{kind: kString, str: m.key}
		if err := ev.eval(p.propertyNames, &name); err != nil {
			return err
		}
	}
	matched := false
	if ps, ok := p.props[m.key]; ok {
		matched = true
		if err := ev.eval(ps, m); err != nil {
			return err
		}
	}
	for _, pp := range p.patternProps {
		if pp.re.MatchString(m.key) {
			matched = true
			if err := ev.eval(pp.p, m); err != nil {
				return err
			}
		}
	}
	if !matched && p.additional != nil {
		if p.additional.falseSchema {
			return ev.fail("additionalProperties", "property is not allowed")
		}
		return ev.eval(p.additional, m)
	}
	return nil
}

func member(members []node, name string) *node {
	for i := range members {
		if members[i].key == name {
			return &members[i]
		}
	}
	return nil
}

func (ev *evaluator) array(p *prog, n *node) *Error {
	items := ev.d.children(n)
	if p.minItems >= 0 && len(items) < p.minItems {
		return ev.fail("minItems", "%d items, want at least %d", len(items), p.minItems)
	}
	if p.maxItems >= 0 && len(items) > p.maxItems {
		return ev.fail("maxItems", "%d items, want at most %d", len(items), p.maxItems)
	}
	for i := range items {
		s := p.items
		if i < len(p.prefixItems) {
			s = p.prefixItems[i]
		}
		if s == nil {
			continue
		}
		ev.push("", i)
		var err *Error
		if s.falseSchema {
			err = ev.fail(p.itemsKeyword, "no item is allowed at this index")
		} else {
			err = ev.eval(s, &items[i])
		}
		ev.pop()
		if err != nil {
			return err
		}
	}
	if p.unique {
		if i, j := duplicate(ev.d, items); j >= 0 {
			ev.push("", j)
			err := ev.fail("uniqueItems", "item equals item %d", i)
			ev.pop()
			return err
		}
	}
	if p.contains != nil {
		count := 0
		for i := range items {
			if ev.check(p.contains, &items[i]) {
				count++
			}
		}
		if count < p.minContains {
			return ev.fail("contains", "%d items match \"contains\", want at least %d", count, p.minContains)
		}
		if p.maxContains >= 0 && count > p.maxContains {
			return ev.fail("maxContains", "%d items match \"contains\", want at most %d", count, p.maxContains)
		}
	}
	return nil
}

func (ev *evaluator) string(p *prog, n *node) *Error {
	if p.minLen >= 0 || p.maxLen >= 0 {
		l := utf8.RuneCountInString(n.str)
		if p.minLen >= 0 && l < p.minLen {
			return ev.fail("minLength", "length %d, want at least %d", l, p.minLen)
		}
		if p.maxLen >= 0 && l > p.maxLen {
			return ev.fail("maxLength", "length %d, want at most %d", l, p.maxLen)
		}
	}
	if p.pattern != nil && !p.pattern.MatchString(n.str) {
		return ev.fail("pattern", "does not match %s", p.pattern)
	}
	return nil
}

func (ev *evaluator) number(p *prog, n *node) *Error {
	if p.minimum == nil && p.maximum == nil && p.exclusiveMinimum == nil && p.exclusiveMaximum == nil && p.multipleOf == nil {
		return nil
	}
	lit := n.str
	f := parseNumber(lit)
	if b := p.minimum; b != nil && cmpFloat(f, lit, b) < 0 {
		return ev.fail("minimum", "%s is less than %s", lit, b.rat.RatString())
	}
	if b := p.maximum; b != nil && cmpFloat(f, lit, b) > 0 {
		return ev.fail("maximum", "%s is greater than %s", lit, b.rat.RatString())
	}
	if b := p.exclusiveMinimum; b != nil && cmpFloat(f, lit, b) <= 0 {
		return ev.fail("exclusiveMinimum", "%s is not greater than %s", lit, b.rat.RatString())
	}
	if b := p.exclusiveMaximum; b != nil && cmpFloat(f, lit, b) >= 0 {
		return ev.fail("exclusiveMaximum", "%s is not less than %s", lit, b.rat.RatString())
	}
	if b := p.multipleOf; b != nil && !multipleOf(lit, b) {
		return ev.fail("multipleOf", "%s is not a multiple of %s", lit, b.rat.RatString())
	}
	return nil
}

func hasType(ts typeSet, n *node) bool {
	switch n.kind {
	case kNull:
		return ts&tNull != 0
	case kTrue, kFalse:
		return ts&tBoolean != 0
	case kString:
		return ts&tString != 0
	case kArray:
		return ts&tArray != 0
	case kObject:
		return ts&tObject != 0
	default:
		return ts&tNumber != 0 || (ts&tInteger != 0 && isInteger(n.str))
	}
}

func typeName(n *node) string {
	switch n.kind {
	case kNull:
		return "null"
	case kTrue, kFalse:
		return "boolean"
	case kString:
		return "string"
	case kArray:
		return "array"
	case kObject:
		return "object"
	}
	if isInteger(n.str) {
		return "integer"
	}
	return "number"
}

func typeList(ts typeSet) string {
	var names []string
	for _, name := range []string{"null", "boolean", "number", "integer", "string", "array", "object"} {
		if ts&typeNames[name] != 0 {
			names = append(names, name)
		}
	}
	return strings.Join(names, " or ")
}

// viaLibrary evaluates a schema the evaluator does not implement itself
// (unevaluated*, $dynamicRef, vocabularies) with the jsonschema library.
// The node is converted to the library's value model first, which costs
// allocations; documents rarely need it.
func (ev *evaluator) viaLibrary(p *prog, n *node) *Error {
	err := p.src.Validate(toAny(ev.d, n))
	if err == nil {
		return nil
	}
	if ev.quiet > 0 {
		return &ev.q
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return ev.fail("schema", "%v", err)
	}
	// Descend to the first leaf, but stop at anyOf/oneOf: below them the
	// failures of every alternative are listed, and none is "the" error. A
	// leaf without a keyword (a false subschema) is named after the keyword
	// that applied it, e.g. unevaluatedProperties.
	kw := "schema"
	for {
		if path := ve.ErrorKind.KeywordPath(); len(path) > 0 {
			kw = path[len(path)-1]
		} else if k := keywordOf(ve.SchemaURL); k != "" {
			kw = k
		}
		if len(ve.Causes) == 0 {
			break
		}
		if _, ok := ve.ErrorKind.(*jskind.AnyOf); ok {
			break
		}
		if _, ok := ve.ErrorKind.(*jskind.OneOf); ok {
			break
		}
		ve = ve.Causes[0]
	}
	base := ev.pointer()
	var b strings.Builder
	b.WriteString(base)
	for _, tok := range ve.InstanceLocation {
		b.WriteByte('/')
		b.WriteString(escapeToken(tok))
	}
	return &Error{Pointer: b.String(), Keyword: kw,
		Detail: ve.ErrorKind.LocalizedString(message.NewPrinter(language.English))}
}

// keywordOf names the keyword that holds a subschema, from its location
// ("...#/unevaluatedProperties" -> "unevaluatedProperties",
// "...#/properties/a" -> "properties").
func keywordOf(schemaURL string) string {
	_, frag, _ := strings.Cut(schemaURL, "#")
	toks := strings.Split(frag, "/")
	for i := len(toks) - 1; i > 0; i-- {
		t := toks[i]
		if _, err := strconv.Atoi(t); err == nil {
			continue
		}
		if i > 1 && slices.Contains(schemaMapKeywords, toks[i-1]) {
			return toks[i-1]
		}
		return t
	}
	return ""
}

func toAny(d *doc, n *node) any {
	switch n.kind {
	case kNull:
		return nil
	case kTrue:
		return true
	case kFalse:
		return false
	case kNumber:
		return json.Number(n.str)
	case kString:
		return strings.Clone(n.str)
	case kArray:
		out := make([]any, n.n)
		for i, c := range d.children(n) {
			out[i] = toAny(d, &c)
		}
		return out
	default:
		out := make(map[string]any, n.n)
		for _, c := range d.children(n) {
			out[strings.Clone(c.key)] = toAny(d, &c)
		}
		return out
	}
}
