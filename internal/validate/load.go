package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits on documents. They match the spec package's upload limit, so any
// stored document compiles, and keep a hostile document (deep nesting, YAML
// alias bombs, $ref chains) from costing more than a bounded amount of work.
const (
	maxDocBytes = 4 << 20
	maxDocNodes = 1 << 20 // values materialised, YAML alias expansions included
	maxDocDepth = 256
	maxRefHops  = 32
)

// loadDocument decodes a JSON or YAML document into the plain value model
// the schema library expects: map[string]any, []any, string, json.Number,
// bool and nil. Numbers stay json.Number so bounds keep their precision.
func loadDocument(data []byte) (map[string]any, error) {
	if len(data) > maxDocBytes {
		return nil, fmt.Errorf("document is %d bytes, the limit is %d", len(data), maxDocBytes)
	}
	var v any
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("document is not valid JSON: %w", err)
		}
		if _, err := dec.Token(); err == nil {
			return nil, errors.New("document has data after the top-level JSON value")
		}
		if err := checkDepth(v, 0); err != nil {
			return nil, err
		}
	} else {
		var n yaml.Node
		if err := yaml.Unmarshal(data, &n); err != nil {
			return nil, fmt.Errorf("document is not valid YAML: %w", err)
		}
		c := yamlConv{budget: maxDocNodes}
		var err error
		if v, err = c.value(&n, 0); err != nil {
			return nil, err
		}
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("document is not an object")
	}
	return root, nil
}

