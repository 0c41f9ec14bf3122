package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const specV1 = "openapi: 3.1.0\ninfo: {title: Vehicles, version: '1'}\npaths: {}\n"

func TestParseFleet(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "specs", "vehicles-v1.yaml"), specV1, 0o600)
	writeFile(t, filepath.Join(dir, "empty.yaml"), "\n", 0o600)

	tests := []struct {
		name     string
		doc      string
		wantJSON string   // the request body without dry_run
		wantErrs []string // each must appear in the error
	}{
		{
			name: "spec_file, inline spec and bindings",
			doc: `tenants:
  - id: acme
    display_name: ACME
apis:
  - name: vehicles
    tenant: acme
    owner: fleet-team
    display_name: Vehicles
    versions:
      - version: v1
        upstream: {targets: ["http://127.0.0.1:9000"]}
        spec_file: specs/vehicles-v1.yaml
      - version: 1.0
        spec: |
          asyncapi: 2.6.0
        bindings:
          http:
            base_path: /v1
            operations:
              - {method: GET, path: /cars, operation_id: 0123}
          mqtt:
            channels: [{topic: "cars/{id}", action: publish}]
`,
			wantJSON: `{"tenants":[{"id":"acme","display_name":"ACME"}],"apis":[{"name":"vehicles","tenant":"acme","owner":"fleet-team","display_name":"Vehicles","versions":[
				{"version":"v1","upstream":{"targets":["http://127.0.0.1:9000"]},"spec":` + jsonString(specV1) + `},
				{"version":"1.0","spec":"asyncapi: 2.6.0\n","bindings":{"http":{"base_path":"/v1","operations":[{"method":"GET","path":"/cars","operation_id":"0123"}]},"mqtt":{"channels":[{"topic":"cars/{id}","action":"publish"}]}}}]}]}`,
		},
		{
			name: "anchors and merge keys",
			doc: `apis:
  - &base
    name: a
    owner: team
  - <<: *base
    name: b
`,
			wantJSON: `{"apis":[{"name":"a","owner":"team"},{"name":"b","owner":"team"}]}`,
		},
		{
			name: "unknown key names file, line and column",
			doc: `apis:
  - name: vehicles
    owner: team
    versions:
      - version: v1
        spec_fil: x.yaml
`,
			wantErrs: []string{`fleet.yaml:6:9: unknown field "spec_fil" in apis[0].versions[0] (known: bindings, policy, policy_file, spec, spec_file, upstream, version)`},
		},
		{
			name: "all unknown keys at once, bindings by their JSON names",
			doc: `tenant:
  - id: acme
apis:
  - name: v
    owner: t
    versions:
      - version: v1
        spec: x
        bindings:
          http: {basePath: /v1}
`,
			wantErrs: []string{
				`fleet.yaml:1:1: unknown field "tenant" in the document`,
				`fleet.yaml:10:18: unknown field "basePath" in apis[0].versions[0].bindings.http (known: base_path, operations)`,
			},
		},
		{
			name:     "wrong shapes",
			doc:      "apis:\n  name: vehicles\n",
			wantErrs: []string{`fleet.yaml:2:3: apis must be a list (start each item with "- ")`},
		},
		{
			name:     "mapping where a value is expected",
			doc:      "apis:\n  - name: {x: 1}\n    owner: t\n",
			wantErrs: []string{`fleet.yaml:2:11: apis[0].name must be a single value, not a mapping`},
		},
		{
			name:     "scalar type error from the decoder",
			doc:      "apis:\n  - name: a\n    owner: t\n    versions:\n      - version: v1\n        upstream: {targets: [{a: 1}]}\n",
			wantErrs: []string{`fleet.yaml:6:30: apis[0].versions[0].upstream.targets[0] must be a single value`},
		},
		{
			name: "semantic checks with positions",
			doc: `apis:
  - name: a
    owner: t
    versions:
      - version: v1
        spec: x
        spec_file: specs/vehicles-v1.yaml
      - version: v1
        spec_file: missing.yaml
      - version: v2
        spec_file: empty.yaml
  - name: a
    owner: t
`,
			wantErrs: []string{
				"fleet.yaml:5:9: version a/v1: give spec_file or spec, not both",
				"fleet.yaml:8:9: version a/v1 is declared twice",
				"fleet.yaml:9:20: spec_file: open " + filepath.Join(dir, "missing.yaml"),
				"fleet.yaml:11:20: spec_file " + filepath.Join(dir, "empty.yaml") + " is empty",
				`fleet.yaml:12:5: api "a" is declared twice`,
			},
		},
		{
			name:     "syntax error",
			doc:      "apis:\n  - name: a\n   owner: [\n",
			wantErrs: []string{"fleet.yaml:1: did not find expected"},
		},
		{
			name:     "empty document",
			doc:      "# nothing\n",
			wantErrs: []string{"fleet.yaml: empty document"},
		},
		{
			name:     "nothing declared",
			doc:      "apis: []\n",
			wantErrs: []string{"fleet.yaml:1:1: the document declares no tenants and no apis"},
		},
		{
			name:     "several documents",
			doc:      "apis: [{name: a, owner: t}]\n---\napis: []\n",
			wantErrs: []string{"only one YAML document is allowed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := parseFleet("fleet.yaml", dir, []byte(tc.doc))
			if len(tc.wantErrs) > 0 {
				if err == nil {
					t.Fatal("want an error")
				}
				for _, w := range tc.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error\n%s\nlacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, b, tc.wantJSON)
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestApplyCommand runs apply end to end: spec_file resolved against the
// fleet file's directory (not the working directory), the body sent, the
// plan printed.
func TestApplyCommand(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "v1.yaml"), specV1, 0o600)
	fleet := writeFile(t, filepath.Join(dir, "fleet.yaml"), `apis:
  - name: vehicles
    owner: team
    versions:
      - version: v1
        spec_file: v1.yaml
`, 0o600)
	answer := applyAnswer{Plan: []planItem{
		{Action: "create", Kind: "api", Name: "acme/vehicles"},
		{Action: "create", Kind: "version", Name: "acme/vehicles/v1"},
	}}
	var gotBody []byte
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /admin/v1/apply": func(w http.ResponseWriter, r *http.Request) {
			gotBody, _ = io.ReadAll(r.Body)
			var req struct {
				DryRun bool `json:"dry_run"`
			}
			_ = json.Unmarshal(gotBody, &req)
			a := answer
			a.Applied = !req.DryRun
			reply(200, a)(w, r)
		},
	})
	tests := []struct {
		name       string
		args       []string
		wantDryRun bool
		wantOut    string
	}{
		{"dry run", []string{"--dry-run"}, true,
			"+ create api acme/vehicles\n+ create version acme/vehicles/v1\nPlan: 2 to create, 0 to update, 0 unchanged.\nDry run: nothing changed.\n"},
		{"apply", nil, false,
			"+ create api acme/vehicles\n+ create version acme/vehicles/v1\nPlan: 2 to create, 0 to update, 0 unchanged.\nApplied.\n"},
		{"json", []string{"-o", "json"}, false,
			"{\n  \"plan\": [\n    {\n      \"action\": \"create\",\n      \"kind\": \"api\",\n      \"name\": \"acme/vehicles\"\n    },\n" +
				"    {\n      \"action\": \"create\",\n      \"kind\": \"version\",\n      \"name\": \"acme/vehicles/v1\"\n    }\n  ],\n  \"applied\": true\n}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, runOpts{env: env(f)}, append([]string{"apply", "-f", fleet}, tc.args...)...)
			if r.err != nil {
				t.Fatalf("%v\n%s", r.err, r.stderr)
			}
			if r.stdout != tc.wantOut {
				t.Errorf("stdout\n got %q\nwant %q", r.stdout, tc.wantOut)
			}
			jsonEqual(t, gotBody, `{"apis":[{"name":"vehicles","owner":"team","versions":[{"version":"v1","spec":`+jsonString(specV1)+`}]}],"dry_run":`+map[bool]string{true: "true", false: "false"}[tc.wantDryRun]+`}`)
		})
	}

	t.Run("stdin resolves spec_file against the working directory", func(t *testing.T) {
		wd, _ := os.Getwd()
		t.Cleanup(func() { _ = os.Chdir(wd) })
		if err := os.Chdir(dir); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(fleet)
		r := runCLI(t, runOpts{env: env(f), stdin: string(data)}, "apply", "-f", "-", "--dry-run")
		if r.err != nil {
			t.Fatalf("%v\n%s", r.err, r.stderr)
		}
		if !bytes.Contains(gotBody, []byte(jsonString(specV1))) {
			t.Errorf("spec not sent: %s", gotBody)
		}
	})

	t.Run("a parse error sends nothing", func(t *testing.T) {
		bad := writeFile(t, filepath.Join(dir, "bad.yaml"), "apis:\n  - name: x\n    ownr: t\n", 0o600)
		n := len(f.requests())
		r := runCLI(t, runOpts{env: env(f)}, "apply", "-f", bad)
		want := "Error: " + bad + `:3:5: unknown field "ownr" in apis[0]`
		if r.err == nil || !strings.HasPrefix(r.stderr, want) {
			t.Errorf("stderr = %q, want prefix %q", r.stderr, want)
		}
		if len(f.requests()) != n {
			t.Error("a request was sent")
		}
	})
}

