package cli

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

const policyYAML = `auth:
  methods: [api_key, jwt]
  jwt:
    issuer: https://id.example
    jwks_url: https://id.example/jwks
    clock_skew: 1m
rules: ['request.time.getHours() < 23']
rate_limit: {rate: 100, period: 1m, burst: 20}
operations:
  getVehicle:
    bindings:
      - {param: vin, owned: vehicle}
    rate_limit: {rate: 10, period: 1s}
  GET /v1/fleet/{id}:
    auth: {methods: [mtls]}
validate_responses: log
`

const policyJSON = `{"auth":{"methods":["api_key","jwt"],"jwt":{"issuer":"https://id.example","jwks_url":"https://id.example/jwks","clock_skew":"1m"}},` +
	`"rules":["request.time.getHours() < 23"],"rate_limit":{"rate":100,"period":"1m","burst":20},` +
	`"operations":{"getVehicle":{"bindings":[{"param":"vin","owned":"vehicle"}],"rate_limit":{"rate":10,"period":"1s"}},"GET /v1/fleet/{id}":{"auth":{"methods":["mtls"]}}},` +
	`"validate_responses":"log"}`

func TestVersionsPolicyFlags(t *testing.T) {
	dir := t.TempDir()
	spec := writeFile(t, filepath.Join(dir, "spec.yaml"), specV1, 0o600)
	py := writeFile(t, filepath.Join(dir, "policy.yaml"), policyYAML, 0o600)
	pj := writeFile(t, filepath.Join(dir, "policy.json"), "{\n  \"rules\": [\"true\"],\n  \"rate_limit\": {\"rate\": 5, \"period\": \"1s\"}\n}\n", 0o600)
	empty := writeFile(t, filepath.Join(dir, "empty.json"), "{}", 0o600)
	bindings := writeFile(t, filepath.Join(dir, "b.yaml"), "http: {base_path: /v1}\n", 0o600)
	version := map[string]any{"version": "v1", "state": "draft", "spec": map[string]any{"format": "openapi", "version": "3.1.0"}}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /admin/v1/apis/vehicles/versions":     reply(201, version),
		"PATCH /admin/v1/apis/vehicles/versions/v1": reply(200, version),
	})
	tests := []struct {
		name, wantReq, wantBody, wantOut, wantErr string
		args                                      []string
	}{
		{
			name:     "create with a YAML policy",
			args:     []string{"versions", "create", "vehicles", "v1", "--spec", spec, "--policy", py},
			wantReq:  "POST /admin/v1/apis/vehicles/versions",
			wantBody: `{"version":"v1","spec":` + jsonString(specV1) + `,"policy":` + policyJSON + `}`,
			wantOut:  "Created version vehicles/v1 (draft, spec openapi 3.1.0).\n",
		},
		{
			name:     "create with a JSON policy and YAML bindings",
			args:     []string{"versions", "create", "vehicles", "v1", "--spec", spec, "--policy", pj, "--bindings", bindings},
			wantReq:  "POST /admin/v1/apis/vehicles/versions",
			wantBody: `{"version":"v1","spec":` + jsonString(specV1) + `,"bindings":{"http":{"base_path":"/v1"}},"policy":{"rules":["true"],"rate_limit":{"rate":5,"period":"1s"}}}`,
		},
		{
			name:     "update the policy only",
			args:     []string{"versions", "update", "vehicles", "v1", "--policy", py},
			wantReq:  "PATCH /admin/v1/apis/vehicles/versions/v1",
			wantBody: `{"policy":` + policyJSON + `}`,
			wantOut:  "Updated version vehicles/v1 (draft): policy.\n",
		},
		{
			name:     "update removes the policy with {}",
			args:     []string{"versions", "update", "vehicles", "v1", "--policy", empty},
			wantReq:  "PATCH /admin/v1/apis/vehicles/versions/v1",
			wantBody: `{"policy":{}}`,
		},
		{
			name:     "update spec and upstreams",
			args:     []string{"versions", "update", "vehicles", "v1", "--spec", spec, "--upstream", "http://a:1", "--upstream", "http://b:2"},
			wantReq:  "PATCH /admin/v1/apis/vehicles/versions/v1",
			wantBody: `{"spec":` + jsonString(specV1) + `,"upstream":{"targets":["http://a:1","http://b:2"]}}`,
			wantOut:  "Updated version vehicles/v1 (draft): spec, upstream.\n",
		},
		{
			name:    "update without flags sends nothing",
			args:    []string{"versions", "update", "vehicles", "v1"},
			wantErr: "nothing to update",
		},
		{
			name:    "a missing policy file sends nothing",
			args:    []string{"versions", "update", "vehicles", "v1", "--policy", filepath.Join(dir, "nope.yaml")},
			wantErr: "reading policy: open ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := len(f.requests())
			r := runCLI(t, runOpts{env: env(f)}, tc.args...)
			if tc.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", r.err, tc.wantErr)
				}
				if len(f.requests()) != n {
					t.Error("a request was sent despite a local error")
				}
				return
			}
			if r.err != nil {
				t.Fatalf("%v\n%s", r.err, r.stderr)
			}
			req := f.last(t)
			if got := req.Method + " " + req.Path; got != tc.wantReq {
				t.Errorf("request = %s, want %s", got, tc.wantReq)
			}
			jsonEqual(t, req.Body, tc.wantBody)
			if tc.wantOut != "" && r.stdout != tc.wantOut {
				t.Errorf("stdout = %q, want %q", r.stdout, tc.wantOut)
			}
		})
	}
}

