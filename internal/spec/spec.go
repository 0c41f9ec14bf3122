// Package spec parses the API description documents (OpenAPI 3.0/3.1 and
// AsyncAPI 2.x/3.0, in JSON or YAML) that authors attach to API versions, and
// extracts protocol bindings from them.
//
// Documents are untrusted uploads, and this package is the first code that
// looks at them, so it is deliberately defensive:
//
//   - Content is decoded into a yaml.Node tree, never into interface{} values,
//     so YAML aliases are not expanded by the decoder; the tree is then walked
//     once with a cap on node visits (alias expansions included) and on
//     nesting depth. A "billion laughs" document is refused after at most
//     maxNodes visits instead of being materialised.
//   - $ref values are only ever resolved inside the document. External
//     references are refused outright, so nothing downstream is tempted to
//     fetch a URL an author chose (SSRF).
//   - Constructs whose meaning differs between YAML and JSON tools (merge keys,
//     duplicate keys, non-scalar keys) are refused, so that every consumer of
//     the document - this package, the linter, the data plane, the author's
//     own tools - sees the same API.
//
// Errors are *Error values carrying an RFC 6901 JSON pointer and a line and
// column, so the admin API can show authors exactly where to look.
package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleetgate/fleetgate/internal/model"
)

// MaxSize is the largest document Parse accepts, in bytes. Specs are stored
// verbatim with each version and parsed on upload; 4 MiB is far above real
// API descriptions and bounds the memory the YAML decoder can be made to use.
const MaxSize = 4 << 20

// Format names, as stored in model.Spec.Format.
const (
	FormatOpenAPI  = "openapi"
	FormatAsyncAPI = "asyncapi"
)

// Document is a parsed, well-formed API description.
type Document struct {
	Format      string // "openapi" or "asyncapi"
	Version     string // the value of the `openapi` / `asyncapi` field, e.g. "3.1.0"
	Title       string // info.title
	InfoVersion string // info.version

	// root is the document's root mapping. It is kept, rather than a decoded
	// struct, so that lint rules can report positions and see every field.
	root *yaml.Node
}

// Error is a precise location of a problem in a spec document.
type Error struct {
	Pointer string // RFC 6901 JSON pointer, "" for the root, e.g. "/paths/~1vehicles~1{vin}/get/responses"
	Line    int    // 1-based, 0 when unknown
	Column  int    // 1-based, 0 when unknown
	Message string
}

// Error formats the location first, as editors and CI logs expect:
// "line 12, column 3 (/paths/...): message". Parts that are unknown (line 0,
// the root pointer) are left out.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(", column ")
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if e.Pointer != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("(")
		b.WriteString(e.Pointer)
		b.WriteString(")")
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// errAt builds an Error at pointer ptr, positioned at node n (which may be
// nil when the position is unknown).
func errAt(ptr string, n *yaml.Node, format string, args ...any) *Error {
	e := &Error{Pointer: ptr, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

var (
	// Only released versions are accepted: a gateway must not guess at the
	// semantics of a draft or of a future major version.
	openapiVersionRe  = regexp.MustCompile(`^3\.[01]\.(0|[1-9][0-9]{0,5})$`)
	asyncapiVersionRe = regexp.MustCompile(`^(2\.[0-6]|3\.0)\.(0|[1-9][0-9]{0,5})$`)

	// yamlLineRe extracts the line from yaml.v3 syntax errors, which are plain
	// strings such as "yaml: line 3: mapping values are not allowed here".
	yamlLineRe = regexp.MustCompile(`^line ([0-9]{1,9}): `)
)

// Parse detects the format (OpenAPI 3.0.x / 3.1.x, AsyncAPI 2.x / 3.0.x), in
// JSON or YAML, checks the document is well-formed, and returns it, or an
// *Error naming where it is wrong.
func Parse(content []byte) (*Document, error) {
	if len(content) > MaxSize {
		return nil, &Error{Message: "document exceeds 4 MiB"}
	}
	if len(bytes.TrimSpace(content)) == 0 {
		return nil, &Error{Message: "document is empty"}
	}
	docNode, e := decode(content)
	if e != nil {
		return nil, e
	}
	if len(docNode.Content) != 1 || docNode.Content[0] == nil {
		return nil, &Error{Message: "document is empty"}
	}
	root := docNode.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errAt("", root, "the document root must be a mapping (an object)")
	}

	// The structural walk comes first: it is the only pass that sees every
	// node, so it enforces the limits that make every later pass cheap.
	w := walker{}
	if e := w.walk(root, 0); e != nil {
		return nil, e
	}

	d := &Document{root: root}
	if e := d.detect(); e != nil {
		return nil, e
	}
	if e := d.info(); e != nil {
		return nil, e
	}
	r := newResolver(root)
	if e := checkRefs(&w, r); e != nil {
		return nil, e
	}
	switch d.Format {
	case FormatOpenAPI:
		e = checkOpenAPI(root, strings.HasPrefix(d.Version, "3.0."), r)
	case FormatAsyncAPI:
		e = checkAsyncAPI(root, strings.HasPrefix(d.Version, "2."), r)
	}
	if e != nil {
		return nil, e
	}
	return d, nil
}

// decode parses the first YAML (or JSON) document of content into a node
// tree and refuses any further documents: a stream of several documents has
// no agreed meaning as an API description, and tools differ in which one
// they read.
func decode(content []byte) (doc *yaml.Node, e *Error) {
	// yaml.v3 is a port of libyaml and has panicked on crafted input before
	// (CVE-2022-28948, "internal error" panics on odd comment placement). A
	// spec upload must never take the admin process down, so a panic in the
	// decoder becomes an ordinary error.
	defer func() {
		if r := recover(); r != nil {
			doc, e = nil, &Error{Message: "invalid YAML or JSON: the parser could not process this document"}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(content))
	var first yaml.Node
	if err := dec.Decode(&first); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Message: "document is empty"}
		}
		return nil, syntaxError(err)
	}
	var second yaml.Node
	switch err := dec.Decode(&second); {
	case errors.Is(err, io.EOF):
		return &first, nil
	case err != nil:
		return nil, syntaxError(err)
	default:
		return nil, errAt("", &second, "only one YAML document is allowed; found a second one")
	}
}

// parserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner) errors. yaml.v3 reports a scanner error's line 1-based but a
// parser error's 0-based, so the latter need correcting.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
}

// syntaxError turns a yaml.v3 error into an *Error. yaml.v3 reports the
// line only inside the message text, and it is the line where the enclosing
// construct starts when it knows one (for an unclosed "{", the line of the
// "{"), else of the problem itself. Some errors (on the first line, bad
// UTF-8, unknown anchors) carry no line and get Line 0.
func syntaxError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{}
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
		if parserProblems[msg] {
			e.Line++
		}
	}
	e.Message = "invalid YAML or JSON: " + msg
	return e
}

// detect sets Format and Version from the `openapi` / `asyncapi` field.
func (d *Document) detect() *Error {
	ok, ov := lookup(d.root, "openapi")
	ak, av := lookup(d.root, "asyncapi")
	switch {
	case ok != nil && ak != nil:
		// Point at whichever comes second: that is the line to delete.
		if ak.Line >= ok.Line {
			return errAt("/asyncapi", ak, "document has both \"openapi\" and \"asyncapi\" fields")
		}
		return errAt("/openapi", ok, "document has both \"openapi\" and \"asyncapi\" fields")
	case ok != nil:
		v, isStr := stringValue(ov)
		if !isStr {
			return errAt("/openapi", nodeOr(ov, ok), "openapi must be a string such as \"3.1.0\" (quote it in YAML)")
		}
		if !openapiVersionRe.MatchString(v) {
			return errAt("/openapi", ov, "unsupported OpenAPI version %q; supported: 3.0.x, 3.1.x", clip(v))
		}
		d.Format, d.Version = FormatOpenAPI, v
	case ak != nil:
		v, isStr := stringValue(av)
		if !isStr {
			return errAt("/asyncapi", nodeOr(av, ak), "asyncapi must be a string such as \"3.0.0\" (quote it in YAML)")
		}
		if !asyncapiVersionRe.MatchString(v) {
			return errAt("/asyncapi", av, "unsupported AsyncAPI version %q; supported: 2.0.x to 2.6.x, 3.0.x", clip(v))
		}
		d.Format, d.Version = FormatAsyncAPI, v
	default:
		if sk, _ := lookup(d.root, "swagger"); sk != nil {
			return errAt("/swagger", sk, "Swagger 2.0 is not supported; convert the document to OpenAPI 3")
		}
		return errAt("", d.root, "not an API description: expected an \"openapi\" or \"asyncapi\" field")
	}
	return nil
}

// info checks the info object and copies its title and version.
func (d *Document) info() *Error {
	ik, info := lookup(d.root, "info")
	if ik == nil {
		return errAt("", d.root, "\"info\" is required")
	}
	if info == nil || info.Kind != yaml.MappingNode {
		return errAt("/info", nodeOr(info, ik), "info must be a mapping")
	}
	var e *Error
	if d.Title, e = requiredString(info, "/info", "title"); e != nil {
		return e
	}
	d.InfoVersion, e = requiredString(info, "/info", "version")
	return e
}

// requiredString returns the string field key of mapping m (found at ptr).
func requiredString(m *yaml.Node, ptr, key string) (string, *Error) {
	k, v := lookup(m, key)
	if k == nil {
		return "", errAt(ptr, m, "%q is required", key)
	}
	s, ok := stringValue(v)
	if !ok {
		return "", errAt(child(ptr, key), nodeOr(v, k), "%s must be a string (quote it in YAML, e.g. \"1.0\")", key)
	}
	return s, nil
}

// Bindings extracts protocol bindings from the document: HTTP (or CoAP, for
// coap:// servers) from OpenAPI, MQTT from AsyncAPI. Parse has already
// checked everything Bindings relies on, so it reports no errors; on a
// Document not produced by Parse it returns what it can, possibly nothing.
// A Document is never modified after Parse, so Bindings is safe for
// concurrent use.
func (d *Document) Bindings() model.Bindings {
	if d == nil || d.root == nil || d.root.Kind != yaml.MappingNode {
		return model.Bindings{}
	}
	switch d.Format {
	case FormatOpenAPI:
		return openapiBindings(d.root)
	case FormatAsyncAPI:
		return asyncapiBindings(d.root, strings.HasPrefix(d.Version, "2."))
	}
	return model.Bindings{}
}

// Root returns the document's root mapping, with the line and column of
// every node, for passes that need to see the whole document (lint rules,
// breaking-change diffs). It is read-only: callers must not modify it, since
// a Document is shared and Bindings and Security read the same tree
// concurrently. It returns nil for a nil Document.
func (d *Document) Root() *yaml.Node {
	if d == nil {
		return nil
	}
	return d.root
}

// nodeOr returns n, or fallback when n is nil; for positioning errors on a
// value that is missing or unresolvable.
func nodeOr(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

// clip shortens s for quoting in an error message, so that a hostile value
// cannot make error messages (and the logs they land in) huge.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
