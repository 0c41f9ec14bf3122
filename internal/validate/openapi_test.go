package validate

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// reqCase is one request against one operation. A case with an empty ptr
// must pass; any other must fail at exactly ptr with keyword kw.
type reqCase struct {
	name   string
	op     string // "METHOD /template"
	mutate func(in *Input)
	ptr    string
	kw     string
}

func runReqCases(t *testing.T, s *Set, base func(op string) *Input, cases []reqCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method, tpl, _ := strings.Cut(tc.op, " ")
			op := s.Operation(method, tpl)
			if op == nil {
				t.Fatalf("no operation %s", tc.op)
			}
			in := base(tc.op)
			if tc.mutate != nil {
				tc.mutate(in)
			}
			err := op.Validate(in)
			checkErr(t, err, tc.ptr, tc.kw)
		})
	}
}

func checkErr(t *testing.T, err *Error, ptr, kw string) {
	t.Helper()
	switch {
	case ptr == "" && err != nil:
		t.Fatalf("want valid, got %v", err)
	case ptr != "" && err == nil:
		t.Fatalf("want error at %s (%s), got nil", ptr, kw)
	case ptr != "" && (err.Pointer != ptr || err.Keyword != kw):
		t.Fatalf("want error at %s (%s), got %s (%s): %s", ptr, kw, err.Pointer, err.Keyword, err.Detail)
	}
}

func body(s string) func(*Input) { return func(in *Input) { in.Body = []byte(s) } }

func query(kv ...string) func(*Input) {
	return func(in *Input) {
		in.Query = url.Values{}
		for i := 0; i < len(kv); i += 2 {
			in.Query.Add(kv[i], kv[i+1])
		}
	}
}

// replaceBody edits the valid base body of the telemetry operation.
func replaceBody(old, new string) func(*Input) {
	return func(in *Input) { in.Body = []byte(strings.Replace(string(in.Body), old, new, 1)) }
}

const telemetryBody = `{"timestamp":"2024-05-01T12:34:56Z","odometer":10.5,
"location":{"lat":48.1,"lon":11.5,"heading":271},
"battery":{"soc":76.5,"temperature":31.2,"cells":[3.71,3.72,3.70]},
"tires":[{"position":"FL","pressure":240},{"position":"FR","pressure":241}],
"driver":"Jane"}`

func base30(op string) *Input {
	in := &Input{
		PathParams: map[string]string{"vin": "WDB1234561A123456"},
		Query:      url.Values{},
		Header:     http.Header{},
	}
	if op == "POST /vehicles/{vin}/telemetry" {
		in.Query.Set("limit", "10")
		in.Header.Set("X-Trace-Id", "0123456789abcdef")
		in.ContentType = "application/json"
		in.Body = []byte(telemetryBody)
	}
	return in
}

