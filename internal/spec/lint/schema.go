package lint

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleetgate/fleetgate/internal/spec"
)

// maxSchemaDepth bounds the recursion of the schema walk. Each schema node
// is visited once (the seen set also ends $ref cycles), so only a hostile
// chain of distinct nested schemas gets this deep; below it, schemas go
// unchecked rather than the walk growing the stack without bound.
const maxSchemaDepth = 1000

// checkBoundedSchemas: the gateway validates input against the document's
// schemas before it reaches an upstream or a device. An unbounded string or
// array lets one request carry megabytes where a few bytes were meant, and
// small devices are the first to fall over. Input is parameters, request
// bodies and AsyncAPI messages (every message crosses the broker);
// responses are produced by the upstream and are not checked. A schema is
// reported where it is defined, once, under the first operation that uses
// it; $refs are followed.
func checkBoundedSchemas(l *linter) {
	w := schemaWalker{l: l, seen: map[*yaml.Node]bool{}}
	done := map[*yaml.Node]bool{}
	for _, op := range l.ops {
		for _, s := range l.inputSchemas(op, done) {
			w.walk(s, op, 0)
		}
	}
}

// inputSchemas lists the schemas of op's input, as written. Parameters,
// bodies and messages shared with an operation listed before (through
// $refs) are in done and skipped: their schemas have been walked, and
// listing them again for every operation would cost operations x size.
func (l *linter) inputSchemas(op *operation, done map[*yaml.Node]bool) []loc {
	var out []loc
	first := func(n *yaml.Node) bool {
		n = deref(n)
		if n == nil || done[n] {
			return false
		}
		done[n] = true
		return true
	}
	media := func(content loc) {
		if !first(content.Node) {
			return
		}
		_, mts := fields(content)
		for _, mt := range mts {
			out = append(out, l.t.At(mt, "schema"))
		}
	}
	for _, p := range op.params {
		if !first(p.Node) {
			continue
		}
		out = append(out, l.t.At(p, "schema"))
		media(l.t.At(p, "content"))
	}
	if op.body.Valid() {
		media(l.t.At(l.t.Follow(op.body), "content"))
	}
	if op.msgList != nil && !first(op.msgList) {
		return out
	}
	for _, m := range op.messages {
		if !first(m.Node) {
			continue
		}
		if sf, ok := str(l.t.Val(m.Node, "schemaFormat")); ok && !jsonSchemaFormat(sf) {
			continue // AsyncAPI 2: Avro, RAML, Protobuf... are not JSON Schema
		}
		for _, f := range [...]string{"payload", "headers"} {
			s := l.t.At(m, f)
			// AsyncAPI 3 Multi Format Schema Object: {schemaFormat, schema}.
			if mf := l.t.Follow(s); isMap(mf.Node) {
				if sf, ok := str(l.t.Val(mf.Node, "schemaFormat")); ok {
					if !jsonSchemaFormat(sf) {
						continue
					}
					s = l.t.At(mf, "schema")
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// jsonSchemaFormat reports whether an AsyncAPI schemaFormat is JSON Schema
// (or the AsyncAPI / OpenAPI dialects of it).
func jsonSchemaFormat(sf string) bool {
	sf = strings.ToLower(sf)
	return strings.Contains(sf, "asyncapi") || strings.Contains(sf, "openapi") || strings.Contains(sf, "schema+json") || strings.Contains(sf, "schema+yaml")
}

type schemaWalker struct {
	l    *linter
	seen map[*yaml.Node]bool
}

// Subschema keywords the walk descends into (JSON Schema 2020-12 and the
// OpenAPI 3.0 subset). $defs are reached through the $refs that use them.
var (
	schemaMaps  = [...]string{"properties", "patternProperties", "dependentSchemas"}
	schemaOne   = [...]string{"items", "additionalProperties", "additionalItems", "unevaluatedProperties", "unevaluatedItems", "not", "contains", "propertyNames", "if", "then", "else"}
	schemaLists = [...]string{"allOf", "anyOf", "oneOf", "prefixItems"}
)

func (w *schemaWalker) walk(s loc, op *operation, depth int) {
	n := deref(s.Node)
	if n == nil || n.Kind != yaml.MappingNode || w.seen[n] || depth > maxSchemaDepth {
		return
	}
	w.seen[n] = true
	t := w.l.t
	if ref, ok := str(t.Val(n, "$ref")); ok {
		if r := t.Resolve(ref); r.Valid() {
			w.walk(r, op, depth+1)
		}
	}
	types := schemaTypes(n)
	if types["string"] && !boundedString(t, n) {
		w.l.report(s, op.name, "string schema has no maxLength (nor enum, const, or format date-time/uuid): one request could carry megabytes; add maxLength")
	}
	if types["array"] {
		if k, _ := t.Get(n, "maxItems"); k == nil {
			w.l.report(s, op.name, "array schema has no maxItems: one request could carry millions of items; add maxItems")
		}
	}
	for _, kw := range schemaMaps {
		_, subs := fields(t.At(s, kw))
		for _, sub := range subs {
			w.walk(sub, op, depth+1)
		}
	}
	for _, kw := range schemaOne {
		sub := t.At(s, kw)
		if isSeq(sub.Node) { // items as a tuple (draft 4 to 2019-09)
			for _, e := range elems(sub) {
				w.walk(e, op, depth+1)
			}
			continue
		}
		w.walk(sub, op, depth+1)
	}
	for _, kw := range schemaLists {
		for _, e := range elems(t.At(s, kw)) {
			w.walk(e, op, depth+1)
		}
	}
}

// schemaTypes returns the types a schema declares: `type: string` or, in
// OpenAPI 3.1, `type: [string, "null"]`.
func schemaTypes(n *yaml.Node) map[string]bool {
	var tv *yaml.Node
	for _, e := range entries(n) {
		if e.Key == "type" {
			tv = e.V
		}
	}
	out := map[string]bool{}
	if s, ok := str(tv); ok {
		out[s] = true
	}
	for _, e := range items(tv) {
		if s, ok := str(e); ok {
			out[s] = true
		}
	}
	return out
}

// boundedString reports whether a string schema limits its length:
// maxLength, a fixed set of values, or a fixed-length format. format
// binary is raw upload content, bounded by body-size-limit instead.
func boundedString(t *tree, n *yaml.Node) bool {
	for _, kw := range [...]string{"maxLength", "enum", "const"} {
		if k, _ := t.Get(n, kw); k != nil {
			return true
		}
	}
	switch f, _ := str(t.Val(n, "format")); f {
	case "date-time", "date", "uuid", "binary":
		return true
	}
	return false
}

// maxBodyKey is the extension that bounds a request body, in bytes: the
// limit for the data plane to enforce before it reads a body whole.
const maxBodyKey = "x-fleetgate-max-body-bytes"

// checkBodySize: validation reads the body before it can judge it, so the
// body needs a size limit of its own, on the operation or the requestBody.
func checkBodySize(l *linter) {
	for _, op := range l.ops {
		if !op.body.Valid() {
			continue
		}
		var found loc
		for _, c := range [...]loc{l.t.At(op.loc, maxBodyKey), l.t.At(op.body, maxBodyKey), l.t.At(l.t.Follow(op.body), maxBodyKey)} {
			if c.Valid() {
				found = c
				break
			}
		}
		switch {
		case !found.Valid():
			l.report(op.body, op.name, "request body of %s has no size limit; set %s on the operation or the requestBody", clip(op.name), maxBodyKey)
		case !positiveInt(found.Node):
			l.report(found, op.name, "%s must be a positive integer (bytes)", maxBodyKey)
		}
	}
}

func positiveInt(n *yaml.Node) bool {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return false
	}
	v, err := strconv.ParseInt(n.Value, 0, 64)
	return err == nil && v > 0
}

// versionSegment matches a version in a path or topic: v1, v2.1, v1beta2.
var versionSegment = regexp.MustCompile(`^[vV][0-9]+(\.[0-9]+)*([a-z]+[0-9]*)?$`)

// hasVersion reports whether a path, topic or routing key has a literal
// version segment.
func hasVersion(s string) bool {
	for _, seg := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '.' }) {
		if versionSegment.MatchString(seg) {
			return true
		}
	}
	return false
}

// checkVersionInPath: versions of an API run side by side on one gateway
// and devices are migrated one at a time, so each request must say which
// version it speaks: in the base path (a servers url like /v1), in the path
// or channel prefix, or, for HTTP, in a header parameter named like
// "version" on every operation.
func checkVersionInPath(l *linter) {
	if l.serverVersion() {
		return
	}
	all := len(l.ops) > 0
	for _, op := range l.ops {
		if !hasVersion(op.template) && !l.versionHeader(op) {
			all = false
			break
		}
	}
	if all {
		return
	}
	at := l.root
	if _, ss := fields(l.t.At(l.root, "servers")); len(ss) > 0 { // AsyncAPI
		at = ss[0]
	} else if ss := elems(l.t.At(l.root, "servers")); len(ss) > 0 { // OpenAPI
		at = l.t.At(ss[0], "url")
	} else if p := l.t.At(l.root, "paths"); p.Valid() {
		at = p
	} else if c := l.t.At(l.root, "channels"); c.Valid() {
		at = c
	}
	l.report(at, "", "the API version appears neither in the base path (e.g. a server url ending in /v1), nor in every path or channel, nor in a version header; clients cannot say which version they speak")
}

// serverVersion reports whether a server's base path carries a version.
func (l *linter) serverVersion() bool {
	if l.format == spec.FormatOpenAPI {
		for _, s := range elems(l.t.At(l.root, "servers")) {
			u, _ := str(l.t.Val(s.Node, "url"))
			if pu, err := url.Parse(expandTemplate(u, serverDefaults(l.t, s))); err == nil && hasVersion(pu.Path) {
				return true
			}
		}
		return false
	}
	_, servers := fields(l.t.At(l.root, "servers"))
	for _, s := range servers {
		s = l.t.Follow(s)
		if l.v2 {
			u, _ := str(l.t.Val(s.Node, "url"))
			if i := strings.Index(u, "://"); i >= 0 {
				u = u[i+3:]
			}
			if i := strings.IndexByte(u, '/'); i >= 0 && hasVersion(expandTemplate(u[i:], serverDefaults(l.t, s))) {
				return true
			}
			continue
		}
		if p, _ := str(l.t.Val(s.Node, "pathname")); hasVersion(expandTemplate(p, serverDefaults(l.t, s))) {
			return true
		}
	}
	return false
}

// versionHeader reports whether op takes a header parameter named like
// "version" (Api-Version, X-API-Version).
func (l *linter) versionHeader(op *operation) bool {
	for _, p := range op.params {
		in, _ := str(l.t.Val(p.Node, "in"))
		name, _ := str(l.t.Val(p.Node, "name"))
		if in == "header" && strings.Contains(strings.ToLower(name), "version") {
			return true
		}
	}
	return false
}
