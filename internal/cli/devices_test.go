package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDevicesCommands(t *testing.T) {
	dev := map[string]any{"id": "meter-1", "tenant": "acme", "model": "m1", "serial": "S1", "owners": []string{"user:alice"},
		"attributes": map[string]string{"region": "eu"}, "status": "active", "firmware": "1.0.0", "last_seen": t0, "created_at": t0, "updated_at": t0}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /admin/v1/devices": reply(200, map[string]any{"items": []map[string]any{
			dev, {"id": "meter-2", "model": "m2", "status": "pending", "created_at": t0},
			{"id": "meter-3", "model": "m1", "status": "quarantined", "created_at": t0},
		}}),
		"GET /admin/v1/devices/meter-1":    reply(200, dev),
		"POST /admin/v1/devices":           reply(201, dev),
		"PATCH /admin/v1/devices/meter-1":  reply(200, dev),
		"DELETE /admin/v1/devices/meter-1": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
		"GET /admin/v1/devices/meter-1/credentials": reply(200, map[string]any{"items": []map[string]any{
			{"id": "c1", "device": "meter-1", "kind": "certificate", "serial": "0a1b", "fingerprint": fp1, "not_after": "2099-01-01T00:00:00Z", "created_at": t0},
			{"id": "c2", "device": "meter-1", "kind": "certificate", "serial": "0c2d", "revoked_at": t0, "revoke_reason": "superseded", "created_at": t0},
			{"id": "c3", "device": "meter-1", "kind": "token", "not_after": t0, "created_at": t0},
		}}),
		"POST /admin/v1/devices/meter-1/credentials/c1/revoke": reply(200, map[string]any{"id": "c1", "revoked_at": t0, "revoke_reason": "keyCompromise"}),
		"POST /admin/v1/devices/meter-1/credentials/c2/revoke": reply(200, map[string]any{"id": "c2", "revoked_at": t0, "revoke_reason": "superseded"}),
	})
	tests := []struct {
		name, wantReq, wantBody, wantOut, wantErr string
		args                                      []string
	}{
		{
			name: "list", args: []string{"devices", "list"}, wantReq: "GET /admin/v1/devices",
			wantOut: "ID       STATUS       MODEL  SERIAL  FIRMWARE  OWNERS      LAST SEEN\n" +
				"meter-1  active       m1     S1      1.0.0     user:alice  2026-03-01T12:00:00Z\n" +
				"meter-2  pending      m2     -       -         -           -\n" +
				"meter-3  quarantined  m1     -       -         -           -\n",
		},
		{
			name: "list filters locally", args: []string{"devices", "list", "--model", "m1", "--status", "quarantined"}, wantReq: "GET /admin/v1/devices",
			wantOut: "ID       STATUS       MODEL  SERIAL  FIRMWARE  OWNERS  LAST SEEN\n" +
				"meter-3  quarantined  m1     -       -         -       -\n",
		},
		{name: "list checks --status", args: []string{"devices", "list", "--status", "lost"}, wantErr: `invalid --status "lost"`},
		{
			name: "get", args: []string{"devices", "get", "meter-1"}, wantReq: "GET /admin/v1/devices/meter-1",
			wantOut: "ID:          meter-1\nTenant:      acme\nStatus:      active\nModel:       m1\nSerial:      S1\nFirmware:    1.0.0\n" +
				"Owners:      user:alice\nAttributes:  region=eu\nFirst seen:  -\nLast seen:   2026-03-01T12:00:00Z\n" +
				"Created:     2026-03-01T12:00:00Z\nUpdated:     2026-03-01T12:00:00Z\n",
		},
		{
			name: "create with every flag",
			args: []string{"devices", "create", "meter-1", "--model", "m1", "--serial", "S1", "--firmware", "1.0.0", "--status", "active",
				"--owner", "user:alice", "--owner", "app:ops", "--attr", "region=eu"},
			wantReq:  "POST /admin/v1/devices",
			wantBody: `{"id":"meter-1","model":"m1","serial":"S1","firmware":"1.0.0","status":"active","owners":["user:alice","app:ops"],"attributes":{"region":"eu"}}`,
			wantOut:  "Created device acme/meter-1 (active).\n",
		},
		{name: "create with an id only", args: []string{"devices", "create", "meter-1"}, wantReq: "POST /admin/v1/devices", wantBody: `{"id":"meter-1"}`},
		{name: "create checks --attr", args: []string{"devices", "create", "meter-1", "--attr", "region"}, wantErr: `invalid --attr "region"`},
		{
			name: "update status with a reason", args: []string{"devices", "update", "meter-1", "--status", "quarantined", "--reason", "tamper alarm"},
			wantReq: "PATCH /admin/v1/devices/meter-1", wantBody: `{"status":"quarantined","reason":"tamper alarm"}`,
		},
		{
			name: "update firmware and attributes", args: []string{"devices", "update", "meter-1", "--firmware", "1.2.0", "--attr", "region=us"},
			wantReq: "PATCH /admin/v1/devices/meter-1", wantBody: `{"firmware":"1.2.0","attributes":{"region":"us"}}`,
		},
		{
			name: "update clears owners and attributes", args: []string{"devices", "update", "meter-1", "--clear-owners", "--clear-attrs"},
			wantReq: "PATCH /admin/v1/devices/meter-1", wantBody: `{"owners":[],"attributes":{}}`,
		},
		{name: "update --reason needs --status", args: []string{"devices", "update", "meter-1", "--reason", "x"}, wantErr: "give it with --status"},
		{name: "update checks --status", args: []string{"devices", "update", "meter-1", "--status", "retired"}, wantErr: `invalid --status "retired"`},
		{name: "update without flags", args: []string{"devices", "update", "meter-1"}, wantErr: "nothing to update"},
		{name: "update --owner with --clear-owners", args: []string{"devices", "update", "meter-1", "--owner", "user:a", "--clear-owners"}, wantErr: "not both"},
		{name: "delete", args: []string{"devices", "delete", "meter-1"}, wantReq: "DELETE /admin/v1/devices/meter-1", wantOut: "Deleted device meter-1.\n"},
		{
			name: "credentials", args: []string{"devices", "credentials", "meter-1"}, wantReq: "GET /admin/v1/devices/meter-1/credentials",
			wantOut: "ID  KIND         STATUS                SERIAL  FINGERPRINT                                                       NOT AFTER             CREATED\n" +
				"c1  certificate  active                0a1b    " + fp1 + "  2099-01-01T00:00:00Z  2026-03-01T12:00:00Z\n" +
				"c2  certificate  revoked (superseded)  0c2d    -                                                                 -                     2026-03-01T12:00:00Z\n" +
				"c3  token        expired               -       -                                                                 2026-03-01T12:00:00Z  2026-03-01T12:00:00Z\n",
		},
		{
			name: "revoke", args: []string{"devices", "revoke", "meter-1", "c1", "--reason", "keyCompromise"},
			wantReq: "POST /admin/v1/devices/meter-1/credentials/c1/revoke", wantBody: `{"reason":"keyCompromise"}`,
			wantOut: "Revoked credential c1 of device meter-1 (keyCompromise).\n",
		},
		{
			name: "revoke twice keeps the first reason", args: []string{"devices", "revoke", "meter-1", "c2", "--reason", "keyCompromise"},
			wantReq: "POST /admin/v1/devices/meter-1/credentials/c2/revoke",
			wantOut: "Credential c2 of device meter-1 was already revoked at 2026-03-01T12:00:00Z (superseded); that revocation stands.\n",
		},
		{name: "revoke needs --reason", args: []string{"devices", "revoke", "meter-1", "c1"}, wantErr: `required flag(s) "reason" not set`},
		{name: "revoke checks --reason", args: []string{"devices", "revoke", "meter-1", "c1", "--reason", "lost"}, wantErr: `invalid --reason "lost"`},
		{name: "enroll-token checks --expires-in", args: []string{"devices", "enroll-token", "meter-1", "--expires-in", "1d"}, wantErr: `invalid --expires-in "1d"`},
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
}

