package cli

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// paged answers like the server: pages of the given size, cursor = index.
func paged(items []map[string]any, size int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := 0
		if a := r.URL.Query().Get("after"); a != "" {
			for i, it := range items {
				if it["name"] == a {
					start = i + 1
				}
			}
		}
		end := min(start+size, len(items))
		next := ""
		if end < len(items) {
			next = items[end-1]["name"].(string)
		}
		reply(200, map[string]any{"items": items[start:end], "next": next})(w, r)
	}
}

func TestListCommands(t *testing.T) {
	apis := []map[string]any{
		{"name": "alpha", "owner": "team-a", "tenant": "acme", "created_at": t0},
		{"name": "beta", "owner": "team-b", "display_name": "Beta", "tenant": "acme", "created_at": t0},
		{"name": "gamma", "owner": "team-c", "tenant": "acme", "created_at": t0},
	}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /admin/v1/apis": paged(apis, 2),
		"GET /admin/v1/apis/vehicles/versions": reply(200, map[string]any{"items": []map[string]any{
			{"version": "v1", "state": "published", "author": "acme/alice", "spec": map[string]any{"format": "openapi", "version": "3.1.0"}, "updated_at": t0},
			{"version": "v2", "state": "draft", "author": "acme/bob", "updated_at": t0},
		}}),
		"GET /admin/v1/audit": reply(200, map[string]any{"items": []map[string]any{
			{"seq": 7, "at": t0, "actor": "acme/alice", "action": "api.create", "object_type": "api", "object_id": "vehicles"},
		}, "next": "7"}),
		"GET /admin/v1/tokens": reply(200, map[string]any{"items": []map[string]any{
			{"id": "t1", "name": "ci", "operator": "alice", "prefix": "fgt_abcd", "created_at": t0},
			{"id": "t2", "name": "old", "operator": "bob", "prefix": "fgt_efgh", "revoked_at": t0, "created_at": t0},
		}}),
		"GET /admin/v1/apis/vehicles/versions/v1/transitions": reply(200, map[string]any{"items": []map[string]any{
			{"from": "draft", "to": "in_review", "actor": "acme/alice", "reason": "ready\tfor review", "at": t0},
		}}),
	})
	tests := []struct {
		name       string
		args       []string
		wantOut    string
		wantStderr string
		wantQuery  string // of the last request
	}{
		{
			name: "apis list follows cursors",
			args: []string{"apis", "list"},
			wantOut: "NAME   OWNER   DISPLAY NAME  CREATED\n" +
				"alpha  team-a  -             2026-03-01T12:00:00Z\n" +
				"beta   team-b  Beta          2026-03-01T12:00:00Z\n" +
				"gamma  team-c  -             2026-03-01T12:00:00Z\n",
			wantQuery: "after=beta&limit=1000",
		},
		{
			name:       "apis list --limit stops early and says how to go on",
			args:       []string{"apis", "list", "--limit", "2"},
			wantOut:    "NAME   OWNER   DISPLAY NAME  CREATED\nalpha  team-a  -             2026-03-01T12:00:00Z\nbeta   team-b  Beta          2026-03-01T12:00:00Z\n",
			wantStderr: "(more results: add --after beta)\n",
			wantQuery:  "limit=2",
		},
		{
			name:      "apis list json merges pages",
			args:      []string{"apis", "list", "-o", "json", "--after", "alpha"},
			wantOut:   `{"items":[{"name":"beta","owner":"team-b","display_name":"Beta","tenant":"acme","created_at":"2026-03-01T12:00:00Z"},{"name":"gamma","owner":"team-c","tenant":"acme","created_at":"2026-03-01T12:00:00Z"}],"next":""}`,
			wantQuery: "after=alpha&limit=1000",
		},
		{
			name: "versions list",
			args: []string{"versions", "list", "vehicles"},
			wantOut: "VERSION  STATE      AUTHOR      SPEC           UPDATED\n" +
				"v1       published  acme/alice  openapi 3.1.0  2026-03-01T12:00:00Z\n" +
				"v2       draft      acme/bob    -              2026-03-01T12:00:00Z\n",
		},
		{
			name:       "audit list with filters",
			args:       []string{"audit", "list", "--actor", "acme/alice", "--object-type", "api", "--since", "2026-01-01T00:00:00Z", "--limit", "1"},
			wantOut:    "SEQ  TIME                  ACTOR       ACTION      OBJECT\n7    2026-03-01T12:00:00Z  acme/alice  api.create  api vehicles\n",
			wantStderr: "(more results: add --after 7)\n",
			wantQuery:  "actor=acme%2Falice&limit=1&object_type=api&since=2026-01-01T00%3A00%3A00Z",
		},
		{
			name: "tokens list shows status, never secrets",
			args: []string{"tokens", "list", "--operator", "alice"},
			wantOut: "ID  NAME  OPERATOR  PREFIX    STATUS   EXPIRES  LAST USED\n" +
				"t1  ci    alice     fgt_abcd  active   -        -\n" +
				"t2  old   bob       fgt_efgh  revoked  -        -\n",
			wantQuery: "limit=1000&operator=alice",
		},
		{
			name:    "versions history escapes control characters",
			args:    []string{"versions", "history", "vehicles", "v1"},
			wantOut: "AT                    FROM   TO         ACTOR       REASON\n2026-03-01T12:00:00Z  draft  in_review  acme/alice  ready\\x09for review\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, runOpts{env: env(f)}, tc.args...)
			if r.err != nil {
				t.Fatalf("%v\n%s", r.err, r.stderr)
			}
			if strings.HasPrefix(tc.wantOut, "{") {
				jsonEqual(t, []byte(r.stdout), tc.wantOut)
			} else if r.stdout != tc.wantOut {
				t.Errorf("stdout\n got:\n%s\nwant:\n%s", r.stdout, tc.wantOut)
			}
			if r.stderr != tc.wantStderr {
				t.Errorf("stderr = %q, want %q", r.stderr, tc.wantStderr)
			}
			if tc.wantQuery != "" {
				if q := f.last(t).Query; q != tc.wantQuery {
					t.Errorf("query = %q, want %q", q, tc.wantQuery)
				}
			}
		})
	}
}

