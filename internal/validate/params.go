package validate

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// param validates one parameter. Everything that depends only on the
// document (where to look, how to split, which strings become numbers or
// booleans) is decided at compile time and captured in coerce.
type param struct {
	name, in   string
	ptr        string // error location: "/query/limit"
	header     string // canonical header key, for in: header
	ignored    bool   // a header parameter OpenAPI says to ignore
	required   bool
	allowEmpty bool
	schema     *prog // nil: presence is all that is checked
	// present reports whether the parameter was sent and returns its raw
	// values; coerce turns them into a typed node to validate.
	present func(s *scratch, in *Input) ([]string, bool)
	coerce  func(s *scratch, in *Input, raw []string) (node, *Error)
}

// shape is what coercion needs to know about a parameter schema.
type shape struct {
	types typeSet
	items typeSet            // array item types
	props map[string]typeSet // object property types
}

var inRank = map[string]int{"path": 0, "query": 1, "header": 2, "cookie": 3}

// parameters merges path-item and operation parameters (the operation's win
// by name and location) and compiles them, ordered path, query, header,
// cookie, each in declaration order.
func (c *oasCompiler) parameters(op *Operation, item map[string]any, itemAt []string, opm map[string]any, at []string) error {
	type key struct{ name, in string }
	merged := map[key]*param{}
	var order []key
	for _, src := range []struct {
		list any
		at   []string
	}{{item["parameters"], appendTok(itemAt, "parameters")}, {opm["parameters"], appendTok(at, "parameters")}} {
		list, _ := src.list.([]any)
		for i, pv := range list {
			pm, pAt, err := deref(c.req, pv, appendTok(src.at, strconv.Itoa(i)))
			if err != nil {
				return err
			}
			p, err := c.param(pm, pAt)
			if err != nil || p == nil {
				return err
			}
			k := key{p.name, p.in}
			if p.in == "header" {
				k.name = p.header // header names are case-insensitive
			}
			if _, seen := merged[k]; !seen {
				order = append(order, k)
			}
			merged[k] = p
		}
	}
	for _, k := range order {
		if p := merged[k]; !p.ignored {
			op.params = append(op.params, p)
		}
	}
	slices.SortStableFunc(op.params, func(a, b *param) int { return cmp.Compare(inRank[a.in], inRank[b.in]) })
	return nil
}

func (c *oasCompiler) param(pm map[string]any, at []string) (*param, error) {
	name, _ := pm["name"].(string)
	in, _ := pm["in"].(string)
	if _, ok := inRank[in]; !ok || name == "" {
		return nil, fmt.Errorf("%s: a parameter needs a name and an \"in\" of path, query, header or cookie", pointer(at))
	}
	p := &param{name: name, in: in, ptr: "/" + in + "/" + escapeToken(name)}
	p.required, _ = pm["required"].(bool)
	p.allowEmpty, _ = pm["allowEmptyValue"].(bool)
	if in == "path" {
		p.required = true // [OAS 3.x 4.8.12.1] path parameters are always required
	}
	if in == "header" {
		p.header = textproto.CanonicalMIMEHeaderKey(name)
		switch p.header {
		case "Accept", "Content-Type", "Authorization":
			// [OAS 3.x 4.8.12.1] these header parameters are ignored;
			// returned anyway so that they still override a path-level
			// namesake.
			p.ignored = true
			return p, nil
		}
	}
	style, _ := pm["style"].(string)
	if style == "" {
		style = "simple"
		if in == "query" || in == "cookie" {
			style = "form"
		}
	}
	explode, hasExplode := pm["explode"].(bool)
	if !hasExplode {
		explode = style == "form"
	}
	p.present = presence(p, style, explode, nil)
	if content, ok := pm["content"].(map[string]any); ok && len(content) > 0 {
		mt := slices.Sorted(maps.Keys(content))[0]
		entry, _ := content[mt].(map[string]any)
		if _, ok := entry["schema"]; ok {
			var err error
			if p.schema, err = c.requestSchema(appendTok(at, "content", mt, "schema")); err != nil {
				return nil, err
			}
		}
		if isJSONMediaType(normalizeMediaType(mt)) {
			p.coerce = jsonParam(p.ptr)
		} else {
			p.coerce = primitive(p.in, 0)
		}
		return p, nil
	}
	if _, ok := pm["schema"]; !ok {
		return p, nil
	}
	schemaAt := appendTok(at, "schema")
	var err error
	if p.schema, err = c.requestSchema(schemaAt); err != nil {
		return nil, err
	}
	sh := c.shapeOf(schemaAt)
	switch {
	case sh.types&tArray != 0:
		p.coerce = array(in, style, explode, sh.items)
	case sh.types&tObject != 0:
		p.coerce = object(p.name, style, explode, sh.props)
		p.present = presence(p, style, explode, slices.Sorted(maps.Keys(sh.props)))
	default:
		p.coerce = primitive(in, sh.types)
	}
	return p, nil
}

