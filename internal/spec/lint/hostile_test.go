package lint

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// hostileDocs are documents near spec.MaxSize that share objects through
// $refs, so that naive per-operation work would be quadratic.
func hostileDocs() map[string]string {
	const n = 20000
	var b strings.Builder
	docs := map[string]string{}

	// Many paths share one path item whose operations share one request
	// body with many media types, each with a self-referencing schema.
	b.WriteString("openapi: 3.1.0\ninfo: {title: t, version: v}\npaths:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  /p%d/{id}: {$ref: '#/components/pathItems/P'}\n", i)
	}
	b.WriteString("components:\n  pathItems:\n    P:\n      get: {requestBody: {$ref: '#/components/requestBodies/B'}, security: [{}]}\n      post: {requestBody: {$ref: '#/components/requestBodies/B'}}\n")
	b.WriteString("  schemas:\n    S: {type: object, allOf: [{$ref: '#/components/schemas/S'}, {$ref: '#/components/schemas/S'}], properties: {a: {type: string}, b: {$ref: '#/components/schemas/S'}}}\n")
	b.WriteString("  requestBodies:\n    B:\n      content:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "        a/b%d: {schema: {$ref: '#/components/schemas/S'}}\n", i)
	}
	docs["openapi shared refs"] = b.String()

	// Many AsyncAPI 3 operations share one channel with many messages.
	b.Reset()
	b.WriteString("asyncapi: 3.0.0\ninfo: {title: t, version: v}\nchannels:\n  c:\n    address: 'd/{deviceId}'\n    messages:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "      m%d: {payload: {$ref: '#/components/schemas/S'}}\n", i)
	}
	b.WriteString("operations:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  o%d: {action: send, channel: {$ref: '#/channels/c'}}\n", i)
	}
	b.WriteString("components: {schemas: {S: {type: array, items: {$ref: '#/components/schemas/S'}}}}\n")
	docs["asyncapi shared channel"] = b.String()

	// Many AsyncAPI 2 channels share one channel item.
	b.Reset()
	b.WriteString("asyncapi: 2.6.0\ninfo: {title: t, version: v}\nchannels:\n  base: {publish: {message: {oneOf: [")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "{payload: {type: string}},")
	}
	b.WriteString("]}}}\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  c%d/{id}: {$ref: '#/channels/base'}\n", i)
	}
	docs["asyncapi 2 shared channel"] = b.String()
	return docs
}

// TestHostile checks that Lint stays fast on documents built to make
// per-operation work quadratic.
func TestHostile(t *testing.T) {
	if testing.Short() {
		t.Skip("large documents")
	}
	for name, content := range hostileDocs() {
		t.Run(name, func(t *testing.T) {
			doc := parse(t, content)
			start := time.Now()
			fs := Lint(doc, nil, Config{})
			if d := time.Since(start); d > 60*time.Second { // catches a hang, not a slow machine
				t.Errorf("Lint took %v for %d bytes", d, len(content))
			}
			t.Logf("%d bytes, %d findings, %v", len(content), len(fs), time.Since(start))
		})
	}
}
