package shape_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fleetgate/fleetgate/internal/spec"
	"github.com/fleetgate/fleetgate/internal/spec/shape"
)

// FuzzOf: any document spec.Parse accepts is fingerprinted without a panic,
// deterministically.
func FuzzOf(f *testing.F) {
	for _, name := range fixtures {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {/a: {$ref: '#/paths/~1a'}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := spec.Parse(b)
		if err != nil {
			return
		}
		a, c := shape.Of(doc), shape.Of(doc)
		if !reflect.DeepEqual(a, c) {
			t.Fatalf("not deterministic:\n%+v\n%+v", a, c)
		}
	})
}