func TestPrintPlan(t *testing.T) {
	plan := []planItem{
		{Action: "create", Kind: "tenant", Name: "acme"},
		{Action: "unchanged", Kind: "api", Name: "acme/fleet"},
		{Action: "update", Kind: "version", Name: "acme/vehicles/v1", Changes: []string{
			"upstream.targets: [http://a] -> [http://b]", "spec: 1f3a… -> 9c2e…"}},
		{Action: "create", Kind: "api", Name: "acme/vehicles\x1b[0m"},
	}
	const diff = "+ create tenant acme\n" +
		"~ update version acme/vehicles/v1\n" +
		"    upstream.targets: [http://a] -> [http://b]\n" +
		"    spec: 1f3a… -> 9c2e…\n" +
		"+ create api acme/vehicles\\x1b[0m\n"
	const verboseDiff = "+ create tenant acme\n" +
		"= unchanged api acme/fleet\n" +
		"~ update version acme/vehicles/v1\n" +
		"    upstream.targets: [http://a] -> [http://b]\n" +
		"    spec: 1f3a… -> 9c2e…\n" +
		"+ create api acme/vehicles\\x1b[0m\n"
	const summary = "Plan: 2 to create, 1 to update, 1 unchanged.\n"
	tests := []struct {
		name    string
		ans     applyAnswer
		dryRun  bool
		verbose bool
		want    string
	}{
		{"dry run", applyAnswer{Plan: plan}, true, false, diff + summary + "Dry run: nothing changed.\n"},
		{"applied", applyAnswer{Plan: plan, Applied: true}, false, false, diff + summary + "Applied.\n"},
		{"verbose shows unchanged", applyAnswer{Plan: plan, Applied: true}, false, true, verboseDiff + summary + "Applied.\n"},
		{"nothing to do", applyAnswer{Plan: []planItem{{Action: "unchanged", Kind: "api", Name: "a/b"}}}, false, false,
			"Plan: 0 to create, 0 to update, 1 unchanged.\nNothing to change.\n"},
		{"unknown actions are counted, not hidden", applyAnswer{Plan: []planItem{{Action: "delete", Kind: "api", Name: "a/b"}, {Action: "replace", Kind: "api", Name: "a/c"}}, Applied: true}, false, false,
			"- delete api a/b\n? replace api a/c\nPlan: 0 to create, 0 to update, 0 unchanged, 1 to delete, 1 other.\nApplied.\n"},
		{"not applied", applyAnswer{Plan: plan[:1]}, false, false,
			"+ create tenant acme\nPlan: 1 to create, 0 to update, 0 unchanged.\nNot applied.\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := printPlan(&b, tc.ans, tc.dryRun, tc.verbose); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("plan\n got:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}

func TestApplyNotAppliedFails(t *testing.T) {
	dir := t.TempDir()
	fleet := writeFile(t, filepath.Join(dir, "fleet.yaml"), "tenants: [{id: acme}]\n", 0o600)
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /admin/v1/apply": reply(200, applyAnswer{Plan: []planItem{{Action: "create", Kind: "tenant", Name: "acme"}}}),
	})
	r := runCLI(t, runOpts{env: env(f)}, "apply", "-f", fleet)
	if r.err == nil || !strings.Contains(r.stderr, "did not apply") {
		t.Errorf("err = %v, stderr = %q", r.err, r.stderr)
	}
}
