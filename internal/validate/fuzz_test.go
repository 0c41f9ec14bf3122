package validate

import (
	"os"
	"testing"
	"time"
)

// FuzzValidateBody sends arbitrary bodies to a compiled operation whose
// schema exercises most keywords: validation must never panic, and must
// return nil or an *Error rooted at /body.
func FuzzValidateBody(f *testing.F) {
	for _, s := range []string{telemetryBody, `{}`, `[]`, `{"location":{"lat":"x"}}`, `{"a":` + "\"\\ud800\"}", `{"name":"a","children":[{"name":"b"}]}`} {
		f.Add([]byte(s))
	}
	s30 := mustOpenAPI(f, "openapi30.yaml")
	s31 := mustOpenAPI(f, "openapi31.json")
	ops := []*Operation{
		s30.Operation("POST", "/vehicles/{vin}/telemetry"),
		s30.Operation("PUT", "/routes"),
		s31.Operation("POST", "/vehicles/{vin}/commands"),
		s31.Operation("POST", "/config/tree"),
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, op := range ops {
			in := base30("POST /vehicles/{vin}/telemetry")
			in.Query.Set("priority", "1")
			in.Body = b
			if err := op.Validate(in); err != nil && (err.Pointer == "" || err.Keyword == "") {
				t.Fatalf("incomplete error %+v", err)
			}
		}
	})
}

// FuzzCompile compiles arbitrary documents: no panic, and bounded time.
func FuzzCompile(f *testing.F) {
	for _, name := range []string{"openapi30.yaml", "openapi31.json", "asyncapi26.yaml", "asyncapi30.yaml"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"openapi":"3.1.0","paths":{"/a":{"get":{"parameters":[{"name":"x","in":"query","schema":{"$ref":"#"}}]}}}}`))
	f.Add([]byte("openapi: 3.0.0\npaths: {/a: {post: {requestBody: {content: {application/json: {schema: {$ref: '#/paths'}}}}}}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		start := time.Now()
		if s, err := CompileOpenAPI(b); err == nil {
			for _, op := range s.ops {
				op.Validate(&Input{ContentType: "application/json", Body: []byte(`{"a":[1,{"b":null}]}`)})
			}
		}
		if s, err := CompileAsyncAPI(b); err == nil {
			for _, m := range s.channels {
				m.ValidatePayload([]byte(`{"a":[1,{"b":null}]}`))
			}
		}
		if d := time.Since(start); d > 60*time.Second { // catches a hang, not a slow machine
			t.Fatalf("compiling a %d-byte document took %v", len(b), d)
		}
	})
}
