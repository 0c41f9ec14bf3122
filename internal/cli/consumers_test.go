package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const fp1 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fp1Colons is fp1 as openssl prints it.
var fp1Colons = func() string {
	var parts []string
	for i := 0; i < len(fp1); i += 2 {
		parts = append(parts, strings.ToUpper(fp1[i:i+2]))
	}
	return strings.Join(parts, ":")
}()

func TestAppsCommands(t *testing.T) {
	app := map[string]any{"id": "a1", "tenant": "acme", "name": "fleet-ops", "description": "Ops console",
		"attributes": map[string]string{"region": "eu", "tier": "gold"}, "cert_fingerprints": []string{fp1}, "created_at": t0, "updated_at": t0}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /admin/v1/apps": reply(200, map[string]any{"items": []map[string]any{
			app, {"name": "bare", "created_at": t0},
		}}),
		"GET /admin/v1/apps/fleet-ops":    reply(200, app),
		"POST /admin/v1/apps":             reply(201, app),
		"PATCH /admin/v1/apps/fleet-ops":  reply(200, app),
		"DELETE /admin/v1/apps/fleet-ops": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
	})
	tests := []struct {
		name     string
		args     []string
		wantReq  string // "METHOD path"; "" when nothing may be sent
		wantBody string
		wantOut  string
		wantErr  string
	}{
		{
			name:    "list",
			args:    []string{"apps", "list"},
			wantReq: "GET /admin/v1/apps",
			wantOut: "NAME       DESCRIPTION  ATTRIBUTES           CERTS  CREATED\n" +
				"fleet-ops  Ops console  region=eu,tier=gold  1      2026-03-01T12:00:00Z\n" +
				"bare       -            -                    0      2026-03-01T12:00:00Z\n",
		},
		{
			name:    "get",
			args:    []string{"apps", "get", "fleet-ops"},
			wantReq: "GET /admin/v1/apps/fleet-ops",
			wantOut: "Name:                fleet-ops\nID:                  a1\nTenant:              acme\nDescription:         Ops console\n" +
				"Attributes:          region=eu,tier=gold\nCert fingerprint 1:  " + fp1 + "\n" +
				"Created:             2026-03-01T12:00:00Z\nUpdated:             2026-03-01T12:00:00Z\n",
		},
		{
			name:     "create with every flag; openssl fingerprints are normalised",
			args:     []string{"apps", "create", "fleet-ops", "--description", "Ops console", "--attr", "region=eu", "--attr", "tier=gold=1", "--cert-fingerprint", fp1Colons},
			wantReq:  "POST /admin/v1/apps",
			wantBody: `{"name":"fleet-ops","description":"Ops console","attributes":{"region":"eu","tier":"gold=1"},"cert_fingerprints":["` + fp1 + `"]}`,
			wantOut:  "Created app acme/fleet-ops.\n",
		},
		{
			name:     "create with a name only",
			args:     []string{"apps", "create", "fleet-ops"},
			wantReq:  "POST /admin/v1/apps",
			wantBody: `{"name":"fleet-ops"}`,
		},
		{
			name:    "create refuses an attribute without =",
			args:    []string{"apps", "create", "fleet-ops", "--attr", "region"},
			wantErr: `invalid --attr "region": want name=value`,
		},
		{
			name:    "create refuses an attribute given twice",
			args:    []string{"apps", "create", "fleet-ops", "--attr", "a=1", "--attr", "a=2"},
			wantErr: "--attr a is given twice",
		},
		{
			name:    "create refuses a short fingerprint",
			args:    []string{"apps", "create", "fleet-ops", "--cert-fingerprint", "abcd"},
			wantErr: `invalid --cert-fingerprint "abcd"`,
		},
		{
			name:     "update sends only what is given",
			args:     []string{"apps", "update", "fleet-ops", "--description", ""},
			wantReq:  "PATCH /admin/v1/apps/fleet-ops",
			wantBody: `{"description":""}`,
		},
		{
			name:     "update replaces attributes",
			args:     []string{"apps", "update", "fleet-ops", "--attr", "region=us"},
			wantReq:  "PATCH /admin/v1/apps/fleet-ops",
			wantBody: `{"attributes":{"region":"us"}}`,
		},
		{
			name:     "update clears attributes and certificates",
			args:     []string{"apps", "update", "fleet-ops", "--clear-attrs", "--clear-cert-fingerprints"},
			wantReq:  "PATCH /admin/v1/apps/fleet-ops",
			wantBody: `{"attributes":{},"cert_fingerprints":[]}`,
		},
		{
			name:    "update without flags sends nothing",
			args:    []string{"apps", "update", "fleet-ops"},
			wantErr: "nothing to update",
		},
		{
			name:    "update refuses --attr with --clear-attrs",
			args:    []string{"apps", "update", "fleet-ops", "--attr", "a=1", "--clear-attrs"},
			wantErr: "give --attr or --clear-attrs, not both",
		},
		{
			name:    "delete",
			args:    []string{"apps", "delete", "fleet-ops"},
			wantReq: "DELETE /admin/v1/apps/fleet-ops",
			wantOut: "Deleted app fleet-ops.\n",
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
			if tc.wantBody != "" {
				jsonEqual(t, req.Body, tc.wantBody)
			}
			if tc.wantOut != "" && r.stdout != tc.wantOut {
				t.Errorf("stdout\n got:\n%s\nwant:\n%s", r.stdout, tc.wantOut)
			}
		})
	}

	t.Run("update prints the result", func(t *testing.T) {
		r := runCLI(t, runOpts{env: env(f)}, "apps", "update", "fleet-ops", "--attr", "region=eu", "--attr", "tier=gold")
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !strings.HasPrefix(r.stdout, "Updated app acme/fleet-ops.\nName:") || !strings.Contains(r.stdout, "region=eu,tier=gold") {
			t.Errorf("stdout = %q", r.stdout)
		}
	})
}