func TestMutatingCommands(t *testing.T) {
	dir := t.TempDir()
	spec := writeFile(t, filepath.Join(dir, "spec.yaml"), specV1, 0o600)
	bindings := writeFile(t, filepath.Join(dir, "b.json"), `{"http": {"base_path": "/v1"}}`, 0o600)
	badBindings := writeFile(t, filepath.Join(dir, "bad.json"), "{\n  \"http\": {\"base_path\": 1}\n}", 0o600)
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /admin/v1/apis":                        reply(201, map[string]any{"name": "vehicles", "tenant": "acme"}),
		"DELETE /admin/v1/apis/vehicles":             func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
		"POST /admin/v1/apis/vehicles/versions":      reply(201, map[string]any{"version": "v1", "state": "draft", "spec": map[string]any{"format": "openapi", "version": "3.1.0"}}),
		"POST /admin/v1/tenants":                     reply(201, map[string]any{"id": "acme"}),
		"POST /admin/v1/operators":                   reply(201, map[string]any{"name": "bob", "tenant": "acme"}),
		"POST /admin/v1/tokens/t1/revoke":            reply(200, map[string]any{"id": "t1"}),
		"DELETE /admin/v1/apis/vehicles/versions/v1": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
		"POST /admin/v1/apis/vehicles/versions/v1/transitions": reply(200, map[string]any{
			"version": map[string]any{"version": "v1", "state": "deprecated"}, "transition": map[string]any{"from": "published", "to": "deprecated"}}),
	})
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantReq  string // "METHOD path"
		wantBody string // JSON, "" for none
		wantOut  string
		wantErr  string
	}{
		{
			name:     "apis create",
			args:     []string{"apis", "create", "vehicles", "--owner", "fleet-team", "--description", "Cars"},
			wantReq:  "POST /admin/v1/apis",
			wantBody: `{"name":"vehicles","owner":"fleet-team","description":"Cars"}`,
			wantOut:  "Created api acme/vehicles.\n",
		},
		{
			name:    "apis create needs --owner",
			args:    []string{"apis", "create", "vehicles"},
			wantErr: `required flag(s) "owner" not set`,
		},
		{
			name:    "apis delete",
			args:    []string{"apis", "delete", "vehicles"},
			wantReq: "DELETE /admin/v1/apis/vehicles",
			wantOut: "Deleted api vehicles.\n",
		},
		{
			name:     "versions create with spec, upstreams and bindings",
			args:     []string{"versions", "create", "vehicles", "v1", "--spec", spec, "--upstream", "http://a:1", "--upstream", "http://b:2", "--bindings", bindings},
			wantReq:  "POST /admin/v1/apis/vehicles/versions",
			wantBody: `{"version":"v1","spec":` + jsonString(specV1) + `,"upstream":{"targets":["http://a:1","http://b:2"]},"bindings":{"http":{"base_path":"/v1"}}}`,
			wantOut:  "Created version vehicles/v1 (draft, spec openapi 3.1.0).\n",
		},
		{
			name:     "versions create reads the spec from stdin",
			args:     []string{"versions", "create", "vehicles", "v1", "--spec", "-"},
			stdin:    specV1,
			wantReq:  "POST /admin/v1/apis/vehicles/versions",
			wantBody: `{"version":"v1","spec":` + jsonString(specV1) + `}`,
		},
		{
			name:    "versions create reports bad bindings with a position",
			args:    []string{"versions", "create", "vehicles", "v1", "--spec", spec, "--bindings", badBindings},
			wantErr: badBindings + ":2:25: http.base_path must be a string, not 1",
		},
		{
			name:     "versions transition",
			args:     []string{"versions", "transition", "vehicles", "v1", "--to", "deprecated", "--reason", "v2 is out", "--sunset", "2027-01-31T00:00:00Z", "--successor", "v2"},
			wantReq:  "POST /admin/v1/apis/vehicles/versions/v1/transitions",
			wantBody: `{"to":"deprecated","reason":"v2 is out","sunset":"2027-01-31T00:00:00Z","successor":"v2"}`,
			wantOut:  "vehicles/v1: published -> deprecated.\n",
		},
		{
			name:    "versions transition checks --sunset",
			args:    []string{"versions", "transition", "vehicles", "v1", "--to", "deprecated", "--reason", "r", "--sunset", "next week"},
			wantErr: `invalid --sunset "next week"`,
		},
		{
			name:    "versions delete",
			args:    []string{"versions", "delete", "vehicles", "v1"},
			wantReq: "DELETE /admin/v1/apis/vehicles/versions/v1",
			wantOut: "Deleted version vehicles/v1.\n",
		},
		{
			name:     "tenants create",
			args:     []string{"tenants", "create", "acme", "--display-name", "ACME"},
			wantReq:  "POST /admin/v1/tenants",
			wantBody: `{"id":"acme","display_name":"ACME"}`,
			wantOut:  "Created tenant acme.\n",
		},
		{
			name:     "operators create with several roles",
			args:     []string{"operators", "create", "bob", "--role", "author", "--role", "reviewer", "--email", "bob@example.com"},
			wantReq:  "POST /admin/v1/operators",
			wantBody: `{"name":"bob","email":"bob@example.com","roles":["author","reviewer"]}`,
			wantOut:  "Created operator acme/bob with roles author,reviewer.\n",
		},
		{
			name:    "operators create rejects unknown roles",
			args:    []string{"operators", "create", "bob", "--role", "root"},
			wantErr: `unknown role "root"`,
		},
		{
			name:    "tokens revoke",
			args:    []string{"tokens", "revoke", "t1"},
			wantReq: "POST /admin/v1/tokens/t1/revoke",
			wantOut: "Revoked token t1.\n",
		},
		{
			name:    "tokens create checks --expires-in",
			args:    []string{"tokens", "create", "--name", "ci", "--expires-in", "30d"},
			wantErr: `invalid --expires-in "30d"`,
		},
		{
			name:    "path traversal is refused",
			args:    []string{"apis", "get", ".."},
			wantErr: `invalid name ".."`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := len(f.requests())
			r := runCLI(t, runOpts{env: env(f), stdin: tc.stdin}, tc.args...)
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
			if tc.wantBody == "" {
				if len(req.Body) != 0 {
					t.Errorf("unexpected body %s", req.Body)
				}
			} else {
				jsonEqual(t, req.Body, tc.wantBody)
			}
			if tc.wantOut != "" && r.stdout != tc.wantOut {
				t.Errorf("stdout = %q, want %q", r.stdout, tc.wantOut)
			}
		})
	}
}

