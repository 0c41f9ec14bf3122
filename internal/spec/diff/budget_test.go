package diff

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// graphDoc returns an OpenAPI document whose request schema is a graph of
// k schemas; step decides the edges, so that two documents with coprime
// steps pair up nearly every old schema with every new one.
func graphDoc(k, step int) string {
	var b strings.Builder
	b.WriteString("openapi: 3.1.0\ninfo: {title: t, version: v}\npaths:\n  /a: {post: {requestBody: {content: {a/b: {schema: {$ref: '#/components/schemas/S0'}}}}}}\ncomponents:\n  schemas:\n")
	for i := 0; i < k; i++ {
		fmt.Fprintf(&b, "    S%d: {type: object, properties: {p: {$ref: '#/components/schemas/S%d'}, q: {$ref: '#/components/schemas/S%d'}}}\n", i, (i+1)%k, (i*step+1)%k)
	}
	return b.String()
}

// TestBudget checks that a comparison that would visit millions of schema
// pairs stops at the budget, quickly, and says so as a breaking change.
func TestBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("large documents")
	}
	old, new := parse(t, graphDoc(4000, 3)), parse(t, graphDoc(4001, 5))
	start := time.Now()
	cs := Compare(old, new)
	d := time.Since(start)
	if d > 30*time.Second { // generous: race-instrumented runs on a busy machine
		t.Errorf("Compare took %v", d)
	}
	if len(cs) == 0 || cs[0].Kind != "diff-incomplete" || !cs[0].Breaking {
		t.Fatalf("want diff-incomplete first, got %v", cs)
	}
	t.Logf("%d changes in %v", len(cs), d)
}