// TestPolicyFileStrict: a policy file is checked against model.Policy
// before anything is sent, every problem with its line and column.
func TestPolicyFileStrict(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                []string
	}{
		{
			name: "yaml unknown keys, at every depth",
			file: "p.yaml",
			content: `auth:
  method: [api_key]
operations:
  getVehicle:
    bindings:
      - {param: vin, own: vehicle}
ratelimit: {rate: 1}
`,
			want: []string{
				`p.yaml:2:3: unknown field "method" in auth (known: api_key_header, jwt, methods)`,
				`p.yaml:6:22: unknown field "own" in operations["getVehicle"].bindings[0] (known: equals, in, owned, param)`,
				`p.yaml:7:1: unknown field "ratelimit" in the document (known: auth, lint_waivers, operations, rate_limit, rules, validate_responses)`,
			},
		},
		{
			name:    "yaml wrong types and shapes",
			file:    "p.yml",
			content: "rate_limit: {rate: ten, period: 1m, burst: 1.5}\nrules: {a: b}\noperations: [x]\n",
			want: []string{
				`p.yml:1:20: rate_limit.rate must be a whole number, not "ten"`,
				`p.yml:1:44: rate_limit.burst must be a whole number, not 1.5`,
				`p.yml:2:8: rules must be a list, not a mapping`,
				`p.yml:3:13: operations must be a mapping, not a list`,
			},
		},
		{
			name:    "yaml key given twice",
			file:    "p.yaml",
			content: "rules: [a]\nvalidate_responses: log\nrules: [b]\n",
			want:    []string{`p.yaml:3:1: "rules" is given twice in the document (first on line 1)`},
		},
		{
			name:    "yaml syntax",
			file:    "p.yaml",
			content: "rules: [a\n",
			want:    []string{"p.yaml:"},
		},
		{
			name:    "a list is not a policy",
			file:    "p.yaml",
			content: "- auth: {}\n",
			want:    []string{"p.yaml:1:1: the document must be a mapping, not a list"},
		},
		{
			name:    "json unknown key",
			file:    "p.json",
			content: "{\n  \"auth\": {\n    \"methods\": [\"jwt\"],\n    \"jwks\": \"x\"\n  }\n}\n",
			want:    []string{`p.json:4:5: unknown field "jwks" in auth (known: api_key_header, jwt, methods)`},
		},
		{
			name:    "json types are strict",
			file:    "p.json",
			content: "{\"rules\": [1],\n \"rate_limit\": {\"rate\": \"10\", \"period\": \"1m\"}}",
			want: []string{
				`p.json:1:12: rules[0] must be a string, not 1`,
				`p.json:2:25: rate_limit.rate must be a whole number, not "10"`,
			},
		},
		{
			name:    "json member given twice",
			file:    "p.json",
			content: "{\"rules\": [],\n \"rules\": [\"true\"]}",
			want:    []string{`p.json:2:2: member "rules" is given twice (first on line 1)`},
		},
		{
			name:    "json syntax",
			file:    "p.json",
			content: "{\n  \"rules\": [\"a\",]\n}",
			want:    []string{"p.json:2:17: invalid character ']'"},
		},
		{
			name:    "json trailing data",
			file:    "p.json",
			content: "{}\n{}",
			want:    []string{"p.json:2:1: unexpected data after the JSON value"},
		},
		{
			name:    "empty",
			file:    "p.yaml",
			content: "# nothing\n",
			want:    []string{"p.yaml: empty policy document"},
		},
	}
	f := newFakeAPI(t, nil)
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, tc.file), tc.content, 0o600)
			r := runCLI(t, runOpts{env: env(f)}, "versions", "update", "vehicles", "v1", "--policy", path)
			if r.err == nil {
				t.Fatal("want an error")
			}
			msg := strings.ReplaceAll(r.err.Error(), dir+string(filepath.Separator), "")
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\nlacks %q", msg, w)
				}
			}
			if n := len(f.requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

// TestPolicyServerErrorsLocated: the server's field errors about the
// policy are shown at their place in the policy file.
func TestPolicyServerErrorsLocated(t *testing.T) {
	dir := t.TempDir()
	py := writeFile(t, filepath.Join(dir, "policy.yaml"), policyYAML, 0o600)
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"PATCH /admin/v1/apis/vehicles/versions/v1": replyProblem(422, map[string]any{"title": "Invalid version", "status": 422, "errors": []map[string]any{
			{"pointer": "/policy/operations/GET ~1v1~1fleet~1{id}", "detail": "no operation in this version's bindings"},
			{"pointer": "/policy/rules/0", "detail": "undeclared reference", "line": 1},
			{"pointer": "/upstream/targets/0", "detail": "must be a URL"},
		}}),
	})
	r := runCLI(t, runOpts{env: env(f)}, "versions", "update", "vehicles", "v1", "--policy", py)
	want := "Invalid version (422)\n" +
		"  " + py + ":14:3: /policy/operations/GET ~1v1~1fleet~1{id}: no operation in this version's bindings\n" +
		"  " + py + ":7:9: /policy/rules/0: undeclared reference (line 1)\n" +
		"  /upstream/targets/0: must be a URL"
	if r.err == nil || r.err.Error() != want {
		t.Errorf("error\n got %q\nwant %q", r.err, want)
	}
}

