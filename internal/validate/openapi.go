package validate

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Synthetic URLs of the two compilation variants of an OpenAPI document. They
// are never fetched; the compiler's loader refuses every URL.
const (
	requestURL  = "mem://request.json"
	responseURL = "mem://response.json"
)

// DefaultMaxBodyBytes is the body limit of an operation that does not set
// x-fleetgate-max-body-bytes.
const DefaultMaxBodyBytes = 1 << 20

const maxBodyExtension = "x-fleetgate-max-body-bytes"

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Input is the part of a request that Validate checks. The caller fills it
// after routing; nothing is retained after Validate returns.
type Input struct {
	// PathParams maps each template variable ("vin" for "{vin}") to its
	// already percent-decoded value.
	PathParams map[string]string
	// Query is the parsed query string (url.ParseQuery of the raw query).
	Query url.Values
	// Header holds the request headers with canonical keys, as net/http
	// builds them.
	Header http.Header
	// ContentType is the Content-Type header value, parameters included.
	ContentType string
	// Body is the request body, already bounded by the caller (see
	// MaxBodyBytes). It must not be modified during Validate.
	Body []byte
}

// Operation validates requests to one operation.
type Operation struct {
	method, path string
	params       []*param
	body         *bodySpec // nil: the operation declares no requestBody
	maxBody      int64
	responses    map[int]*responseSpec // exact status codes
	ranges       [6]*responseSpec      // "1XX".."5XX"
	defaultResp  *responseSpec
	anyResponse  bool // the operation declares at least one response
	pool         *scratchPool
}

type bodySpec struct {
	required bool
	media    []mediaType
}

type responseSpec struct{ media []mediaType }

// mediaType is a declared content entry. name is lowercased without
// parameters; it may be a range ("application/*", "*/*").
type mediaType struct {
	name   string
	schema *prog // nil when the entry has no schema
}

// CompileOpenAPI compiles every operation of an OpenAPI 3.0 or 3.1 document,
// in JSON or YAML. Errors name the JSON pointer of the offending part.
// External $refs are refused.
func CompileOpenAPI(doc []byte) (*Set, error) {
	root, err := loadDocument(doc)
	if err != nil {
		return nil, err
	}
	version, _ := root["openapi"].(string)
	oas30 := strings.HasPrefix(version, "3.0.")
	if !oas30 && !strings.HasPrefix(version, "3.1.") {
		return nil, fmt.Errorf("/openapi: unsupported version %q, want 3.0.x or 3.1.x", version)
	}
	c := &oasCompiler{
		req:  deepCopy(root).(map[string]any),
		resp: deepCopy(root).(map[string]any),
		set:  &Set{ops: map[opKey]*Operation{}},
		pool: newScratchPool(),
	}
	c.trReq = newTranslator(c.req, oas30, "readOnly")
	c.trResp = newTranslator(c.resp, oas30, "writeOnly")
	if c.sc, err = newSchemaCompiler(jsonschema.Draft2020, map[string]any{requestURL: c.req, responseURL: c.resp}); err != nil {
		return nil, err
	}
	paths, _ := c.req["paths"].(map[string]any)
	for _, tpl := range slices.Sorted(maps.Keys(paths)) {
		if strings.HasPrefix(tpl, "x-") {
			continue // a specification extension, not a path
		}
		item, itemAt, err := deref(c.req, paths[tpl], []string{"paths", tpl})
		if err != nil {
			return nil, err
		}
		for _, method := range httpMethods {
			opv, ok := item[method]
			if !ok {
				continue
			}
			op, err := c.operation(item, itemAt, opv, appendTok(itemAt, method))
			if err != nil {
				return nil, err
			}
			op.method, op.path = strings.ToUpper(method), tpl
			c.set.ops[opKey{op.method, tpl}] = op
		}
	}
	return c.set, nil
}

type oasCompiler struct {
	req, resp     map[string]any
	trReq, trResp *translator
	sc            *schemaCompiler
	set           *Set
	pool          *scratchPool
}