func TestOpenAPI30Requests(t *testing.T) {
	s := mustOpenAPI(t, "openapi30.yaml")
	const post = "POST /vehicles/{vin}/telemetry"
	const get = "GET /vehicles/{vin}/battery"
	const put = "PUT /routes"
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	runReqCases(t, s, base30, []reqCase{
		{name: "valid", op: post},
		{name: "optional query absent", op: post, mutate: func(in *Input) { in.Query.Del("limit") }},
		{name: "readOnly required property not sent", op: post, mutate: replaceBody(`"timestamp"`, `"timestamp"`)},
		{name: "nullable null", op: post, mutate: replaceBody(`"Jane"`, `null`)},
		{name: "nullable nested null", op: post, mutate: replaceBody(`"temperature":31.2`, `"temperature":null`)},
		{name: "content type parameters and case", op: post, mutate: func(in *Input) { in.ContentType = "Application/JSON; charset=utf-8" }},
		{name: "non-JSON declared media type is not parsed", op: post, mutate: func(in *Input) {
			in.ContentType, in.Body = "application/octet-stream", []byte{0xff, 0x00}
		}},
		{name: "ignored Content-Type header parameter", op: post, mutate: func(in *Input) { in.Header.Del("Content-Type") }},
		{name: "boolean query", op: post, mutate: func(in *Input) { in.Query.Set("dryRun", "true") }},
		{name: "vin pattern", op: post, mutate: func(in *Input) { in.PathParams["vin"] = "wdb1234561a123456" }, ptr: "/path/vin", kw: "pattern"},
		{name: "vin missing", op: post, mutate: func(in *Input) { delete(in.PathParams, "vin") }, ptr: "/path/vin", kw: "required"},
		{name: "operation parameter overrides path-level one", op: post, mutate: func(in *Input) { in.Query.Set("limit", "x") }, ptr: "/query/limit", kw: "type"},
		{name: "limit below minimum", op: post, mutate: func(in *Input) { in.Query.Set("limit", "0") }, ptr: "/query/limit", kw: "minimum"},
		{name: "limit above maximum", op: post, mutate: func(in *Input) { in.Query.Set("limit", "101") }, ptr: "/query/limit", kw: "maximum"},
		{name: "limit not a JSON number", op: post, mutate: func(in *Input) { in.Query.Set("limit", "0x10") }, ptr: "/query/limit", kw: "type"},
		{name: "limit repeated", op: post, mutate: func(in *Input) { in.Query.Add("limit", "20") }, ptr: "/query/limit", kw: "type"},
		{name: "boolean query not boolean", op: post, mutate: func(in *Input) { in.Query.Set("dryRun", "yes") }, ptr: "/query/dryRun", kw: "type"},
		{name: "required header missing", op: post, mutate: func(in *Input) { in.Header.Del("X-Trace-Id") }, ptr: "/header/X-Trace-Id", kw: "required"},
		{name: "header pattern", op: post, mutate: func(in *Input) { in.Header.Set("X-Trace-Id", "xyz") }, ptr: "/header/X-Trace-Id", kw: "pattern"},
		{name: "repeated header lines are combined", op: post, mutate: func(in *Input) { in.Header.Add("X-Trace-Id", "0123456789abcdef") }, ptr: "/header/X-Trace-Id", kw: "pattern"},
		{name: "body missing", op: post, mutate: body(""), ptr: "/body", kw: "required"},
		{name: "content type not declared", op: post, mutate: func(in *Input) { in.ContentType = "text/plain" }, ptr: "/body", kw: "contentType"},
		{name: "content type missing", op: post, mutate: func(in *Input) { in.ContentType = "" }, ptr: "/body", kw: "contentType"},
		{name: "malformed JSON", op: post, mutate: body(`{"timestamp":`), ptr: "/body", kw: "json"},
		{name: "trailing data", op: post, mutate: body(`{} {}`), ptr: "/body", kw: "json"},
		{name: "too deep", op: post, mutate: body(deep), ptr: "/body", kw: "json"},
		{name: "duplicate member", op: post, mutate: replaceBody(`"driver":"Jane"`, `"driver":"Jane","driver":"Joe"`), ptr: "/body", kw: "json"},
		{name: "invalid UTF-8", op: post, mutate: replaceBody(`"Jane"`, "\"J\xffne\""), ptr: "/body", kw: "json"},
		{name: "lone surrogate", op: post, mutate: replaceBody(`"Jane"`, `"\ud800"`), ptr: "/body", kw: "json"},
		{name: "top-level array", op: post, mutate: body(`[]`), ptr: "/body", kw: "type"},
		{name: "nested required missing", op: post, mutate: replaceBody(`"lat":48.1,`, ``), ptr: "/body/location/lat", kw: "required"},
		{name: "required $ref'd object missing", op: post, mutate: replaceBody(`"battery":`, `"batteryX":`), ptr: "/body/battery", kw: "required"},
		{name: "nested maximum", op: post, mutate: replaceBody(`48.1`, `91`), ptr: "/body/location/lat", kw: "maximum"},
		{name: "boolean exclusiveMaximum", op: post, mutate: replaceBody(`271`, `360`), ptr: "/body/location/heading", kw: "exclusiveMaximum"},
		{name: "boolean exclusiveMinimum", op: post, mutate: replaceBody(`10.5`, `0`), ptr: "/body/odometer", kw: "exclusiveMinimum"},
		{name: "integer with fraction", op: post, mutate: replaceBody(`271`, `270.5`), ptr: "/body/location/heading", kw: "type"},
		{name: "integer written as 2.7e2", op: post, mutate: replaceBody(`271`, `2.7e2`)},
		{name: "array item", op: post, mutate: replaceBody(`3.72`, `7`), ptr: "/body/battery/cells/1", kw: "maximum"},
		{name: "nullable type still checked", op: post, mutate: replaceBody(`"Jane"`, `5`), ptr: "/body/driver", kw: "type"},
		{name: "maxLength", op: post, mutate: replaceBody(`"Jane"`, `"`+strings.Repeat("é", 33)+`"`), ptr: "/body/driver", kw: "maxLength"},
		{name: "additional property", op: post, mutate: replaceBody(`"driver"`, `"a/b~c":1,"driver"`), ptr: "/body/a~1b~0c", kw: "additionalProperties"},
		{name: "enum in $ref'd array item", op: post, mutate: replaceBody(`"FR"`, `"XX"`), ptr: "/body/tires/1/position", kw: "enum"},
		{name: "maxItems", op: post, mutate: replaceBody(`"tires":[`, `"tires":[{"position":"FL","pressure":1},{"position":"FL","pressure":1},{"position":"FL","pressure":1},{"position":"FL","pressure":1},{"position":"FL","pressure":1},`), ptr: "/body/tires", kw: "maxItems"},
		{name: "date-time format", op: post, mutate: replaceBody(`2024-05-01T12:34:56Z`, `2024-05-01 12:34:56`), ptr: "/body/timestamp", kw: "format"},
		{name: "date-time impossible day", op: post, mutate: replaceBody(`2024-05-01`, `2023-02-29`), ptr: "/body/timestamp", kw: "format"},
		{name: "body over extension limit", op: post, mutate: body(`{"driver":"` + strings.Repeat("x", 65536) + `"}`), ptr: "/body", kw: "maxBodyBytes"},

		{name: "array query, form not exploded", op: get, mutate: query("fields", "soc,voltage")},
		{name: "array query item enum", op: get, mutate: query("fields", "soc,volts"), ptr: "/query/fields/1", kw: "enum"},
		{name: "array query maxItems", op: get, mutate: query("fields", "soc,soc,soc,soc"), ptr: "/query/fields", kw: "maxItems"},
		{name: "exploded array query", op: get, mutate: query("cells", "1", "cells", "2")},
		{name: "exploded array item coerced", op: get, mutate: query("cells", "1", "cells", "-2"), ptr: "/query/cells/1", kw: "minimum"},
		{name: "exploded array item type", op: get, mutate: query("cells", "one"), ptr: "/query/cells/0", kw: "type"},
		{name: "deepObject", op: get, mutate: query("window[from]", "1", "window[to]", "2")},
		{name: "deepObject required property", op: get, mutate: query("window[to]", "2"), ptr: "/query/window/from", kw: "required"},
		{name: "deepObject property type", op: get, mutate: query("window[from]", "soon"), ptr: "/query/window/from", kw: "type"},
		{name: "cookie", op: get, mutate: func(in *Input) { in.Header.Set("Cookie", "a=b; session=0123456789") }},
		{name: "cookie minLength", op: get, mutate: func(in *Input) { in.Header.Set("Cookie", "session=abc") }, ptr: "/cookie/session", kw: "minLength"},
		{name: "JSON content parameter", op: get, mutate: query("filter", `{"minSoc":50}`)},
		{name: "JSON content parameter schema", op: get, mutate: query("filter", `{"minSoc":101}`), ptr: "/query/filter/minSoc", kw: "maximum"},
		{name: "JSON content parameter malformed", op: get, mutate: query("filter", `{"minSoc"`), ptr: "/query/filter", kw: "json"},
		{name: "query key without values", op: get, mutate: func(in *Input) { in.Query = url.Values{"filter": {}, "window[from]": {}, "cells": {}} }, ptr: "/query/window/from", kw: "type"},
		{name: "body on operation without requestBody", op: get, mutate: func(in *Input) { in.Body = []byte("anything") }},

		{name: "recursive schema", op: put, mutate: func(in *Input) {
			in.ContentType = "application/json"
			in.Body = []byte(`{"name":"a","children":[{"name":"b","children":[{"name":"c","children":[]}]}]}`)
		}},
		{name: "recursive schema, deep error", op: put, mutate: func(in *Input) {
			in.ContentType = "application/json"
			in.Body = []byte(`{"name":"a","children":[{"name":"b","children":[{"name":"c"},{"children":[]}]}]}`)
		}, ptr: "/body/children/0/children/1/name", kw: "required"},
		{name: "media type range", op: put, mutate: func(in *Input) {
			in.ContentType, in.Body = "application/merge-patch+json", []byte(`[1]`)
		}, ptr: "/body", kw: "type"},
		{name: "optional body absent", op: put},
	})
}