func TestDevicesEnrollTokenPrintsSecretOnce(t *testing.T) {
	const secret = "fge_ENROLLsecretENROLLsecretENROLLsecret0000"
	answer := map[string]any{"token": map[string]any{"id": "e1", "device": "meter-1", "expires_at": t0, "created_at": t0}, "secret": secret}
	f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/devices/meter-1/enrollment-tokens": reply(201, answer)})

	r := runCLI(t, runOpts{env: env(f)}, "devices", "enroll-token", "meter-1", "--expires-in", "2h")
	if r.err != nil {
		t.Fatal(r.err)
	}
	jsonEqual(t, f.last(t).Body, `{"expires_in":"2h"}`)
	if r.stdout != secret+"\n" {
		t.Errorf("stdout = %q, want the secret alone", r.stdout)
	}
	if want := "Created enrollment token e1 for device meter-1, expires 2026-03-01T12:00:00Z.\nWarning: the secret below will not be shown again; store it now.\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	if strings.Count(r.all(), secret) != 1 {
		t.Error("the secret must be printed exactly once")
	}

	// Without --expires-in no body is sent: the server's default applies.
	r = runCLI(t, runOpts{env: env(f)}, "devices", "enroll-token", "meter-1", "-o", "json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if b := f.last(t).Body; len(b) != 0 {
		t.Errorf("body = %q, want none", b)
	}
	jsonEqual(t, []byte(r.stdout), mustJSON(t, answer))
	if strings.Count(r.all(), secret) != 1 || strings.Contains(r.stderr, secret) {
		t.Error("with -o json the secret must be in stdout once, not in stderr")
	}
}