func TestApplyPolicies(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "policies", "v2.json"), "{\n  \"rules\": [\"true\"]\n}\n", 0o600)
	fleet := writeFile(t, filepath.Join(dir, "fleet.yaml"), `apis:
  - name: vehicles
    owner: team
    versions:
      - version: v1
        spec: x
        policy:
          auth: {methods: [api_key]}
          rate_limit: {rate: 100, period: 1m}
          operations:
            getVehicle:
              bindings: [{param: vin, owned: vehicle}]
      - version: v2
        spec: x
        policy_file: policies/v2.json
`, 0o600)
	var answer http.HandlerFunc = reply(200, applyAnswer{Plan: []planItem{{Action: "unchanged", Kind: "api", Name: "acme/vehicles"}}, Applied: true})
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /admin/v1/apply": func(w http.ResponseWriter, r *http.Request) { answer(w, r) },
	})
	r := runCLI(t, runOpts{env: env(f)}, "apply", "-f", fleet)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	jsonEqual(t, f.last(t).Body, `{"dry_run":false,"apis":[{"name":"vehicles","owner":"team","versions":[
		{"version":"v1","spec":"x","policy":{"auth":{"methods":["api_key"]},"rate_limit":{"rate":100,"period":"1m"},"operations":{"getVehicle":{"bindings":[{"param":"vin","owned":"vehicle"}]}}}},
		{"version":"v2","spec":"x","policy":{"rules":["true"]}}]}]}`)

	t.Run("server errors are located in the document and the policy file", func(t *testing.T) {
		answer = replyProblem(422, map[string]any{"title": "Invalid version", "status": 422, "errors": []map[string]any{
			{"pointer": "/apis/0/versions/0/policy/operations/getVehicle/bindings/0/param", "detail": "no path parameter {vin}"},
			{"pointer": "/apis/0/versions/1/policy/rules/0", "detail": "bad rule"},
			{"pointer": "/apis/0/versions/1/policy", "detail": "bad policy"},
			{"pointer": "/apis/0/owner", "detail": "unknown team"},
		}})
		r := runCLI(t, runOpts{env: env(f)}, "apply", "-f", fleet)
		pf := filepath.Join(dir, "policies", "v2.json")
		want := "Invalid version (422)\n" +
			"  " + fleet + ":12:27: /apis/0/versions/0/policy/operations/getVehicle/bindings/0/param: no path parameter {vin}\n" +
			"  " + pf + ":2:13: /apis/0/versions/1/policy/rules/0: bad rule\n" +
			"  " + fleet + ":15:22: /apis/0/versions/1/policy: bad policy\n" +
			"  " + fleet + ":3:5: /apis/0/owner: unknown team"
		if r.err == nil || r.err.Error() != want {
			t.Errorf("error\n got %q\nwant %q", r.err, want)
		}
	})
}

