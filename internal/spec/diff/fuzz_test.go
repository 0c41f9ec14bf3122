package diff

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/spec"
)

// fuzzHeaders are valid beginnings of each supported format, so that
// mutations reach the comparison rather than failing format detection.
var fuzzHeaders = []string{
	"openapi: 3.0.3\ninfo: {title: t, version: v}\n",
	"openapi: 3.1.0\ninfo: {title: t, version: v}\n",
	"asyncapi: 2.6.0\ninfo: {title: t, version: v}\n",
	"asyncapi: 3.0.0\ninfo: {title: t, version: v}\n",
}

// fuzzLimit is how long one Compare may take; generous for race-
// instrumented parallel workers, and far beyond what real documents need.
const fuzzLimit = 60 * time.Second // a hang, not a slow run on a loaded CI machine

// FuzzCompare checks that Compare never panics on documents spec.Parse
// accepts, finishes in bounded time, returns sorted changes, and finds no
// change between a document and itself.
func FuzzCompare(f *testing.F) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, dir := range dirs {
		o, err1 := os.ReadFile(filepath.Join(dir, "old.yaml"))
		n, err2 := os.ReadFile(filepath.Join(dir, "new.yaml"))
		if err1 != nil || err2 != nil {
			f.Fatal(err1, err2)
		}
		f.Add(o, n)
	}
	for _, s := range [][2]string{
		{"paths: {/a: {get: {security: [{k: [x]}], responses: {'200': {content: {a/b: {schema: {$ref: '#/components/schemas/s'}}}}}}}}\ncomponents: {schemas: {s: {type: object, properties: {p: {$ref: '#/components/schemas/s'}}}}}\n",
			"paths: {/a: {get: {security: [{k: [x, y]}], responses: {'200': {content: {a/b: {schema: {$ref: '#/components/schemas/s'}}}}}}}}\ncomponents: {schemas: {s: {type: object, required: [p], allOf: [{$ref: '#/components/schemas/s'}]}}}\n"},
		{"paths: {/a/{x}: {$ref: '#/paths/~1b~1{y}'}, /b/{y}: {put: {parameters: [{name: y, in: path}]}}}\n",
			"paths: {/a/{z}: {post: {requestBody: {$ref: '#/components/requestBodies/b'}}}}\ncomponents: {requestBodies: {b: {required: true}}}\n"},
		{"channels: {a/{b}: {publish: {message: {oneOf: [{messageId: m, payload: {type: string, enum: [x]}}]}}}}\n",
			"channels: {c: {address: 'a/{c}', messages: {m: {payload: {schemaFormat: x, schema: {type: integer}}}}}}\noperations: {o: {action: send, channel: {$ref: '#/channels/c'}}}\n"},
	} {
		for _, h := range fuzzHeaders {
			f.Add([]byte(h+s[0]), []byte(h+s[1]))
		}
		f.Add([]byte(fuzzHeaders[2]+s[0]), []byte(fuzzHeaders[3]+s[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		checkCompare(t, a, b)
		for _, h := range fuzzHeaders {
			checkCompare(t, append([]byte(h), a...), append([]byte(h), b...))
		}
	})
}

func checkCompare(t *testing.T, a, b []byte) {
	t.Helper()
	old, err := spec.Parse(a)
	if err != nil {
		return
	}
	for _, pair := range [][2]*spec.Document{{old, old}, {old, parseOrNil(b)}} {
		if pair[1] == nil {
			continue
		}
		start := time.Now()
		cs := Compare(pair[0], pair[1])
		if d := time.Since(start); d > fuzzLimit {
			t.Fatalf("Compare took %v", d)
		}
		if !sorted(cs) {
			t.Fatalf("changes not sorted: %v", cs)
		}
		for _, c := range cs {
			if c.Kind == "" || c.Message == "" {
				t.Fatalf("malformed change %+v", c)
			}
			if pair[0] == pair[1] && c.Kind != "diff-incomplete" {
				t.Fatalf("document differs from itself: %v", c)
			}
		}
		if RequiresMajor(cs, "v1", "v1") != Breaking(cs) || RequiresMajor(cs, "v1", "v2") {
			t.Fatal("RequiresMajor inconsistent with Breaking")
		}
	}
}

func parseOrNil(b []byte) *spec.Document {
	d, err := spec.Parse(b)
	if err != nil {
		return nil
	}
	return d
}
