package lint

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/spec"
)

// fuzzHeaders are valid beginnings of each supported format, so that
// mutations reach the rules rather than failing format detection.
var fuzzHeaders = []string{
	"openapi: 3.0.3\ninfo: {title: t, version: v}\n",
	"openapi: 3.1.0\ninfo: {title: t, version: v}\n",
	"asyncapi: 2.6.0\ninfo: {title: t, version: v}\n",
	"asyncapi: 3.0.0\ninfo: {title: t, version: v}\n",
}

// fuzzLimit is how long one Lint call may take. Real documents lint in
// milliseconds; the bound is generous for race-instrumented, parallel
// fuzzing workers, and catches anything superlinear.
const fuzzLimit = 60 * time.Second // a hang, not a slow run on a loaded CI machine

// FuzzLint checks that Lint never panics on a document spec.Parse accepts,
// finishes in bounded time, and returns sorted, located findings.
func FuzzLint(f *testing.F) {
	for _, pattern := range []string{"testdata/*/*.yaml", "../testdata/*"} {
		files, err := filepath.Glob(pattern)
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
	}
	for _, s := range []string{
		"paths:\n  /a/{id}: {get: {security: [{}], parameters: [{$ref: '#/components/parameters/p'}]}}\ncomponents: {parameters: {p: {name: token, in: query, schema: {$ref: '#/components/schemas/s'}}}, schemas: {s: {type: array, items: {$ref: '#/components/schemas/s'}}}}\n",
		"paths:\n  /a: {$ref: '#/paths/~1b'}\n  /b: {$ref: '#/paths/~1a'}\n",
		"paths:\n  /a: &p {post: {requestBody: {$ref: '#/components/requestBodies/b'}, deprecated: true}}\n  /b: *p\ncomponents: {requestBodies: {b: {$ref: '#/components/requestBodies/b'}}}\n",
		"channels:\n  a/{deviceId}: {publish: {security: [], message: {oneOf: [{payload: {type: string}}]}}}\nservers: {s: {url: 'mqtt://x', protocol: mqtt}}\n",
		"channels: {c: {address: 'x/{vin}', servers: [{$ref: '#/servers/s'}]}}\nservers: {s: {host: h, protocol: mqtt, security: []}}\noperations: {o: {action: send, channel: {$ref: '#/channels/c'}, messages: [{$ref: '#/channels/c'}]}}\n",
	} {
		for _, h := range fuzzHeaders {
			f.Add([]byte(h + s))
		}
	}
	pol := &model.Policy{
		Rules: []string{"params.id == principal.id"},
		Operations: map[string]model.OperationPolicy{
			"o": {Bindings: []model.IdentityBinding{{Param: "vin", Owned: "vehicle"}}},
		},
	}
	cfg := Config{
		Levels:  map[string]Level{"bounded-schemas": LevelError, "version-in-path": LevelOff},
		Waivers: []Waiver{{Rule: "anonymous-needs-waiver", Operation: "o", Reason: "r"}, {Rule: "object-binding", Operation: "x"}},
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		checkLint(t, content, nil, Config{})
		for _, h := range fuzzHeaders {
			checkLint(t, append([]byte(h), content...), pol, cfg)
		}
	})
}

func checkLint(t *testing.T, content []byte, pol *model.Policy, cfg Config) {
	t.Helper()
	doc, err := spec.Parse(content)
	if err != nil {
		return
	}
	start := time.Now()
	fs := Lint(doc, pol, cfg)
	if d := time.Since(start); d > fuzzLimit {
		t.Fatalf("Lint took %v", d)
	}
	if !sort.SliceIsSorted(fs, func(i, j int) bool {
		return fs[i].Line < fs[j].Line || (fs[i].Line == fs[j].Line && fs[i].Rule < fs[j].Rule)
	}) {
		t.Fatalf("findings not sorted: %+v", fs)
	}
	for _, f := range fs {
		if f.Rule == "" || f.Message == "" || !f.Level.valid() || f.Level == LevelOff {
			t.Fatalf("malformed finding %+v", f)
		}
		if f.Line == 0 && f.Rule != ruleWaiverReason && f.Rule != ruleUnusedWaiver {
			t.Fatalf("finding without a line: %+v", f)
		}
	}
}