// checkDepth bounds the nesting and the number literals of a decoded JSON
// document.
func checkDepth(v any, depth int) error {
	if depth > maxDocDepth {
		return fmt.Errorf("document nests deeper than %d levels", maxDocDepth)
	}
	switch v := v.(type) {
	case json.Number:
		return checkNumberRange(string(v))
	case map[string]any:
		for _, c := range v {
			if err := checkDepth(c, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for _, c := range v {
			if err := checkDepth(c, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlConv converts a yaml.Node tree. Aliases are expanded by copying, under
// a node budget, so an alias bomb is refused instead of materialised.
type yamlConv struct{ budget int }

func (c *yamlConv) value(n *yaml.Node, depth int) (any, error) {
	c.budget--
	if c.budget < 0 {
		return nil, fmt.Errorf("document has more than %d values (after alias expansion)", maxDocNodes)
	}
	if depth > maxDocDepth {
		return nil, fmt.Errorf("document nests deeper than %d levels", maxDocDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0], depth)
	case yaml.AliasNode:
		return c.value(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := c.value(e, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			for k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				return nil, fmt.Errorf("line %d: only scalar mapping keys are supported", k.Line)
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			v, err := c.value(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return b, nil
	case "!!int", "!!float":
		if scanNumber([]byte(n.Value)) == len(n.Value) {
			if err := checkNumberRange(n.Value); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return json.Number(n.Value), nil
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("line %d: %s is not a JSON number", n.Line, n.Value)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	default: // !!str, !!timestamp, !!binary: JSON only has strings for these
		return n.Value, nil
	}
}

// deepCopy copies a plain value tree, so that each compilation variant
// (request, response) can be rewritten independently.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, c := range v {
			out[k] = deepCopy(c)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, c := range v {
			out[i] = deepCopy(c)
		}
		return out
	}
	return v
}

// escapeToken escapes a JSON pointer token (RFC 6901 section 4).
func escapeToken(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func urlPathEscape(s string) string { return url.PathEscape(s) }

// pointer renders tokens as a JSON pointer.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapeToken(t))
	}
	return b.String()
}

func appendTok(at []string, toks ...string) []string {
	out := make([]string, 0, len(at)+len(toks))
	return append(append(out, at...), toks...)
}

// parseRef parses an internal reference "#/a/b" into pointer tokens. Any other
// reference is refused: documents are untrusted uploads and the gateway never
// fetches what they point at (SSRF), nor reads local files.
func parseRef(ref string) ([]string, error) {
	if !strings.HasPrefix(ref, "#") {
		return nil, fmt.Errorf("external reference %q refused: only references inside the document (#/...) are supported", ref)
	}
	frag, err := url.PathUnescape(ref[1:])
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w", ref, err)
	}
	if frag == "" {
		return nil, nil
	}
	if !strings.HasPrefix(frag, "/") {
		return nil, fmt.Errorf("reference %q: only JSON pointer fragments are supported here", ref)
	}
	toks := strings.Split(frag[1:], "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

func lookup(root any, tokens []string) (any, bool) {
	v := root
	for _, t := range tokens {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[t]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// deref follows Reference Objects ({"$ref": "#/..."}) from v, located at at,
// to the object they name, and returns it with its own location. Schemas
// are not dereferenced this way: the schema compiler resolves their $refs.
func deref(root, v any, at []string) (map[string]any, []string, error) {
	for hops := 0; ; hops++ {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, at, fmt.Errorf("%s: expected an object", pointer(at))
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, at, nil
		}
		if hops >= maxRefHops {
			return nil, at, fmt.Errorf("%s: more than %d chained $refs (cycle?)", pointer(at), maxRefHops)
		}
		toks, err := parseRef(ref)
		if err != nil {
			return nil, at, fmt.Errorf("%s: %w", pointer(at), err)
		}
		if v, ok = lookup(root, toks); !ok {
			return nil, at, fmt.Errorf("%s: $ref %q points at nothing", pointer(at), ref)
		}
		at = toks
	}
}

// Schema keywords whose values are subschemas, by shape.
var (
	schemaMapKeywords   = []string{"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
	schemaKeywords      = []string{"items", "additionalProperties", "additionalItems", "not", "if", "then", "else", "contains", "propertyNames", "unevaluatedProperties", "unevaluatedItems", "contentSchema"}
	schemaListKeywords  = []string{"allOf", "anyOf", "oneOf", "prefixItems"}
	oas30Annotations    = []string{"example", "discriminator", "xml", "externalDocs"}
	oas31DialectURL     = "https://spec.openapis.org/oas/3.1/dialect/base"
	jsonSchema2020URL   = "https://json-schema.org/draft/2020-12/schema"
	errTranslateTooMany = errors.New("document has too many schemas")
)

// translator rewrites the schemas of one document variant in place, before
// the schema compiler sees them:
//   - OpenAPI 3.0 schemas become JSON Schema 2020-12: nullable adds "null" to
//     type, boolean exclusiveMinimum/Maximum become numeric, annotation-only
//     OpenAPI keywords are dropped, and the siblings of $ref are dropped
//     because 3.0 says they are ignored;
//   - in the request variant, properties marked readOnly are removed from
//     "required" (clients must not send them); in the response variant the
//     same is done for writeOnly.
//
// Each schema is rewritten once; the rewrites are idempotent anyway, so a
// location reached through two spellings of the same reference is harmless.
type translator struct {
	root   any
	oas30  bool
	drop   string // "readOnly", "writeOnly" or ""
	done   map[string]bool
	budget int
}

func newTranslator(root any, oas30 bool, drop string) *translator {
	return &translator{root: root, oas30: oas30, drop: drop, done: map[string]bool{}, budget: maxDocNodes}
}

// schemaAt translates the schema at the given location and everything it
// references.
func (t *translator) schemaAt(at []string) error {
	key := pointer(at)
	if t.done[key] {
		return nil
	}
	t.done[key] = true
	v, ok := lookup(t.root, at)
	if !ok {
		return fmt.Errorf("%s: no schema there", key)
	}
	return t.schema(v, at)
}

func (t *translator) schema(v any, at []string) error {
	t.budget--
	if t.budget < 0 {
		return errTranslateTooMany
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	if ref, ok := m["$ref"].(string); ok {
		toks, err := parseRef(ref)
		if err != nil {
			return fmt.Errorf("%s: %w", pointer(at), err)
		}
		if t.oas30 {
			for k := range m {
				if k != "$ref" {
					delete(m, k)
				}
			}
		}
		if err := t.schemaAt(toks); err != nil {
			return err
		}
		if t.oas30 {
			return nil
		}
	}
	if t.oas30 {
		translate30(m)
	} else if m["$schema"] == oas31DialectURL {
		m["$schema"] = jsonSchema2020URL
	}
	if t.drop != "" {
		t.dropFlagged(m)
	}
	for _, kw := range schemaMapKeywords {
		if sub, ok := m[kw].(map[string]any); ok {
			for name, s := range sub {
				if err := t.sub(s, at, kw, name); err != nil {
					return err
				}
			}
		}
	}
	for _, kw := range schemaKeywords {
		if s, ok := m[kw]; ok {
			if list, ok := s.([]any); ok { // draft < 2020 tuple items
				for i, e := range list {
					if err := t.sub(e, at, kw, strconv.Itoa(i)); err != nil {
						return err
					}
				}
			} else if err := t.sub(s, at, kw); err != nil {
				return err
			}
		}
	}
	for _, kw := range schemaListKeywords {
		if list, ok := m[kw].([]any); ok {
			for i, e := range list {
				if err := t.sub(e, at, kw, strconv.Itoa(i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (t *translator) sub(v any, at []string, toks ...string) error {
	next := appendTok(at, toks...)
	key := pointer(next)
	if t.done[key] {
		return nil
	}
	t.done[key] = true
	return t.schema(v, next)
}

// translate30 applies the OpenAPI 3.0 to JSON Schema 2020-12 rewrites to one
// schema object.
func translate30(m map[string]any) {
	if nullable, _ := m["nullable"].(bool); nullable {
		// [OAS 3.0.3 4.7.24.1] nullable adds "null" to an explicit type only;
		// other keywords such as enum keep their meaning.
		if typ, ok := m["type"].(string); ok {
			m["type"] = []any{typ, "null"}
		}
	}
	delete(m, "nullable")
	for _, kw := range [2][2]string{{"exclusiveMinimum", "minimum"}, {"exclusiveMaximum", "maximum"}} {
		excl, isBool := m[kw[0]].(bool)
		if !isBool {
			continue
		}
		delete(m, kw[0])
		if limit, ok := m[kw[1]]; ok && excl {
			m[kw[0]] = limit
			delete(m, kw[1])
		}
	}
	for _, kw := range oas30Annotations {
		delete(m, kw)
	}
}

// dropFlagged removes from "required" the properties whose schema carries
// t.drop (readOnly in requests, writeOnly in responses).
func (t *translator) dropFlagged(m map[string]any) {
	req, ok := m["required"].([]any)
	props, _ := m["properties"].(map[string]any)
	if !ok || props == nil {
		return
	}
	keep := make([]any, 0, len(req))
	for _, r := range req {
		name, _ := r.(string)
		if ps, ok := props[name]; ok && t.flagged(ps) {
			continue
		}
		keep = append(keep, r)
	}
	m["required"] = keep
}

func (t *translator) flagged(v any) bool {
	for hops := 0; hops <= maxRefHops; hops++ {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if b, _ := m[t.drop].(bool); b {
			return true
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return false
		}
		toks, err := parseRef(ref)
		if err != nil {
			return false
		}
		if v, ok = lookup(t.root, toks); !ok {
			return false
		}
	}
	return false
}
