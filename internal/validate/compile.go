package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// typeSet is a set of JSON Schema types.
type typeSet uint8

const (
	tNull typeSet = 1 << iota
	tBoolean
	tNumber
	tInteger
	tString
	tArray
	tObject
)

var typeNames = map[string]typeSet{
	"null": tNull, "boolean": tBoolean, "number": tNumber, "integer": tInteger,
	"string": tString, "array": tArray, "object": tObject,
}

// bound is a numeric keyword value. The exact rational decides; the float is
// a shortcut that answers most comparisons without allocating (see cmpBound).
type bound struct {
	rat   *big.Rat
	f     float64
	short bool // f equals rat exactly and rat has at most 15 significant digits
	i     int64
	isInt bool // rat is an integer that fits in int64
}

// prog is a schema lowered from the jsonschema library's compiled form into
// what the evaluator needs: bounds pre-converted, keyword maps turned into
// sorted slices (so the first error is deterministic), const and enum values
// pre-parsed. The library remains the authority on what a schema means; a
// schema using keywords this evaluator does not implement keeps library set
// and is evaluated by the library (see evaluator.viaLibrary).
type prog struct {
	src     *jsonschema.Schema
	library bool // evaluate src with the jsonschema validator
	dynamic bool // uses $dynamicRef/$recursiveRef: the whole root must go to the library

	falseSchema bool
	legacyRef   bool // draft < 2019: $ref makes its siblings ignored
	types       typeSet
	consts      *doc  // const and enum values, parsed once
	constV      *node // nil when absent
	enum        []node
	format      *jsonschema.Format
	native      nativeFormat // set when format is implemented natively
	ref         *prog

	allOf, anyOf, oneOf  []*prog
	not, ifS, thenS, els *prog
	props                map[string]*prog
	patternProps         []patternProp
	additional           *prog
	required             []string
	minProps, maxProps   int
	propertyNames        *prog
	depRequired          []depRequired
	depSchemas           []depSchema
	prefixItems          []*prog
	items                *prog
	itemsKeyword         string // "items" or "additionalItems", for errors
	minItems, maxItems   int
	unique               bool
	contains             *prog
	minContains          int
	maxContains          int
	minLen, maxLen       int
	pattern              jsonschema.Regexp
	minimum, maximum     *bound
	exclusiveMinimum     *bound
	exclusiveMaximum     *bound
	multipleOf           *bound
}

type patternProp struct {
	re jsonschema.Regexp
	p  *prog
}

type depRequired struct {
	name     string
	required []string
}

type depSchema struct {
	name string
	p    *prog
}

// refusingLoader is the compiler's only way to fetch a schema resource that
// was not added in memory. It refuses everything: a document's $ref must
// never make the gateway reach out to a URL chosen by an API author (SSRF),
// nor read a local file.
type refusingLoader struct{}

func (refusingLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external reference %q refused: only references inside the document are supported", url)
}

// schemaCompiler compiles schemas that live inside one API document. The
// document is added whole, under a synthetic URL, so every "#/components/..."
// reference resolves inside it, cycles included, and nothing is inlined.
type schemaCompiler struct {
	c     *jsonschema.Compiler
	progs map[*jsonschema.Schema]*prog
}

func newSchemaCompiler(draft *jsonschema.Draft, resources map[string]any) (*schemaCompiler, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(draft)
	c.UseLoader(refusingLoader{})
	// Formats are asserted: a gateway is expected to refuse a "date-time"
	// that is not one. Unknown formats (byte, binary, password...) stay
	// annotations.
	c.AssertFormat()
	registerFormats(c)
	for _, url := range slices.Sorted(maps.Keys(resources)) {
		if err := c.AddResource(url, resources[url]); err != nil {
			return nil, err
		}
	}
	return &schemaCompiler{c: c, progs: map[*jsonschema.Schema]*prog{}}, nil
}

// compile compiles the schema at url#ptr (ptr unescaped JSON pointer tokens).
func (sc *schemaCompiler) compile(url string, ptr []string) (*prog, error) {
	loc := url + "#" + fragment(ptr)
	s, err := sc.c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("schema at %s: %w", pointer(ptr), cleanCompileError(err))
	}
	p, err := sc.lower(s)
	if err != nil {
		return nil, fmt.Errorf("schema at %s: %w", pointer(ptr), err)
	}
	if usesDynamic(p, map[*prog]bool{}) {
		return &prog{src: s, library: true}, nil
	}
	return p, nil
}

