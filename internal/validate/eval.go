package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
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
	cmpBound := func(lit string, b *bound) int { return cmpFloat(f, lit, b) }
	if b := p.minimum; b != nil && cmpBound(lit, b) < 0 {
		return ev.fail("minimum", "%s is less than %s", lit, b.rat.RatString())
	}
	if b := p.maximum; b != nil && cmpBound(lit, b) > 0 {
		return ev.fail("maximum", "%s is greater than %s", lit, b.rat.RatString())
	}
	if b := p.exclusiveMinimum; b != nil && cmpBound(lit, b) <= 0 {
		return ev.fail("exclusiveMinimum", "%s is not greater than %s", lit, b.rat.RatString())
	}
	if b := p.exclusiveMaximum; b != nil && cmpBound(lit, b) >= 0 {
		return ev.fail("exclusiveMaximum", "%s is not less than %s", lit, b.rat.RatString())
	}
	if b := p.multipleOf; b != nil && !multipleOf(lit, b) {
		return ev.fail("multipleOf", "%s is not a multiple of %s", lit, b.rat.RatString())
	}
	return nil
}

// cmpFloat compares a number literal, already rounded to f, with a bound. Rounding to float64 is
// monotonic, so different floats order the exact values too; equal floats
// mean equal values when both sides are short decimals (see shortLiteral);
// only the remaining cases pay for big.Rat.
func cmpFloat(f float64, lit string, b *bound) int {
	switch {
	case f < b.f:
		return -1
	case f > b.f:
		return 1
	case b.short && shortLiteral(lit):
		return 0
	}
	r, ok := new(big.Rat).SetString(lit)
	if !ok {
		return 0
	}
	return r.Cmp(b.rat)
}

func multipleOf(lit string, b *bound) bool {
	if b.isInt && b.i > 0 && isIntLiteral(lit) {
		if v, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return v%b.i == 0
		}
	}
	r, ok := new(big.Rat).SetString(lit)
	if !ok {
		return false
	}
	return r.Quo(r, b.rat).IsInt()
}

func isIntLiteral(lit string) bool {
	return strings.IndexAny(lit, ".eE") < 0
}

// isInteger applies JSON Schema's value-based notion: 1.0 and 1e2 are
// integers.
func isInteger(lit string) bool {
	if isIntLiteral(lit) {
		return true
	}
	if f, err := strconv.ParseFloat(lit, 64); err == nil && f != math.Trunc(f) && shortLiteral(lit) {
		return false
	}
	r, ok := new(big.Rat).SetString(lit)
	return ok && r.IsInt()
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

// equal is JSON Schema equality: numbers by value, objects regardless of
// member order.
func equal(da *doc, a *node, db *doc, b *node) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case kString:
		return a.str == b.str
	case kNumber:
		return a.str == b.str || numEqual(a.str, b.str)
	case kArray:
		if a.n != b.n {
			return false
		}
		ak, bk := da.children(a), db.children(b)
		for i := range ak {
			if !equal(da, &ak[i], db, &bk[i]) {
				return false
			}
		}
		return true
	case kObject:
		if a.n != b.n {
			return false
		}
		bk := db.children(b)
		for _, am := range da.children(a) {
			bm := member(bk, am.key)
			if bm == nil || !equal(da, &am, db, bm) {
				return false
			}
		}
		return true
	}
	return true
}

func numEqual(a, b string) bool {
	fa, errA := strconv.ParseFloat(a, 64)
	fb, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil && fa != fb {
		return false
	}
	ra, okA := new(big.Rat).SetString(a)
	rb, okB := new(big.Rat).SetString(b)
	return okA && okB && ra.Cmp(rb) == 0
}

// duplicate returns the indices of the first pair of equal items, or -1, -1.
// Small arrays are compared pairwise; larger ones are bucketed by a hash so a
// hostile array cannot make the check quadratic.
func duplicate(d *doc, items []node) (int, int) {
	if len(items) <= 32 {
		for j := 1; j < len(items); j++ {
			for i := 0; i < j; i++ {
				if equal(d, &items[i], d, &items[j]) {
					return i, j
				}
			}
		}
		return -1, -1
	}
	buckets := make(map[uint64][]int, len(items))
	for j := range items {
		h := hashNode(d, &items[j])
		for _, i := range buckets[h] {
			if equal(d, &items[i], d, &items[j]) {
				return i, j
			}
		}
		buckets[h] = append(buckets[h], j)
	}
	return -1, -1
}

// hashNode hashes consistently with equal: numbers by float value, object
// members order-independently.
func hashNode(d *doc, n *node) uint64 {
	const prime = 1099511628211
	h := uint64(n.kind) + 14695981039346656037
	switch n.kind {
	case kString:
		h = hashString(h, n.str)
	case kNumber:
		f, _ := strconv.ParseFloat(n.str, 64)
		if f == 0 {
			f = 0 // -0
		}
		h = (h ^ math.Float64bits(f)) * prime
	case kArray:
		for _, c := range d.children(n) {
			h = (h ^ hashNode(d, &c)) * prime
		}
	case kObject:
		var sum uint64
		for _, c := range d.children(n) {
			sum += hashString(hashNode(d, &c), c.key)
		}
		h = (h ^ sum) * prime
	}
	return h
}

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
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
