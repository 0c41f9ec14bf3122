package spec

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// FuzzParse checks that no input makes Parse or Bindings panic, that every
// failure is an *Error, and that bindings come out sorted.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"openapi: 3.0.0\ninfo: {title: t, version: v}\npaths:\n  /a: &p {get: {operationId: x}}\n  /b: *p\n",
		"openapi: 3.1.0\ninfo: {title: t, version: v}\npaths:\n  /a: {$ref: '#/paths/~1b'}\n  /b: {$ref: '#/paths/~1a'}\n",
		"openapi: 3.0.0\ninfo: {title: t, version: v}\nservers: [{url: 'coap://{h}/x', variables: {h: {default: n}}}]\npaths: {/a: {get: {}}}\n",
		"asyncapi: 3.0.0\ninfo: {title: t, version: v}\nchannels: {c: {address: a/{b}}}\noperations: {o: {action: send, channel: {$ref: '#/channels/c'}}}\n",
		"asyncapi: 2.6.0\ninfo: {title: t, version: v}\nchannels: {a/{b}: {publish: {operationId: p}}, c: {$ref: '#/channels/a~1{b}'}}\n",
		"x: &a [*a]\n",
		"paths:\n  /a/{id}: {get: {operationId: g}, $ref: '#/components/p'}\ncomponents: {p: {put: {}}}\n",
		"channels:\n  c/{x}: {address: 'c/{x}', publish: {operationId: p}}\noperations: {o: {action: receive, channel: {$ref: '#/channels/c~1{x}'}}}\n",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
		"y:\n  <<: {a: 1}\n",
		"{\"openapi\": \"3.0.0\", \"info\": {\"title\": \"t\", \"version\": \"v\"}, \"paths\": {}}\n---\n{}\n",
		// Inputs that made earlier yaml.v3 versions panic (go-yaml/yaml
		// issues 323, 560, 665, 666, 744, 855).
		"#\n-\n{", "#\n-\n-\n0", "#\n - - QI\xd7", "0: [:!00 \xef", "a:\n.\n-\n", "\"\\0\\\r\n", "  0: [\n] 0", "? \ufeff: \ufeff\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		checkParse(t, content)
		// Most mutations break format detection; behind a valid header
		// they reach the format checks and Bindings instead.
		for _, h := range fuzzHeaders {
			checkParse(t, append([]byte(h), content...))
		}
	})
}

// fuzzHeaders are valid beginnings of each supported format.
var fuzzHeaders = []string{
	"openapi: 3.0.3\ninfo: {title: t, version: v}\n",
	"openapi: 3.1.0\ninfo: {title: t, version: v}\n",
	"asyncapi: 2.6.0\ninfo: {title: t, version: v}\n",
	"asyncapi: 3.0.0\ninfo: {title: t, version: v}\n",
}

// checkParse checks Parse's contract on one input.
func checkParse(t *testing.T, content []byte) {
	t.Helper()
	d, err := Parse(content)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T is not an *Error: %v", err, err)
		}
		if d != nil {
			t.Fatal("Parse returned both a Document and an error")
		}
		_ = e.Error()
		return
	}
	if d == nil {
		t.Fatal("Parse returned neither a Document nor an error")
	}
	b := d.Bindings()
	switch d.Format {
	case FormatOpenAPI:
		if (b.HTTP == nil) == (b.CoAP == nil) || b.MQTT != nil {
			t.Fatalf("openapi document gave bindings %+v", b)
		}
		if b.HTTP != nil && !sort.SliceIsSorted(b.HTTP.Operations, func(i, j int) bool {
			x, y := b.HTTP.Operations[i], b.HTTP.Operations[j]
			return x.Path < y.Path || (x.Path == y.Path && x.Method < y.Method)
		}) {
			t.Fatalf("operations not sorted: %+v", b.HTTP.Operations)
		}
	case FormatAsyncAPI:
		if b.MQTT == nil || b.HTTP != nil || b.CoAP != nil {
			t.Fatalf("asyncapi document gave bindings %+v", b)
		}
	default:
		t.Fatalf("unknown format %q", d.Format)
	}
}