// presence returns the lookup of a parameter's raw values. props lists the
// properties of an object parameter, nil otherwise.
func presence(p *param, style string, explode bool, props []string) func(*scratch, *Input) ([]string, bool) {
	name, header := p.name, p.header
	switch p.in {
	case "path":
		return func(s *scratch, in *Input) ([]string, bool) {
			v, ok := in.PathParams[name]
			s.one[0] = v
			return s.one[:], ok
		}
	case "header":
		return func(_ *scratch, in *Input) ([]string, bool) {
			v := in.Header[header]
			return v, len(v) > 0
		}
	case "cookie":
		return func(s *scratch, in *Input) ([]string, bool) {
			for _, line := range in.Header["Cookie"] {
				cookies, err := http.ParseCookie(line)
				if err != nil {
					continue
				}
				for _, ck := range cookies {
					if ck.Name == name {
						s.one[0] = ck.Value
						return s.one[:], true
					}
				}
			}
			return nil, false
		}
	}
	if props != nil && (style == "deepObject" || (style == "form" && explode)) {
		// An exploded object is spread over several query keys: it is
		// present when any of them is.
		return func(_ *scratch, in *Input) ([]string, bool) {
			for k := range in.Query {
				if style == "deepObject" && strings.HasPrefix(k, name+"[") {
					return nil, true
				}
			}
			for _, k := range props {
				if style == "form" && in.Query.Has(k) {
					return nil, true
				}
			}
			return nil, false
		}
	}
	return func(_ *scratch, in *Input) ([]string, bool) {
		v, ok := in.Query[name]
		return v, ok
	}
}

func (p *param) validate(s *scratch, in *Input) *Error {
	raw, ok := p.present(s, in)
	if !ok {
		if p.required {
			return &Error{Pointer: p.ptr, Keyword: "required", Detail: "required parameter is missing"}
		}
		return nil
	}
	if p.schema == nil || (p.allowEmpty && len(raw) == 1 && raw[0] == "") {
		return nil
	}
	n, err := p.coerce(s, in, raw)
	if err != nil {
		return err
	}
	s.ev.reset(&s.d, p.ptr)
	return s.ev.eval(p.schema, &n)
}

// scalarNode types one string value: a number literal becomes a number when
// the schema accepts numbers, "true"/"false" a boolean when it accepts
// booleans; anything else stays a string, so the schema's type check
// reports it.
func scalarNode(v string, ts typeSet) node {
	if ts&(tNumber|tInteger) != 0 && v != "" && scanNumber(bytesOf(v)) == len(v) {
		return node{kind: kNumber, str: v}
	}
	if ts&tBoolean != 0 {
		switch v {
		case "true":
			return node{kind: kTrue}
		case "false":
			return node{kind: kFalse}
		}
	}
	return node{kind: kString, str: v}
}

// primitive coerces a scalar parameter. Repeated header lines are combined
// with commas [RFC 9110 5.3]; a query parameter sent several times becomes
// an array, which a scalar schema refuses: upstream frameworks disagree on
// which copy wins, so the gateway does not pick one.
func primitive(in string, ts typeSet) func(*scratch, *Input, []string) (node, *Error) {
	return func(s *scratch, _ *Input, raw []string) (node, *Error) {
		if len(raw) == 1 {
			return scalarNode(raw[0], ts), nil
		}
		if in == "header" {
			return scalarNode(strings.Join(raw, ", "), ts), nil
		}
		first := len(s.d.nodes)
		for _, v := range raw {
			s.d.nodes = append(s.d.nodes, scalarNode(v, ts))
		}
		return node{kind: kArray, first: int32(first), n: int32(len(raw))}, nil
	}
}