func TestTokensCreatePrintsSecretOnce(t *testing.T) {
	const secret = "fgt_NEWsecretNEWsecretNEWsecretNEWsecret0000"
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /admin/v1/tokens": reply(201, map[string]any{
			"token":  map[string]any{"id": "t9", "name": "ci", "operator": "alice", "prefix": "fgt_NEWs", "created_at": t0},
			"secret": secret,
		}),
	})
	r := runCLI(t, runOpts{env: env(f)}, "tokens", "create", "--name", "ci", "--operator", "alice", "--expires-in", "720h")
	if r.err != nil {
		t.Fatal(r.err)
	}
	jsonEqual(t, f.last(t).Body, `{"name":"ci","operator":"alice","expires_in":"720h"}`)
	if r.stdout != secret+"\n" {
		t.Errorf("stdout = %q, want the secret alone", r.stdout)
	}
	if !strings.Contains(r.stderr, "will not be shown again") {
		t.Errorf("stderr = %q, want a warning", r.stderr)
	}
	if strings.Count(r.all(), secret) != 1 {
		t.Error("the secret must be printed exactly once")
	}
}

func TestAuditVerify(t *testing.T) {
	tests := []struct {
		name    string
		answer  map[string]any
		wantOut string
		wantErr bool
	}{
		{
			name: "intact",
			answer: map[string]any{"ok": true, "checked": 12, "chains": []map[string]any{
				{"tenant": "acme", "checked": 12, "head_seq": 12, "broken": nil}}},
			wantOut: "TENANT  CHECKED  HEAD  STATUS\nacme    12       12    ok\nAudit log intact: 12 records checked in 1 chains.\n",
		},
		{
			name: "broken chain fails the command",
			answer: map[string]any{"ok": false, "checked": 5, "chains": []map[string]any{
				{"tenant": "acme", "checked": 5, "head_seq": 9, "broken": map[string]any{"tenant": "acme", "seq": 4, "reason": "hash mismatch"}}}},
			wantOut: "TENANT  CHECKED  HEAD  STATUS\nacme    5        9     BROKEN at seq 4: hash mismatch\n",
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, map[string]http.HandlerFunc{"GET /admin/v1/audit/verify": reply(200, tc.answer)})
			r := runCLI(t, runOpts{env: env(f)}, "audit", "verify")
			if (r.err != nil) != tc.wantErr {
				t.Fatalf("err = %v", r.err)
			}
			if r.stdout != tc.wantOut {
				t.Errorf("stdout\n got:\n%s\nwant:\n%s", r.stdout, tc.wantOut)
			}
		})
	}
}

