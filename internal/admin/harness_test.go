package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/app"
	"github.com/fleetgate/fleetgate/internal/config"
)

const rootToken = "fgt_test-root-token-0123456789abcdef"

// env is a real node (SQLite file, real listener on 127.0.0.1) for tests.
type env struct {
	t    *testing.T
	url  string
	app  *app.App
	dir  string
	http *http.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.AdminToken = rootToken
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return &env{t: t, url: a.AdminURL(), app: a, dir: cfg.DataDir, http: &http.Client{Timeout: 30 * time.Second}}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// call sends a request; body may be a string (sent raw) or any JSON value.
func (e *env) call(token, method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+"/admin/v1"+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// must asserts the status and returns the decoded body.
func (e *env) must(status int, token, method, path string, body any, hdr ...string) map[string]any {
	e.t.Helper()
	r := e.call(token, method, path, body, hdr...)
	if r.status != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(e.t)
}

// tenantWithAdmin creates a tenant and an operator with roles, returning
// the operator's token secret.
func (e *env) tenantWithAdmin(tenant, name string, roles ...string) string {
	e.t.Helper()
	if r := e.call(rootToken, "GET", "/tenants/"+tenant, nil); r.status == 404 {
		e.must(201, rootToken, "POST", "/tenants", map[string]any{"id": tenant})
	}
	return e.operator(tenant, name, roles...)
}

func (e *env) operator(tenant, name string, roles ...string) string {
	e.t.Helper()
	h := []string{"Fleetgate-Tenant", tenant}
	e.must(201, rootToken, "POST", "/operators", map[string]any{"name": name, "roles": roles}, h...)
	out := e.must(201, rootToken, "POST", "/tokens", map[string]any{"name": "t-" + name, "operator": name}, h...)
	return out["secret"].(string)
}

const vehicleSpec = `openapi: 3.1.0
info:
  title: Vehicles
  version: "1.0"
servers:
  - url: https://api.example.com/v1
security:
  - key: []
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-API-Key}
paths:
  /vehicles/{vin}/battery:
    get:
      operationId: getBattery
      responses:
        "200":
          description: ok
  /vehicles/{vin}/climate:
    post:
      operationId: setClimate
      responses:
        "204":
          description: ok
`

func (e *env) apiWithVersion(token, api, version string, hdr ...string) {
	e.t.Helper()
	e.must(201, token, "POST", "/apis", map[string]any{"name": api, "owner": "fleet-team"}, hdr...)
	owned := []map[string]any{{"param": "vin", "owned": "vehicle"}}
	e.must(201, token, "POST", "/apis/"+api+"/versions", map[string]any{"version": version, "spec": vehicleSpec,
		"upstream": map[string]any{"targets": []string{"http://127.0.0.1:9999"}},
		"policy":   map[string]any{"operations": map[string]any{"getBattery": map[string]any{"bindings": owned}, "setClimate": map[string]any{"bindings": owned}}}}, hdr...)
}
