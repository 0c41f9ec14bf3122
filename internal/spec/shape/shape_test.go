package shape_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/internal/spec"
	"github.com/fleetgate/fleetgate/internal/spec/shape"
)

var update = flag.Bool("update", false, "rewrite testdata/shapes.golden")

func load(t testing.TB, name string) []shape.Op {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := spec.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return shape.Of(doc)
}

var fixtures = []string{"vehicles.yaml", "cars.yaml", "telemetry2.yaml", "telemetry3.yaml"}

// TestGolden pins every fingerprint: a change in canonicalisation shows up
// as a reviewed diff of testdata/shapes.golden (go test -update).
func TestGolden(t *testing.T) {
	var b strings.Builder
	for _, f := range fixtures {
		for _, op := range load(t, f) {
			fp := op.Fingerprint
			if fp == "" {
				fp = "(no schema)"
			}
			fmt.Fprintf(&b, "%s\t%s %s %s\t%s\n", f, op.Protocol, op.Action, op.Path, fp)
		}
	}
	golden := filepath.Join("testdata", "shapes.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Fatalf("shapes changed (go test -update to accept):\n got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func find(t *testing.T, file, label string) shape.Op {
	t.Helper()
	for _, op := range load(t, file) {
		if op.Action+" "+op.Path == label {
			return op
		}
	}
	t.Fatalf("%s: no operation %s", file, label)
	return shape.Op{}
}

func TestSameShape(t *testing.T) {
	cases := []struct {
		name      string
		a, aOp    string
		b, bOp    string
		sameShape bool
	}{
		{"renamed path, parameter, schema and keys", "vehicles.yaml", "GET /vehicles/{vin}/battery", "cars.yaml", "GET /cars/{carId}/charge", true},
		{"one constraint differs", "vehicles.yaml", "GET /vehicles/{vin}/battery", "cars.yaml", "GET /cars/{carId}/range", false},
		{"different method and body", "vehicles.yaml", "POST /vehicles/{vin}/climate", "cars.yaml", "GET /cars/{carId}/charge", false},
		{"AsyncAPI 2 and 3, same payload", "telemetry2.yaml", "publish fleet/{deviceId}/telemetry", "telemetry3.yaml", "publish meters/{meterId}/readings", true},
		{"same payload, other direction", "telemetry2.yaml", "publish fleet/{deviceId}/telemetry", "telemetry3.yaml", "subscribe meters/{meterId}/readings", false},
		{"different payload", "telemetry2.yaml", "subscribe fleet/{deviceId}/commands", "telemetry3.yaml", "subscribe meters/{meterId}/readings", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := find(t, tc.a, tc.aOp), find(t, tc.b, tc.bOp)
			if a.Fingerprint == "" || b.Fingerprint == "" {
				t.Fatalf("missing fingerprint: %+v %+v", a, b)
			}
			if got := a.Fingerprint == b.Fingerprint; got != tc.sameShape {
				t.Fatalf("same shape = %v, want %v", got, tc.sameShape)
			}
		})
	}
}

// TestBareOperationsHaveNoShape: operations that exchange no schema are not
// compared (every GET /health would otherwise duplicate every other).
func TestBareOperationsHaveNoShape(t *testing.T) {
	if op := find(t, "vehicles.yaml", "GET /health"); op.Fingerprint != "" {
		t.Fatalf("bare operation fingerprinted: %+v", op)
	}
	if op := find(t, "cars.yaml", "GET /status"); op.Fingerprint != "" {
		t.Fatalf("bare operation fingerprinted: %+v", op)
	}
}

// TestCyclicSchema: a recursive schema terminates and is deterministic.
func TestCyclicSchema(t *testing.T) {
	src := `openapi: 3.1.0
info: {title: T, version: "1"}
paths:
  /trees/{id}:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Node"}
components:
  schemas:
    Node:
      type: object
      properties:
        children: {type: array, items: {$ref: "#/components/schemas/Node"}}
`
	doc, err := spec.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a, b := shape.Of(doc), shape.Of(doc)
	if len(a) != 1 || a[0].Fingerprint == "" || a[0].Fingerprint != b[0].Fingerprint {
		t.Fatalf("cyclic schema: %+v %+v", a, b)
	}
}