// array coerces an array parameter according to its style [OAS 3.x
// 4.8.12.4]: exploded form repeats the key, the other styles join items
// with ',', ' ' or '|'.
func array(in, style string, explode bool, items typeSet) func(*scratch, *Input, []string) (node, *Error) {
	sep := ","
	switch style {
	case "spaceDelimited":
		sep = " "
	case "pipeDelimited":
		sep = "|"
	}
	split := !(style == "form" && explode) || in == "header"
	return func(s *scratch, _ *Input, raw []string) (node, *Error) {
		first := len(s.d.nodes)
		for _, v := range raw {
			if !split {
				s.d.nodes = append(s.d.nodes, scalarNode(v, items))
				continue
			}
			if v == "" {
				continue
			}
			for part := range strings.SplitSeq(v, sep) {
				if in == "header" {
					part = strings.TrimSpace(part)
				}
				s.d.nodes = append(s.d.nodes, scalarNode(part, items))
			}
		}
		return node{kind: kArray, first: int32(first), n: int32(len(s.d.nodes) - first)}, nil
	}
}

// object coerces an object parameter: deepObject (name[prop]=v), exploded
// form (each property its own query key), or "k,v,k,v" / "k=v,k=v" lists.
// Property values are typed with the property schemas.
func object(name, style string, explode bool, props map[string]typeSet) func(*scratch, *Input, []string) (node, *Error) {
	propNames := slices.Sorted(maps.Keys(props))
	member := func(s *scratch, k, v string) {
		n := scalarNode(v, props[k])
		n.key = k
		s.d.nodes = append(s.d.nodes, n)
	}
	return func(s *scratch, in *Input, raw []string) (node, *Error) {
		start := len(s.d.nodes)
		switch {
		case style == "deepObject":
			var keys []string
			for k := range in.Query {
				if strings.HasPrefix(k, name+"[") && strings.HasSuffix(k, "]") {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				member(s, k[len(name)+1:len(k)-1], first(in.Query[k]))
			}
		case style == "form" && explode:
			for _, k := range propNames {
				if v, ok := in.Query[k]; ok {
					member(s, k, first(v))
				}
			}
		default:
			if len(raw) != 1 {
				return node{kind: kString}, nil
			}
			parts := strings.Split(raw[0], ",")
			if explode {
				for _, kv := range parts {
					k, v, _ := strings.Cut(kv, "=")
					member(s, k, v)
				}
			} else {
				if len(parts)%2 != 0 {
					return node{kind: kString, str: raw[0]}, nil
				}
				for i := 0; i < len(parts); i += 2 {
					member(s, parts[i], parts[i+1])
				}
			}
		}
		return node{kind: kObject, first: int32(start), n: int32(len(s.d.nodes) - start)}, nil
	}
}

// first returns the first value, or "" for a key present without values
// (possible in a url.Values built by hand).
func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// jsonParam coerces a parameter declared with content: application/json.
func jsonParam(ptr string) func(*scratch, *Input, []string) (node, *Error) {
	return func(s *scratch, _ *Input, raw []string) (node, *Error) {
		n, err := s.d.parse(bytesOf(first(raw)))
		if err != nil {
			return node{}, &Error{Pointer: ptr, Keyword: "json", Detail: "malformed JSON: " + err.Error()}
		}
		return n, nil
	}
}

// shapeOf reads the types of a (translated) parameter schema, following
// $refs. Composite schemas without a top-level type keep string values.
func (c *oasCompiler) shapeOf(at []string) shape {
	v, _ := lookup(c.req, at)
	m := c.resolveSchema(v)
	sh := shape{types: typesOf(m)}
	if sh.types&tArray != 0 {
		sh.items = typesOf(c.resolveSchema(m["items"]))
	}
	if sh.types&tObject != 0 {
		sh.props = map[string]typeSet{}
		props, _ := m["properties"].(map[string]any)
		for k, ps := range props {
			sh.props[k] = typesOf(c.resolveSchema(ps))
		}
	}
	return sh
}

func (c *oasCompiler) resolveSchema(v any) map[string]any {
	for range maxRefHops {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		toks, err := parseRef(ref)
		if err != nil {
			return nil
		}
		v, _ = lookup(c.req, toks)
	}
	return nil
}

func typesOf(m map[string]any) typeSet {
	var ts typeSet
	switch t := m["type"].(type) {
	case string:
		ts = typeNames[t]
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok {
				ts |= typeNames[s]
			}
		}
	}
	return ts
}