func TestKeysCommands(t *testing.T) {
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /admin/v1/apps/fleet-ops/keys": reply(200, map[string]any{"items": []map[string]any{
			{"id": "k1", "name": "prod", "prefix": "fgk_ab12", "created_at": t0},
			{"id": "k2", "name": "old", "prefix": "fgk_cd34", "revoked_at": t0, "created_at": t0},
			{"id": "k3", "name": "tmp", "prefix": "fgk_ef56", "expires_at": t0, "created_at": t0},
		}}),
		"POST /admin/v1/apps/fleet-ops/keys/k1/revoke": reply(200, map[string]any{"id": "k1", "revoked_at": t0}),
		"DELETE /admin/v1/apps/fleet-ops/keys/k1":      func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
	})
	tests := []struct {
		name, wantReq, wantOut, wantErr string
		args                            []string
	}{
		{
			name: "list shows status, never secrets", args: []string{"keys", "list", "fleet-ops"},
			wantReq: "GET /admin/v1/apps/fleet-ops/keys",
			wantOut: "ID  NAME  PREFIX    STATUS   EXPIRES               CREATED\n" +
				"k1  prod  fgk_ab12  active   -                     2026-03-01T12:00:00Z\n" +
				"k2  old   fgk_cd34  revoked  -                     2026-03-01T12:00:00Z\n" +
				"k3  tmp   fgk_ef56  expired  2026-03-01T12:00:00Z  2026-03-01T12:00:00Z\n",
		},
		{name: "revoke", args: []string{"keys", "revoke", "fleet-ops", "k1"}, wantReq: "POST /admin/v1/apps/fleet-ops/keys/k1/revoke", wantOut: "Revoked API key k1 of app fleet-ops.\n"},
		{name: "delete", args: []string{"keys", "delete", "fleet-ops", "k1"}, wantReq: "DELETE /admin/v1/apps/fleet-ops/keys/k1", wantOut: "Deleted API key fleet-ops/k1.\n"},
		{name: "create needs --name", args: []string{"keys", "create", "fleet-ops"}, wantErr: `required flag(s) "name" not set`},
		{name: "create checks --expires-in", args: []string{"keys", "create", "fleet-ops", "--name", "x", "--expires-in", "1y"}, wantErr: `invalid --expires-in "1y"`},
		{name: "delete needs the key", args: []string{"keys", "delete", "fleet-ops"}, wantErr: "accepts 2 arg(s)"},
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
			if req := f.last(t); req.Method+" "+req.Path != tc.wantReq {
				t.Errorf("request = %s %s, want %s", req.Method, req.Path, tc.wantReq)
			}
			if r.stdout != tc.wantOut {
				t.Errorf("stdout\n got:\n%s\nwant:\n%s", r.stdout, tc.wantOut)
			}
		})
	}
}

func TestKeysCreatePrintsSecretOnce(t *testing.T) {
	const secret = "fgk_NEWkeySECRETnewKEYsecretNEWkeySECRET00"
	answer := map[string]any{
		"key":    map[string]any{"id": "k9", "name": "prod", "application": "fleet-ops", "prefix": "fgk_NEWk", "expires_at": t0, "created_at": t0},
		"secret": secret,
	}
	f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/apps/fleet-ops/keys": reply(201, answer)})

	r := runCLI(t, runOpts{env: env(f)}, "keys", "create", "fleet-ops", "--name", "prod", "--expires-in", "720h")
	if r.err != nil {
		t.Fatal(r.err)
	}
	jsonEqual(t, f.last(t).Body, `{"name":"prod","expires_in":"720h"}`)
	if r.stdout != secret+"\n" {
		t.Errorf("stdout = %q, want the secret alone", r.stdout)
	}
	if want := "Created API key k9 (prod) for app fleet-ops, expires 2026-03-01T12:00:00Z.\nWarning: the secret below will not be shown again; store it now.\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	if strings.Count(r.all(), secret) != 1 {
		t.Error("the secret must be printed exactly once")
	}

	r = runCLI(t, runOpts{env: env(f)}, "keys", "create", "fleet-ops", "--name", "prod", "-o", "json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	jsonEqual(t, []byte(r.stdout), mustJSON(t, answer))
	if strings.Count(r.all(), secret) != 1 || strings.Contains(r.stderr, secret) {
		t.Error("with -o json the secret must be in stdout once, not in stderr")
	}
	jsonEqual(t, f.last(t).Body, `{"name":"prod"}`)
}

// TestKeysCreateSecretNeverInErrors: when the answer cannot be used, the
// error says so without quoting the secret it carried.
func TestKeysCreateSecretNeverInErrors(t *testing.T) {
	const secret = "fgk_LEAKEDifPRINTEDleakedIFprinted00000000"
	tests := map[string]http.HandlerFunc{
		"undecodable answer": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"key": "` + secret + `", "secret": ["` + secret + `"]}`))
		},
		"no secret": reply(201, map[string]any{"key": map[string]any{"id": "k9"}}),
		"problem echoing it": replyProblem(422, map[string]any{"title": "Invalid", "status": 422,
			"errors": []map[string]any{{"pointer": "/name", "detail": "bad"}}}),
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/apps/fleet-ops/keys": h})
			r := runCLI(t, runOpts{env: env(f)}, "keys", "create", "fleet-ops", "--name", "prod")
			if r.err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(r.all(), secret) {
				t.Errorf("secret printed:\nstdout: %s\nstderr: %s\nerr: %v", r.stdout, r.stderr, r.err)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