// requestSchema translates and compiles the request-variant schema at at.
func (c *oasCompiler) requestSchema(at []string) (*prog, error) {
	if err := c.trReq.schemaAt(at); err != nil {
		return nil, err
	}
	return c.sc.compile(requestURL, at)
}

func (c *oasCompiler) operation(item map[string]any, itemAt []string, opv any, at []string) (*Operation, error) {
	opm, ok := opv.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: expected an object", pointer(at))
	}
	op := &Operation{maxBody: DefaultMaxBodyBytes, responses: map[int]*responseSpec{}, pool: c.pool}
	if err := c.parameters(op, item, itemAt, opm, at); err != nil {
		return nil, err
	}
	limit, err := bodyLimit(opm, at)
	if err != nil {
		return nil, err
	}
	if rb, ok := opm["requestBody"]; ok {
		rbm, rbAt, err := deref(c.req, rb, appendTok(at, "requestBody"))
		if err != nil {
			return nil, err
		}
		rbLimit, err := bodyLimit(rbm, rbAt)
		if err != nil {
			return nil, err
		}
		if limit == 0 || (rbLimit > 0 && rbLimit < limit) {
			limit = rbLimit
		}
		op.body = &bodySpec{}
		op.body.required, _ = rbm["required"].(bool)
		if op.body.media, err = c.content(rbm, rbAt, c.requestSchema); err != nil {
			return nil, err
		}
	}
	if limit > 0 {
		op.maxBody = limit
	}
	if err := c.responses(op, at); err != nil {
		return nil, err
	}
	return op, nil
}

// bodyLimit reads x-fleetgate-max-body-bytes; 0 means unset.
func bodyLimit(m map[string]any, at []string) (int64, error) {
	v, ok := m[maxBodyExtension]
	if !ok {
		return 0, nil
	}
	n, _ := v.(json.Number)
	limit, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || limit <= 0 {
		return 0, fmt.Errorf("%s: want a positive integer", pointer(appendTok(at, maxBodyExtension)))
	}
	return limit, nil
}

// content compiles the entries of a content map (requestBody or response).
func (c *oasCompiler) content(m map[string]any, at []string, compile func([]string) (*prog, error)) ([]mediaType, error) {
	content, _ := m["content"].(map[string]any)
	var out []mediaType
	for _, name := range slices.Sorted(maps.Keys(content)) {
		mt := mediaType{name: normalizeMediaType(name)}
		entry, _ := content[name].(map[string]any)
		if _, ok := entry["schema"]; ok {
			var err error
			if mt.schema, err = compile(appendTok(at, "content", name, "schema")); err != nil {
				return nil, err
			}
		}
		out = append(out, mt)
	}
	return out, nil
}

func (c *oasCompiler) responses(op *Operation, at []string) error {
	opv, _ := lookup(c.resp, at)
	opm, _ := opv.(map[string]any)
	responses, _ := opm["responses"].(map[string]any)
	compile := func(at []string) (*prog, error) {
		if err := c.trResp.schemaAt(at); err != nil {
			return nil, err
		}
		return c.sc.compile(responseURL, at)
	}
	for _, code := range slices.Sorted(maps.Keys(responses)) {
		if strings.HasPrefix(code, "x-") {
			continue
		}
		rm, rAt, err := deref(c.resp, responses[code], appendTok(at, "responses", code))
		if err != nil {
			return err
		}
		media, err := c.content(rm, rAt, compile)
		if err != nil {
			return err
		}
		spec := &responseSpec{media: media}
		op.anyResponse = true
		upper := strings.ToUpper(code)
		switch {
		case code == "default":
			op.defaultResp = spec
		case len(upper) == 3 && upper[0] >= '1' && upper[0] <= '5' && upper[1:] == "XX":
			op.ranges[upper[0]-'0'] = spec
		default:
			status, err := strconv.Atoi(code)
			if err != nil || status < 100 || status > 599 {
				return fmt.Errorf("%s: invalid response code", pointer(appendTok(at, "responses", code)))
			}
			op.responses[status] = spec
		}
	}
	return nil
}