// cleanCompileError surfaces the refusal of an external reference, which the
// library wraps in several layers.
func cleanCompileError(err error) error {
	var le *jsonschema.LoadURLError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// fragment renders pointer tokens as a URL fragment the library accepts.
func fragment(ptr []string) string {
	var b strings.Builder
	for _, t := range ptr {
		b.WriteByte('/')
		b.WriteString(urlPathEscape(escapeToken(t)))
	}
	return b.String()
}

func usesDynamic(p *prog, seen map[*prog]bool) bool {
	if p == nil || seen[p] {
		return false
	}
	seen[p] = true
	if p.dynamic {
		return true
	}
	kids := []*prog{p.ref, p.not, p.ifS, p.thenS, p.els, p.additional, p.propertyNames, p.items, p.contains}
	kids = append(kids, p.allOf...)
	kids = append(kids, p.anyOf...)
	kids = append(kids, p.oneOf...)
	kids = append(kids, p.prefixItems...)
	for _, k := range p.props {
		kids = append(kids, k)
	}
	for _, pp := range p.patternProps {
		kids = append(kids, pp.p)
	}
	for _, ds := range p.depSchemas {
		kids = append(kids, ds.p)
	}
	for _, k := range kids {
		if usesDynamic(k, seen) {
			return true
		}
	}
	return false
}

// lower converts a compiled schema, memoised so that recursive schemas become
// cyclic progs instead of infinite ones.
func (sc *schemaCompiler) lower(s *jsonschema.Schema) (*prog, error) {
	if s == nil {
		return nil, nil
	}
	if p, ok := sc.progs[s]; ok {
		return p, nil
	}
	p := &prog{src: s, minProps: -1, maxProps: -1, minItems: -1, maxItems: -1,
		minContains: -1, maxContains: -1, minLen: -1, maxLen: -1, itemsKeyword: "items"}
	sc.progs[s] = p
	if s.Bool != nil {
		if !*s.Bool {
			p.falseSchema = true
		}
		return p, nil
	}
	if s.DynamicRef != nil || s.RecursiveRef != nil {
		p.dynamic, p.library = true, true
		return p, nil
	}
	if s.UnevaluatedProperties != nil || s.UnevaluatedItems != nil || len(s.Extensions) > 0 || s.ContentSchema != nil {
		p.library = true
		return p, nil
	}
	var err error
	one := func(s *jsonschema.Schema) *prog {
		if err != nil || s == nil {
			return nil
		}
		var q *prog
		q, err = sc.lower(s)
		return q
	}
	many := func(ss []*jsonschema.Schema) []*prog {
		var out []*prog
		for _, s := range ss {
			out = append(out, one(s))
		}
		return out
	}
	p.legacyRef = s.DraftVersion < 2019
	if s.Types != nil {
		for _, t := range s.Types.ToStrings() {
			p.types |= typeNames[t]
		}
	}
	if s.Const != nil || s.Enum != nil {
		var vals []any
		if s.Const != nil {
			vals = append(vals, *s.Const)
		}
		if s.Enum != nil {
			vals = append(vals, s.Enum.Values...)
		}
		nodes, d, perr := parseValues(vals)
		if perr != nil {
			return nil, perr
		}
		p.consts = d
		if s.Const != nil {
			p.constV = &nodes[0]
			nodes = nodes[1:]
		}
		if s.Enum != nil {
			p.enum = nodes
		}
	}
	p.format = s.Format
	if s.Format != nil {
		p.native = nativeFormats()[s.Format.Name]
	}
	p.ref = one(s.Ref)
	p.allOf, p.anyOf, p.oneOf = many(s.AllOf), many(s.AnyOf), many(s.OneOf)
	p.not, p.ifS, p.thenS, p.els = one(s.Not), one(s.If), one(s.Then), one(s.Else)

	// object
	if len(s.Properties) > 0 {
		p.props = make(map[string]*prog, len(s.Properties))
		for name, ps := range s.Properties {
			p.props[name] = one(ps)
		}
	}
	for re, ps := range s.PatternProperties {
		p.patternProps = append(p.patternProps, patternProp{re: re, p: one(ps)})
	}
	slices.SortFunc(p.patternProps, func(a, b patternProp) int { return strings.Compare(a.re.String(), b.re.String()) })
	p.additional = sc.boolOrSchema(s.AdditionalProperties, &err)
	p.required = s.Required
	p.minProps, p.maxProps = intOr(s.MinProperties), intOr(s.MaxProperties)
	p.propertyNames = one(s.PropertyNames)
	for name, req := range s.DependentRequired {
		p.depRequired = append(p.depRequired, depRequired{name, req})
	}
	for name, ds := range s.DependentSchemas {
		p.depSchemas = append(p.depSchemas, depSchema{name, one(ds)})
	}
	for name, dep := range s.Dependencies { // draft < 2019
		switch dep := dep.(type) {
		case []string:
			p.depRequired = append(p.depRequired, depRequired{name, dep})
		case *jsonschema.Schema:
			p.depSchemas = append(p.depSchemas, depSchema{name, one(dep)})
		}
	}
	slices.SortFunc(p.depRequired, func(a, b depRequired) int { return strings.Compare(a.name, b.name) })
	slices.SortFunc(p.depSchemas, func(a, b depSchema) int { return strings.Compare(a.name, b.name) })

	// array
	p.prefixItems, p.items = many(s.PrefixItems), one(s.Items2020)
	switch items := s.Items.(type) { // draft < 2020
	case *jsonschema.Schema:
		p.items = one(items)
	case []*jsonschema.Schema:
		p.prefixItems = many(items)
		p.items = sc.boolOrSchema(s.AdditionalItems, &err)
		p.itemsKeyword = "additionalItems"
	}
	p.minItems, p.maxItems = intOr(s.MinItems), intOr(s.MaxItems)
	p.unique = s.UniqueItems
	p.contains = one(s.Contains)
	p.minContains, p.maxContains = intOr(s.MinContains), intOr(s.MaxContains)
	if p.contains != nil && p.minContains < 0 {
		p.minContains = 1
	}

	// string
	p.minLen, p.maxLen = intOr(s.MinLength), intOr(s.MaxLength)
	p.pattern = s.Pattern

	// number
	p.minimum, p.maximum = newBound(s.Minimum), newBound(s.Maximum)
	p.exclusiveMinimum, p.exclusiveMaximum = newBound(s.ExclusiveMinimum), newBound(s.ExclusiveMaximum)
	p.multipleOf = newBound(s.MultipleOf)
	return p, err
}

func (sc *schemaCompiler) boolOrSchema(v any, errp *error) *prog {
	switch v := v.(type) {
	case bool:
		if !v {
			return &prog{falseSchema: true}
		}
	case *jsonschema.Schema:
		p, err := sc.lower(v)
		if err != nil && *errp == nil {
			*errp = err
		}
		return p
	}
	return nil
}

func intOr(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

func newBound(r *big.Rat) *bound {
	if r == nil {
		return nil
	}
	b := &bound{rat: r}
	b.f, _ = r.Float64()
	if r.IsInt() && r.Num().IsInt64() {
		b.i, b.isInt = r.Num().Int64(), true
	}
	lit := strconv.FormatFloat(b.f, 'g', -1, 64)
	if back, ok := new(big.Rat).SetString(lit); ok && back.Cmp(r) == 0 && shortLiteral(lit) {
		b.short = true
	}
	return b
}

// shortLiteral reports whether a number literal has at most 15 significant
// digits and a magnitude in the normal float64 range. Two distinct such
// decimals never round to the same float64, so equal floats mean equal
// values.
func shortLiteral(lit string) bool {
	digits, exp, leading := 0, 0, true
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		switch {
		case c >= '0' && c <= '9':
			if c == '0' && leading {
				continue
			}
			leading = false
			digits++
		case c == 'e' || c == 'E':
			e, err := strconv.Atoi(strings.TrimPrefix(lit[i+1:], "+"))
			if err != nil {
				return false
			}
			exp = e
			i = len(lit)
		}
	}
	return digits <= 15 && exp > -290 && exp < 290 && len(lit) < 40
}

// parseValues turns const/enum values into nodes of a private doc, so that
// the evaluator compares body nodes with schema values without boxing.
func parseValues(vals []any) ([]node, *doc, error) {
	raw, err := json.Marshal(vals)
	if err != nil {
		return nil, nil, fmt.Errorf("const/enum: %w", err)
	}
	d := &doc{}
	root, err := d.parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("const/enum: %w", err)
	}
	return slices.Clone(d.children(&root)), d, nil
}