func TestParseFleetPolicies(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.yaml"), "rules: [a]\nauth:\n  methods: api_key\n", 0o600)
	tests := []struct {
		name, doc string
		want      []string
	}{
		{
			name: "inline policy is strict",
			doc: `apis:
  - name: a
    owner: t
    versions:
      - version: v1
        spec: x
        policy:
          rate_limit: {rate: 1, period: 1m, burts: 2}
`,
			want: []string{`fleet.yaml:8:45: unknown field "burts" in apis[0].versions[0].policy.rate_limit (known: burst, period, rate)`},
		},
		{
			name: "policy and policy_file",
			doc: `apis:
  - name: a
    owner: t
    versions:
      - version: v1
        policy: {rules: [a]}
        policy_file: bad.yaml
`,
			want: []string{`fleet.yaml:5:9: version a/v1: give policy_file or policy, not both`},
		},
		{
			name: "errors in a policy file name that file",
			doc: `apis:
  - name: a
    owner: t
    versions:
      - version: v1
        policy_file: bad.yaml
      - version: v2
        policy_file: missing.yaml
`,
			want: []string{
				filepath.Join(dir, "bad.yaml") + `:3:12: auth.methods must be a list, not a single value`,
				`fleet.yaml:8:22: policy_file: open ` + filepath.Join(dir, "missing.yaml"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFleet("fleet.yaml", dir, []byte(tc.doc))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestJSONNodePositions(t *testing.T) {
	doc := "{\n  \"a\": [1, {\"b\": null}],\n\t\"c\": \"x\\/y\\ud83d\\ude00\"\n}"
	n, err := jsonNode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for ptr, want := range map[string]string{
		"":       "1:1",
		"/a":     "2:3",
		"/a/0":   "2:9",
		"/a/1/b": "2:13",
		"/c":     "3:2",
		"/a/9":   "2:3", // out of range: the deepest node found
	} {
		got := nodeAt(n, ptr)
		if pos := strings.TrimPrefix(fmtPos("", got), ":"); pos != want {
			t.Errorf("nodeAt(%q) = %s, want %s", ptr, pos, want)
		}
	}
	if c := nodeAt(n, "/c"); c.Value != "c" {
		t.Errorf("/c locates its key, got %q", c.Value)
	}
	var v map[string]any
	if err := mapValue(n, "c").Decode(&v); err == nil {
		t.Error("a string decodes into a map")
	}
	if got := mapValue(n, "c").Value; got != "x/y\U0001F600" {
		t.Errorf("string value = %q", got)
	}
	if mapValue(n, "a").Content[1].Content[1].Tag != "!!null" {
		t.Error("null is not tagged !!null")
	}
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	if _, err := jsonNode([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep nesting: %v", err)
	}
}

func TestPolicySummary(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /admin/v1/apis/vehicles/versions/v1": reply(200, map[string]any{"version": "v1", "api": "vehicles", "state": "draft",
			"policy": map[string]any{"auth": map[string]any{"methods": []string{"api_key", "jwt"}}, "rules": []string{"a", "b"},
				"rate_limit": map[string]any{"rate": 100, "period": "1m", "burst": 20}, "operations": map[string]any{"x": map[string]any{}}, "validate_responses": "log"}}),
		"GET /admin/v1/apis/vehicles/versions/v2": reply(200, map[string]any{"version": "v2", "api": "vehicles", "state": "draft", "policy": map[string]any{}}),
	})
	r := runCLI(t, runOpts{env: env(f)}, "versions", "get", "vehicles", "v1")
	if want := "Policy:    auth api_key,jwt; 2 rules; rate 100/1m burst 20; 1 operation override; validate responses: log\n"; r.err != nil || !strings.Contains(r.stdout, want) {
		t.Errorf("stdout\n%s\nlacks %q (err %v)", r.stdout, want, r.err)
	}
	r = runCLI(t, runOpts{env: env(f)}, "versions", "get", "vehicles", "v2")
	if want := "Policy:    -\n"; !strings.Contains(r.stdout, want) {
		t.Errorf("stdout\n%s\nlacks %q", r.stdout, want)
	}
}