func base31(op string) *Input {
	in := &Input{
		PathParams:  map[string]string{"vin": "WDB1234561A123456"},
		Query:       url.Values{"priority": {"5"}},
		Header:      http.Header{},
		ContentType: "application/json",
		Body:        []byte(`{"name":"lock","args":["now",null],"issuedAt":"2024-05-01T12:00:00+02:00"}`),
	}
	if op == "POST /config/tree" {
		in.Body = []byte(`{"key":"root","children":[{"key":"a","value":1},{"key":"b","value":null,"children":[{"key":"c","value":"x"}]}]}`)
	}
	return in
}

func TestOpenAPI31Requests(t *testing.T) {
	s := mustOpenAPI(t, "openapi31.json")
	const cmd = "POST /vehicles/{vin}/commands"
	const tree = "POST /config/tree"
	runReqCases(t, s, base31, []reqCase{
		{name: "valid", op: cmd},
		{name: "climate with target", op: cmd, mutate: body(`{"name":"climate","args":[],"issuedAt":"2024-05-01T12:00:00Z","target":21.5}`)},
		{name: "header array", op: cmd, mutate: func(in *Input) { in.Header.Set("X-Request-Tags", "a, b") }},
		{name: "multipleOf", op: cmd, mutate: func(in *Input) { in.Query.Set("ratio", "1.5") }},
		{name: "multipleOf fails", op: cmd, mutate: func(in *Input) { in.Query.Set("ratio", "0.75") }, ptr: "/query/ratio", kw: "multipleOf"},
		{name: "required query", op: cmd, mutate: func(in *Input) { in.Query.Del("priority") }, ptr: "/query/priority", kw: "required"},
		{name: "numeric exclusiveMinimum", op: cmd, mutate: func(in *Input) { in.Query.Set("priority", "0") }, ptr: "/query/priority", kw: "exclusiveMinimum"},
		{name: "header array uniqueItems", op: cmd, mutate: func(in *Input) { in.Header.Set("X-Request-Tags", "a,b,a") }, ptr: "/header/X-Request-Tags/2", kw: "uniqueItems"},
		{name: "header array item", op: cmd, mutate: func(in *Input) { in.Header.Set("X-Request-Tags", "a, toolongtag") }, ptr: "/header/X-Request-Tags/1", kw: "maxLength"},
		{name: "path-level $ref'd parameter", op: cmd, mutate: func(in *Input) { in.PathParams["vin"] = "short" }, ptr: "/path/vin", kw: "minLength"},
		{name: "enum without type", op: cmd, mutate: replaceBody(`"lock"`, `"fly"`), ptr: "/body/name", kw: "enum"},
		{name: "prefixItems type", op: cmd, mutate: replaceBody(`null]`, `"x"]`), ptr: "/body/args/1", kw: "type"},
		{name: "items false", op: cmd, mutate: replaceBody(`null]`, `null,1]`), ptr: "/body/args/2", kw: "items"},
		{name: "oneOf none", op: cmd, mutate: replaceBody(`"lock"`, `"climate"`), ptr: "/body", kw: "oneOf"},
		{name: "$ref sibling applies", op: cmd, mutate: replaceBody(`"lock"`, `"climate","target":31`), ptr: "/body/target", kw: "maximum"},
		{name: "$ref target applies", op: cmd, mutate: replaceBody(`"lock"`, `"climate","target":5`), ptr: "/body/target", kw: "minimum"},
		{name: "additionalProperties schema", op: cmd, mutate: replaceBody(`"lock"`, `"lock","meta":{"a":1}`), ptr: "/body/meta/a", kw: "type"},
		{name: "propertyNames", op: cmd, mutate: replaceBody(`"lock"`, `"lock","meta":{"A":"x"}`), ptr: "/body/meta/A", kw: "pattern"},
		{name: "const", op: cmd, mutate: replaceBody(`"lock"`, `"lock","version":2.0`)},
		{name: "const differs", op: cmd, mutate: replaceBody(`"lock"`, `"lock","version":3`), ptr: "/body/version", kw: "const"},
		{name: "date-time offset", op: cmd, mutate: replaceBody(`+02:00`, `+25:00`), ptr: "/body/issuedAt", kw: "format"},
		{name: "unevaluatedProperties via library", op: cmd, mutate: replaceBody(`"lock"`, `"lock","options":{"a":"x","b":2}`)},
		{name: "unevaluatedProperties fails via library", op: cmd, mutate: replaceBody(`"lock"`, `"lock","options":{"c":1}`), ptr: "/body/options/c", kw: "unevaluatedProperties"},
		{name: "library nested type", op: cmd, mutate: replaceBody(`"lock"`, `"lock","options":{"b":"x"}`), ptr: "/body/options/b", kw: "type"},
		{name: "recursive $defs", op: tree},
		{name: "recursive $defs deep error", op: tree, mutate: replaceBody(`"value":"x"`, `"value":{}`), ptr: "/body/children/1/children/0/value", kw: "type"},
		{name: "recursive additionalProperties", op: tree, mutate: replaceBody(`"key":"a"`, `"key":"a","x":1`), ptr: "/body/children/0/x", kw: "additionalProperties"},
	})
}