// MaxBodyBytes is the operation's body limit: the
// x-fleetgate-max-body-bytes extension of the operation or of its
// requestBody (the smaller when both are set), else DefaultMaxBodyBytes.
// The caller bounds its body read with it; Validate also refuses a longer
// body.
func (o *Operation) MaxBodyBytes() int64 { return o.maxBody }

// Validate checks the parameters (path, query, header, cookie: presence,
// coercion of the string value to the schema's type, then the schema) and
// the request body (presence when required, content type among the
// declared ones, then the JSON schema when the content type is JSON). It
// returns nil or the first error, in that order.
//
// A body is only schema-checked when its media type is JSON
// (application/json or a +json suffix); other declared media types pass on
// their content type alone. A body sent to an operation without a
// requestBody is not checked.
func (o *Operation) Validate(in *Input) *Error {
	s := o.pool.get()
	defer o.pool.put(s)
	for _, p := range o.params {
		if err := p.validate(s, in); err != nil {
			return err
		}
	}
	if int64(len(in.Body)) > o.maxBody {
		return &Error{Pointer: "/body", Keyword: "maxBodyBytes",
			Detail: fmt.Sprintf("body is %d bytes, the limit is %d", len(in.Body), o.maxBody)}
	}
	if o.body == nil {
		return nil
	}
	if len(in.Body) == 0 {
		if o.body.required {
			return &Error{Pointer: "/body", Keyword: "required", Detail: "a request body is required"}
		}
		return nil
	}
	return checkContent(s, o.body.media, in.ContentType, in.Body)
}

// ValidateResponse checks a response body against the schema declared for
// status (an exact code, else its "2XX"-style range, else "default"). It is
// meant for log-only mode. An undeclared status is an error only when the
// operation declares responses at all; an empty body is not checked.
func (o *Operation) ValidateResponse(status int, contentType string, body []byte) *Error {
	spec := o.responses[status]
	if spec == nil && status >= 100 && status <= 599 {
		spec = o.ranges[status/100]
	}
	if spec == nil {
		spec = o.defaultResp
	}
	if spec == nil {
		if !o.anyResponse {
			return nil
		}
		return &Error{Pointer: "/status", Keyword: "responses", Detail: fmt.Sprintf("status %d is not declared", status)}
	}
	if len(body) == 0 || len(spec.media) == 0 {
		return nil
	}
	s := o.pool.get()
	defer o.pool.put(s)
	return checkContent(s, spec.media, contentType, body)
}

func checkContent(s *scratch, media []mediaType, contentType string, body []byte) *Error {
	mt := mediaTypeOf(contentType)
	entry := matchMediaType(media, mt)
	if entry == nil {
		if mt == "" {
			return &Error{Pointer: "/body", Keyword: "contentType", Detail: "a body was sent without a Content-Type"}
		}
		return &Error{Pointer: "/body", Keyword: "contentType", Detail: fmt.Sprintf("content type %q is not declared", mt)}
	}
	if entry.schema == nil || !isJSONMediaType(mt) {
		return nil
	}
	return s.validateJSON(entry.schema, body, "/body")
}

// mediaTypeOf strips parameters and spaces from a Content-Type value.
func mediaTypeOf(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

func normalizeMediaType(ct string) string { return strings.ToLower(mediaTypeOf(ct)) }

// matchMediaType picks the most specific declared entry for mt: exact, then
// "type/*", then "*/*" (RFC 9110 section 12.5.1 precedence).
func matchMediaType(media []mediaType, mt string) *mediaType {
	if mt == "" {
		return nil
	}
	var typeRange, anyRange *mediaType
	slash := strings.IndexByte(mt, '/')
	for i := range media {
		m := &media[i]
		switch {
		case strings.EqualFold(m.name, mt):
			return m
		case m.name == "*/*":
			anyRange = m
		case slash > 0 && strings.HasSuffix(m.name, "/*") && len(m.name) == slash+2 && strings.EqualFold(m.name[:slash], mt[:slash]):
			typeRange = m
		}
	}
	if typeRange != nil {
		return typeRange
	}
	return anyRange
}

func isJSONMediaType(mt string) bool {
	return strings.EqualFold(mt, "application/json") ||
		(len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json"))
}