func TestMissingToken(t *testing.T) {
	f := newFakeAPI(t, nil)
	r := runCLI(t, runOpts{env: map[string]string{EnvServer: f.URL}}, "whoami")
	if r.err == nil || !strings.Contains(r.err.Error(), "no token") {
		t.Errorf("err = %v", r.err)
	}
	if len(f.requests()) != 0 {
		t.Error("a request was sent without a token")
	}
}

// failTransport fails every request without touching the network.
type failTransport struct{}

func (failTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in this test")
}

func TestPlainHTTPToRemoteHostWarns(t *testing.T) {
	o := runOpts{env: map[string]string{EnvServer: "http://192.0.2.1:1", EnvToken: testToken}, client: &http.Client{Transport: failTransport{}}}
	r := runCLI(t, o, "whoami")
	if r.err == nil {
		t.Error("want the request to fail")
	}
	if !strings.Contains(r.stderr, "warning: sending the token unencrypted to http://192.0.2.1:1") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

// TestTokenNeverPrinted runs commands through success and every error path
// and checks that the configured token shows up nowhere.
func TestTokenNeverPrinted(t *testing.T) {
	echo := replyProblem(401, map[string]any{"title": "Unauthenticated", "status": 401,
		"detail": "token " + testToken + " is unknown", "errors": []map[string]any{{"pointer": "/authorization", "detail": "Bearer " + testToken}}})
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /admin/v1/whoami": reply(200, map[string]any{"operator": map[string]any{"name": "alice", "roles": []string{"admin"}}, "tenant": "acme"}),
		"GET /admin/v1/apis":   echo,
		"GET /admin/v1/tokens": reply(200, map[string]any{"items": []map[string]any{{"id": "t1", "prefix": testToken[:8]}}}),
		"GET /admin/v1/tenants": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(500)
			_, _ = w.Write([]byte("auth header was Bearer " + testToken))
		},
	})
	dead := newFakeAPI(t, nil)
	dead.Close()
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".config", "fleetgate", "cli.yaml"), "token: "+testToken+"\n", 0o600)

	tests := []struct {
		name string
		o    runOpts
		args []string
	}{
		{"whoami via env", runOpts{env: env(f)}, []string{"whoami"}},
		{"whoami via flag", runOpts{env: map[string]string{EnvServer: f.URL}}, []string{"whoami", "--token", testToken, "-o", "json"}},
		{"whoami via config file", runOpts{env: map[string]string{EnvServer: f.URL}, home: home}, []string{"whoami"}},
		{"problem echoing the token", runOpts{env: env(f)}, []string{"apis", "list"}},
		{"text error echoing the token", runOpts{env: env(f)}, []string{"tenants", "list"}},
		{"tokens list", runOpts{env: env(f)}, []string{"tokens", "list", "-o", "json"}},
		{"network error", runOpts{env: env(dead)}, []string{"apis", "list"}},
		{"server URL with the token as password", runOpts{env: map[string]string{EnvServer: "http://u:" + testToken + "@127.0.0.1:1", EnvToken: testToken}}, []string{"whoami"}},
		{"invalid server URL", runOpts{env: map[string]string{EnvServer: "x" + testToken, EnvToken: testToken}}, []string{"whoami"}},
		{"usage error", runOpts{env: env(f)}, []string{"apis", "get", "--token", testToken}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.o, tc.args...)
			if strings.Contains(r.all(), testToken) {
				t.Errorf("token printed:\nstdout: %s\nstderr: %s\nerr: %v", r.stdout, r.stderr, r.err)
			}
		})
	}
}

func TestMain(m *testing.M) {
	// Commands must not depend on the developer's real config or env.
	for _, k := range []string{EnvServer, EnvToken, EnvTenant, EnvCLIConfig} {
		os.Unsetenv(k)
	}
	os.Exit(m.Run())
}
