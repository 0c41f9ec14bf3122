package diff

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// hostilePair returns an old and a new document near spec.MaxSize that
// share objects through $refs, so that naive per-operation comparison
// would be quadratic or exponential. tweak is applied to the new one.
func hostilePair(kind string) (string, string) {
	const n = 20000
	var b strings.Builder
	switch kind {
	case "openapi":
		b.WriteString("openapi: 3.1.0\ninfo: {title: t, version: v}\nsecurity: [")
		for i := 0; i < 2000; i++ {
			fmt.Fprintf(&b, "{k%d: [a, b]},", i)
		}
		b.WriteString("]\npaths:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "  /p%d/{id}: {$ref: '#/components/pathItems/P'}\n", i)
		}
		b.WriteString("components:\n  pathItems:\n    P:\n      post: {requestBody: {$ref: '#/components/requestBodies/B'}, responses: {'200': {$ref: '#/components/requestBodies/B'}}}\n")
		b.WriteString("  schemas:\n    S: {type: object, allOf: [{$ref: '#/components/schemas/S'}, {$ref: '#/components/schemas/S'}, {$ref: '#/components/schemas/S'}], properties: {a: {type: string}, b: {$ref: '#/components/schemas/S'}, c: {items: {$ref: '#/components/schemas/S'}}}}\n")
		b.WriteString("  requestBodies:\n    B:\n      content:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "        a/b%d: {schema: {$ref: '#/components/schemas/S'}}\n", i)
		}
	case "asyncapi3":
		b.WriteString("asyncapi: 3.0.0\ninfo: {title: t, version: v}\nchannels:\n  c:\n    address: 'd/{deviceId}'\n    messages:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "      m%d: {payload: {$ref: '#/components/schemas/S'}}\n", i)
		}
		b.WriteString("operations:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "  o%d: {action: send, channel: {$ref: '#/channels/c'}}\n", i)
		}
		b.WriteString("components: {schemas: {S: {type: object, properties: {a: {type: string}, s: {$ref: '#/components/schemas/S'}}}}}\n")
	case "asyncapi2":
		b.WriteString("asyncapi: 2.6.0\ninfo: {title: t, version: v}\nchannels:\n  base: {publish: {message: {oneOf: [")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "{messageId: m%d, payload: {type: string}},", i)
		}
		b.WriteString("]}}}\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "  c%d/{id}: {$ref: '#/channels/base'}\n", i)
		}
	}
	old := b.String()
	// The new version changes a type that every path reaches, and (in
	// OpenAPI) one security alternative.
	new := strings.Replace(old, "type: string", "type: integer", 1)
	new = strings.Replace(new, "{k0: [a, b]}", "{k0: [a, b, c]}", 1)
	return old, new
}

// TestHostile checks that Compare stays fast on such documents, and still
// finds the change.
func TestHostile(t *testing.T) {
	if testing.Short() {
		t.Skip("large documents")
	}
	for _, kind := range []string{"openapi", "asyncapi3", "asyncapi2"} {
		t.Run(kind, func(t *testing.T) {
			o, n := hostilePair(kind)
			od, nd := parse(t, o), parse(t, n)
			start := time.Now()
			cs := Compare(od, nd)
			if d := time.Since(start); d > 60*time.Second { // catches a hang, not a slow machine
				t.Errorf("Compare took %v for %d bytes", d, len(o))
			}
			if !Breaking(cs) {
				t.Errorf("breaking change missed: %v", cs)
			}
			if self := Compare(od, od); len(self) != 0 {
				t.Errorf("document differs from itself: %v", self[0])
			}
			t.Logf("%d bytes, %d changes (first %v), %v", len(o), len(cs), cs[0], time.Since(start))
		})
	}
}