func TestDevicesEnrollTokenSecretNeverInErrors(t *testing.T) {
	const secret = "fge_LEAKEDifPRINTEDleakedIFprintedLEAKED000"
	tests := map[string]http.HandlerFunc{
		"undecodable answer": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"token": "` + secret + `", "secret": ["` + secret + `"]}`))
		},
		"no secret": reply(201, map[string]any{"token": map[string]any{"id": "e1"}}),
		"problem":   replyProblem(409, map[string]any{"title": "Conflict", "status": 409, "detail": "device meter-1 is decommissioned"}),
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/devices/meter-1/enrollment-tokens": h})
			r := runCLI(t, runOpts{env: env(f)}, "devices", "enroll-token", "meter-1")
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

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDevicesImport(t *testing.T) {
	const csvFile = "id,model,owners,attr.region\nmeter-1,m1,user:alice;user:bob,eu\nbad id,m1,,\nmeter-1,m2,,us\n"
	rejected := replyProblem(422, map[string]any{"title": "Validation failed", "status": 422, "detail": "2 of 3 rows are invalid; nothing was imported",
		"errors": []map[string]any{
			{"pointer": "/rows/1/id", "detail": "device id must be 1-64 characters of A-Z a-z 0-9 . _ @ : -", "line": 3},
			{"pointer": "/rows/2/id", "detail": "same id as row 0", "line": 4},
		}})

	t.Run("CSV goes as text/csv, verbatim; errors name row, field and line", func(t *testing.T) {
		f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/devices/import": rejected})
		path := writeTemp(t, "meters.csv", csvFile)
		r := runCLI(t, runOpts{env: env(f)}, "devices", "import", "-f", path)
		req := f.last(t)
		if ct := req.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("Content-Type = %q", ct)
		}
		if string(req.Body) != csvFile || req.Query != "" {
			t.Errorf("body = %q, query = %q", req.Body, req.Query)
		}
		if r.err == nil {
			t.Fatal("want an error")
		}
		want := "Validation failed (422): 2 of 3 rows are invalid; nothing was imported\n" +
			"  " + path + ":3: row 1: id: device id must be 1-64 characters of A-Z a-z 0-9 . _ @ : -\n" +
			"  " + path + ":4: row 2: id: same id as row 0\n" +
			"imported 0 of 3 devices; fix the rows above, or add --partial to import the valid ones"
		if r.err.Error() != want {
			t.Errorf("err\n got: %s\nwant: %s", r.err, want)
		}
		if r.stdout != "" {
			t.Errorf("stdout = %q", r.stdout)
		}
		if strings.Contains(r.all(), testToken) {
			t.Error("token printed")
		}
	})

	t.Run("JSON rows are placed at their line locally", func(t *testing.T) {
		f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/devices/import": replyProblem(422, map[string]any{
			"title": "Validation failed", "status": 422,
			"errors": []map[string]any{{"pointer": "/rows/1/attributes/Bad~1Key", "detail": "attribute names are lowercase identifiers"}},
		})})
		content := "[\n  {\"id\": \"meter-1\"},\n  {\n    \"id\": \"meter-2\", \"attributes\": {\"Bad/Key\": \"x\"}\n  }\n]\n"
		path := writeTemp(t, "meters.json", content)
		r := runCLI(t, runOpts{env: env(f)}, "devices", "import", "-f", path, "--partial")
		req := f.last(t)
		if req.Header.Get("Content-Type") != "application/json" || string(req.Body) != content || req.Query != "partial=true" {
			t.Errorf("request: %q %q %q", req.Header.Get("Content-Type"), req.Body, req.Query)
		}
		want := path + ":3: row 1: attributes/Bad/Key: attribute names are lowercase identifiers"
		if r.err == nil || !strings.Contains(r.err.Error(), "\n  "+want+"\nimported 0 of 2 devices") || strings.Contains(r.err.Error(), "--partial") {
			t.Errorf("err = %v, want it to hold %q and no --partial hint", r.err, want)
		}
	})

	t.Run("partial import prints the bad rows and the summary", func(t *testing.T) {
		f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/devices/import": reply(201, map[string]any{
			"imported": 1, "failed": 2, "errors": []map[string]any{
				{"pointer": "/rows/1/id", "detail": "bad \x1b[31mid", "line": 3},
				{"pointer": "/rows/2/id", "detail": "device already exists", "line": 4},
			}})})
		path := writeTemp(t, "meters.csv", csvFile)
		r := runCLI(t, runOpts{env: env(f)}, "devices", "import", "-f", path, "--partial")
		if r.err != nil {
			t.Fatal(r.err)
		}
		if want := path + ":3: row 1: id: bad \\x1b[31mid\n" + path + ":4: row 2: id: device already exists\n"; r.stderr != want {
			t.Errorf("stderr\n got: %q\nwant: %q", r.stderr, want)
		}
		if want := "imported 1 of 3 devices from " + path + "; 2 bad rows skipped (listed above)\n"; r.stdout != want {
			t.Errorf("stdout = %q, want %q", r.stdout, want)
		}
	})

	t.Run("success", func(t *testing.T) {
		f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/devices/import": reply(201, map[string]any{"imported": 3, "failed": 0, "errors": []any{}})})
		r := runCLI(t, runOpts{env: env(f), stdin: csvFile}, "devices", "import", "-f", "-", "--format", "csv")
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.stdout != "imported 3 of 3 devices from stdin\n" || r.stderr != "" {
			t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
		}
	})

	t.Run("a broken file is reported at its line and not sent", func(t *testing.T) {
		f := newFakeAPI(t, nil)
		for name, content := range map[string]string{
			"a.json": "[\n {\"id\": \"x\"},\n {\"id\": }\n]",
			"b.csv":  "id,model\n\"x,m\n",
			"c.json": "{\"id\": \"x\"}",
			"d.csv":  "id\n",
		} {
			r := runCLI(t, runOpts{env: env(f)}, "devices", "import", "-f", writeTemp(t, name, content))
			if r.err == nil || !strings.Contains(r.err.Error(), name) {
				t.Errorf("%s: err = %v", name, r.err)
			}
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})

	t.Run("progress for large files", func(t *testing.T) {
		f := newFakeAPI(t, map[string]http.HandlerFunc{"POST /admin/v1/devices/import": reply(201, map[string]any{"imported": 6000, "failed": 0, "errors": []any{}})})
		var b strings.Builder
		b.WriteString("id,model\n")
		for i := range 6000 {
			fmt.Fprintf(&b, "meter-%d,m1\n", i)
		}
		path := writeTemp(t, "big.csv", b.String())
		r := runCLI(t, runOpts{env: env(f)}, "devices", "import", "-f", path)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(f.requests()) != 1 {
			t.Errorf("%d requests, want one: the import is all or nothing", len(f.requests()))
		}
		if !strings.Contains(r.stderr, "uploading "+path+": 50%\n") || !strings.HasSuffix(r.stderr, "uploaded "+path+" (6000 rows); the server is importing them...\n") {
			t.Errorf("stderr = %q", r.stderr)
		}
		if !strings.HasPrefix(r.stdout, "imported 6000 of 6000 devices") {
			t.Errorf("stdout = %q", r.stdout)
		}
	})
}

// testCA makes a CA certificate and a CRL it signed, listing one serial.
func testCA(t *testing.T) (certPEM string, crlDER []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acme devices"},
		NotBefore: t0, NotAfter: t0.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(7), ThisUpdate: t0, NextUpdate: t0.Add(24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(42), RevocationTime: t0, ReasonCode: 1}}}, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), crl
}

func TestCACommands(t *testing.T) {
	certPEM, crl := testCA(t)
	raw := func(ct string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			_, _ = w.Write(body)
		}
	}
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /admin/v1/ca":    reply(201, map[string]any{"tenant": "acme", "key_type": "ed25519", "created_at": t0, "certificate": certPEM, "not_after": t0}),
		"GET /admin/v1/ca":     raw("application/x-pem-file", []byte("\x1b[2J\n"+certPEM+"trailing \x1b]0;junk\n")),
		"GET /admin/v1/ca/crl": raw("application/pkix-crl", crl),
	})

	t.Run("create", func(t *testing.T) {
		r := runCLI(t, runOpts{env: env(f)}, "ca", "create", "--key-type", "ed25519", "--validity", "87600h")
		if r.err != nil {
			t.Fatal(r.err)
		}
		jsonEqual(t, f.last(t).Body, `{"key_type":"ed25519","validity":"87600h"}`)
		if want := "Created the device CA of tenant acme (ed25519), valid until 2026-03-01T12:00:00Z. `fleetgate ca get` prints its certificate.\n"; r.stdout != want {
			t.Errorf("stdout = %q", r.stdout)
		}
		if r = runCLI(t, runOpts{env: env(f)}, "ca", "create"); r.err != nil {
			t.Fatal(r.err)
		}
		jsonEqual(t, f.last(t).Body, `{}`)
	})

	t.Run("get prints the PEM alone", func(t *testing.T) {
		r := runCLI(t, runOpts{env: env(f)}, "ca", "get")
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.stdout != certPEM {
			t.Errorf("stdout = %q, want the certificate", r.stdout)
		}
	})

	t.Run("crl is written byte for byte", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "devices.crl")
		if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, runOpts{env: env(f)}, "ca", "crl", "-f", path)
		if r.err != nil {
			t.Fatal(r.err)
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, crl) {
			t.Errorf("file holds %d bytes (%v), want the %d bytes of the CRL", len(got), err, len(crl))
		}
		if want := "Wrote the CRL (1 revoked certificate, next update 2026-03-02T12:00:00Z) to " + path + ".\n"; r.stdout != want {
			t.Errorf("stdout = %q, want %q", r.stdout, want)
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			t.Errorf("%d files left beside the CRL", len(entries)-1)
		}
	})

	t.Run("crl refuses what is not a CRL", func(t *testing.T) {
		g := newFakeAPI(t, map[string]http.HandlerFunc{"GET /admin/v1/ca/crl": raw("text/html", []byte("<html>proxy</html>"))})
		path := filepath.Join(t.TempDir(), "devices.crl")
		r := runCLI(t, runOpts{env: env(g)}, "ca", "crl", "-f", path)
		if r.err == nil || !strings.Contains(r.err.Error(), "not a DER CRL") {
			t.Fatalf("err = %v", r.err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Error("a file was written")
		}
	})

	t.Run("crl needs --file", func(t *testing.T) {
		r := runCLI(t, runOpts{env: env(f)}, "ca", "crl")
		if r.err == nil || !strings.Contains(r.err.Error(), `"file" not set`) {
			t.Fatalf("err = %v", r.err)
		}
	})
}