func TestOperationLookup(t *testing.T) {
	s := mustOpenAPI(t, "openapi30.yaml")
	if s.Operation("post", "/vehicles/{vin}/telemetry") == nil {
		t.Error("method should match case-insensitively")
	}
	if s.Operation("GET", "/vehicles/{vin}/telemetry") != nil || s.Operation("POST", "/vehicles/{id}/telemetry") != nil {
		t.Error("undeclared operations must be nil")
	}
	var nilSet *Set
	if nilSet.Operation("GET", "/") != nil || nilSet.Channel("x") != nil {
		t.Error("nil set")
	}
	for _, tc := range []struct {
		name, op string
		want     int64
	}{
		{name: "operation extension", op: "POST /vehicles/{vin}/telemetry", want: 65536},
		{name: "smaller of operation and requestBody", op: "PUT /routes", want: 2048},
		{name: "default", op: "GET /vehicles/{vin}/battery", want: DefaultMaxBodyBytes},
	} {
		method, tpl, _ := strings.Cut(tc.op, " ")
		if got := s.Operation(method, tpl).MaxBodyBytes(); got != tc.want {
			t.Errorf("%s: MaxBodyBytes = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestValidateResponse(t *testing.T) {
	s := mustOpenAPI(t, "openapi30.yaml")
	post := s.Operation("POST", "/vehicles/{vin}/telemetry")
	get := s.Operation("GET", "/vehicles/{vin}/battery")
	put := s.Operation("PUT", "/routes")
	for _, tc := range []struct {
		name   string
		op     *Operation
		status int
		ct     string
		body   string
		ptr    string
		kw     string
	}{
		{name: "writeOnly required property not returned", op: post, status: 202, ct: "application/json", body: `{"id":"r1"}`},
		{name: "readOnly required property still required", op: post, status: 202, ct: "application/json", body: `{"secret":"s"}`, ptr: "/body/id", kw: "required"},
		{name: "status range", op: post, status: 404, ct: "application/problem+json", body: `{"title":5}`, ptr: "/body/title", kw: "type"},
		{name: "undeclared status", op: post, status: 500, ct: "application/json", body: `{}`, ptr: "/status", kw: "responses"},
		{name: "undeclared content type", op: post, status: 202, ct: "text/html", body: `<p>`, ptr: "/body", kw: "contentType"},
		{name: "malformed response", op: post, status: 202, ct: "application/json", body: `{`, ptr: "/body", kw: "json"},
		{name: "schema", op: get, status: 200, ct: "application/json", body: `{"soc":101}`, ptr: "/body/soc", kw: "maximum"},
		{name: "default without content", op: get, status: 503, ct: "text/plain", body: `down`},
		{name: "empty body", op: get, status: 200, ct: "application/json"},
		{name: "no content declared", op: put, status: 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, tc.op.ValidateResponse(tc.status, tc.ct, []byte(tc.body)), tc.ptr, tc.kw)
		})
	}
}

func TestCompileOpenAPIErrors(t *testing.T) {
	const head = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n"
	const body = head + `paths:
  /x:
    post:
      requestBody:
        content:
          application/json:
            schema:
              %s
      responses: {'200': {description: ok}}
`
	schema := func(s string) string { return strings.Replace(body, "%s", s, 1) }
	for _, tc := range []struct {
		name, doc, want string
	}{
		{name: "external $ref in schema", doc: schema(`$ref: 'https://attacker.example/schema.json'`), want: "refused"},
		{name: "relative file $ref", doc: schema(`{properties: {a: {$ref: 'other.yaml#/A'}}}`), want: "refused"},
		{name: "external $ref in parameter", doc: head + "paths:\n  /x:\n    get:\n      parameters: [{$ref: 'http://127.0.0.1/p.json'}]\n      responses: {}\n", want: "refused"},
		{name: "external $schema is not fetched", doc: strings.Replace(schema(`{$schema: 'http://169.254.169.254/meta', type: object}`), "3.0.3", "3.1.0", 1), want: "refused"},
		{name: "dangling $ref", doc: schema(`$ref: '#/components/schemas/Nope'`), want: "Nope"},
		{name: "invalid schema", doc: schema(`{type: integr}`), want: "/paths/~1x/post/requestBody/content/application~1json/schema"},
		{name: "invalid pattern", doc: schema(`{type: string, pattern: '(?<=x)y'}`), want: "schema"},
		{name: "swagger 2", doc: "swagger: '2.0'\n", want: "unsupported version"},
		{name: "not an object", doc: "- a\n- b\n", want: "not an object"},
		{name: "invalid YAML", doc: "openapi: [", want: "YAML"},
		{name: "invalid JSON", doc: `{"openapi": }`, want: "JSON"},
		{name: "bad body limit", doc: strings.Replace(schema(`{type: object}`), "post:", "post:\n      x-fleetgate-max-body-bytes: -1", 1), want: "x-fleetgate-max-body-bytes"},
		{name: "Reference Object cycle", doc: head + "paths:\n  /x:\n    get:\n      parameters: [{$ref: '#/components/parameters/A'}]\n      responses: {}\ncomponents:\n  parameters:\n    A: {$ref: '#/components/parameters/B'}\n    B: {$ref: '#/components/parameters/A'}\n", want: "chained"},
		{name: "YAML alias bomb", doc: aliasBomb(), want: "values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := CompileOpenAPI([]byte(tc.doc))
			if err == nil {
				t.Fatalf("want error containing %q, got a set with %d operations", tc.want, len(s.ops))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// aliasBomb is a "billion laughs" document: nine levels of nine aliases.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("openapi: 3.0.3\na0: &a0 [x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// TestSchemaRefCycle: a schema that refers to itself without consuming the
// instance is legal to compile but can never finish validating; the work
// bound must turn it into an error instead of a hang or a stack overflow.
func TestSchemaRefCycle(t *testing.T) {
	doc := `{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{"/x":{"post":{
	"requestBody":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/A"}}}},"responses":{}}}},
	"components":{"schemas":{"A":{"$ref":"#/components/schemas/B"},"B":{"allOf":[{"$ref":"#/components/schemas/A"}]}}}}`
	s, err := CompileOpenAPI([]byte(doc))
	if err != nil {
		return // refusing at compile time is fine too
	}
	verr := s.Operation("POST", "/x").Validate(&Input{ContentType: "application/json", Body: []byte(`{}`)})
	checkErr(t, verr, "/body", "complexity")
}

func TestErrorString(t *testing.T) {
	e := &Error{Pointer: "/query/limit", Keyword: "maximum", Detail: "101 is greater than 100"}
	if got, want := e.Error(), "invalid /query/limit (maximum): 101 is greater than 100"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
