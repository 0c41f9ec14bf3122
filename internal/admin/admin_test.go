package admin_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/admin"
)

// TestOpenAPIMatchesRoutes fails when a route is served that the document
// does not describe, or the document describes a route that is not served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(admin.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	var documented []string
	for p, item := range doc.Paths {
		for m := range item {
			if m == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	served := admin.New(admin.Options{}).Routes()
	sort.Strings(documented)
	sort.Strings(served)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("served but not documented: %s", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("documented but not served: %s", r)
		}
	}
	e := newEnv(t)
	r := e.call("", "GET", "/openapi.json", nil)
	if r.status != 200 || !json.Valid(r.body) {
		t.Fatalf("GET openapi.json: %d", r.status)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, token string }{
		{"none", ""},
		{"unknown", "fgt_nope"},
		{"malformed", "Basic abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(tc.token, "GET", "/apis", nil)
			if r.status != 401 || r.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d, content-type %q", r.status, r.header.Get("Content-Type"))
			}
		})
	}
	// A revoked token stops working at once.
	out := e.must(201, rootToken, "POST", "/tokens", map[string]any{"name": "short"})
	secret := out["secret"].(string)
	id := out["token"].(map[string]any)["id"].(string)
	e.must(200, secret, "GET", "/whoami", nil)
	e.must(200, rootToken, "POST", "/tokens/"+id+"/revoke", nil)
	if r := e.call(secret, "GET", "/whoami", nil); r.status != 401 {
		t.Fatalf("revoked token: %d", r.status)
	}
	// Listing tokens never shows a secret or hash.
	r := e.call(rootToken, "GET", "/tokens", nil)
	if strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), "hash") {
		t.Fatalf("token list leaks secrets: %s", r.body)
	}
}

// TestTenantIsolation proves, resource by resource, that an operator of
// tenant B can neither read nor change nor detect tenant A's objects: the
// answers for A's real objects equal those for objects that do not exist.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	a := e.tenantWithAdmin("tenant-a", "alice", "admin")
	b := e.tenantWithAdmin("tenant-b", "bob", "admin", "auditor")
	e.apiWithVersion(a, "vehicles", "v1")
	tokA := e.must(201, a, "POST", "/tokens", map[string]any{"name": "a2"})["token"].(map[string]any)["id"].(string)
	e.must(201, a, "POST", "/apps", map[string]any{"name": "fleet-ops", "attributes": map[string]string{"region": "eu"}})
	keyA := e.must(201, a, "POST", "/apps/fleet-ops/keys", map[string]any{"name": "prod"})["key"].(map[string]any)["id"].(string)
	e.must(201, a, "POST", "/ownerships", map[string]any{"subject": "user:alice", "object_type": "vehicle", "object_id": "VIN-A-1"})

	type probe struct {
		resource, method, real, fake string
		body                         any
	}
	probes := []probe{
		{"tenant", "GET", "/tenants/tenant-a", "/tenants/tenant-zz", nil},
		{"tenant", "PATCH", "/tenants/tenant-a", "/tenants/tenant-zz", map[string]any{"display_name": "x"}},
		{"api", "GET", "/apis/vehicles", "/apis/nosuch", nil},
		{"api", "PATCH", "/apis/vehicles", "/apis/nosuch", map[string]any{"owner": "x"}},
		{"api", "DELETE", "/apis/vehicles", "/apis/nosuch", nil},
		{"version", "GET", "/apis/vehicles/versions/v1", "/apis/nosuch/versions/v1", nil},
		{"version", "PATCH", "/apis/vehicles/versions/v1", "/apis/nosuch/versions/v1", map[string]any{"upstream": map[string]any{"targets": []string{}}}},
		{"version", "DELETE", "/apis/vehicles/versions/v1", "/apis/nosuch/versions/v1", nil},
		{"versions", "GET", "/apis/vehicles/versions", "/apis/nosuch/versions", nil},
		{"transition", "POST", "/apis/vehicles/versions/v1/transitions", "/apis/nosuch/versions/v1/transitions", map[string]any{"to": "in_review"}},
		{"transitions", "GET", "/apis/vehicles/versions/v1/transitions", "/apis/nosuch/versions/v1/transitions", nil},
		{"operator", "GET", "/operators/alice", "/operators/nobody", nil},
		{"operator", "PATCH", "/operators/alice", "/operators/nobody", map[string]any{"roles": []string{"auditor"}}},
		{"operator", "DELETE", "/operators/alice", "/operators/nobody", nil},
		{"token", "GET", "/tokens/" + tokA, "/tokens/00000000-0000-0000-0000-000000000000", nil},
		{"token", "POST", "/tokens/" + tokA + "/revoke", "/tokens/00000000-0000-0000-0000-000000000000/revoke", nil},
		{"token", "DELETE", "/tokens/" + tokA, "/tokens/00000000-0000-0000-0000-000000000000", nil},
		{"app", "GET", "/apps/fleet-ops", "/apps/nosuch", nil},
		{"app", "PATCH", "/apps/fleet-ops", "/apps/nosuch", map[string]any{"description": "x"}},
		{"app", "DELETE", "/apps/fleet-ops", "/apps/nosuch", nil},
		{"apikeys", "GET", "/apps/fleet-ops/keys", "/apps/nosuch/keys", nil},
		{"apikey", "POST", "/apps/fleet-ops/keys", "/apps/nosuch/keys", map[string]any{"name": "stolen"}},
		{"apikey", "POST", "/apps/fleet-ops/keys/" + keyA + "/revoke", "/apps/nosuch/keys/" + keyA + "/revoke", nil},
		{"apikey", "DELETE", "/apps/fleet-ops/keys/" + keyA, "/apps/nosuch/keys/" + keyA, nil},
		{"ownership", "DELETE", "/ownerships?subject=user:alice&object_type=vehicle&object_id=VIN-A-1", "/ownerships?subject=user:alice&object_type=vehicle&object_id=VIN-Z-9", nil},
	}
	norm := regexp.MustCompile(`"(instance|request_id|detail)":"[^"]*"`)
	for _, p := range probes {
		t.Run(p.resource+"_"+p.method, func(t *testing.T) {
			real := e.call(b, p.method, p.real, p.body)
			fake := e.call(b, p.method, p.fake, p.body)
			if real.status != 404 {
				t.Fatalf("%s %s as tenant B: %d, want 404: %s", p.method, p.real, real.status, real.body)
			}
			if real.status != fake.status || norm.ReplaceAllString(string(real.body), "") != norm.ReplaceAllString(string(fake.body), "") {
				t.Fatalf("real and made-up objects answer differently:\n%s\n%s", real.body, fake.body)
			}
		})
	}
	// Lists and the audit log show nothing of tenant A.
	for _, path := range []string{"/apis", "/tenants", "/operators", "/tokens", "/audit", "/apps", "/ownerships"} {
		r := e.call(b, "GET", path, nil)
		if r.status != 200 || strings.Contains(string(r.body), "tenant-a") || strings.Contains(string(r.body), "vehicles") ||
			strings.Contains(string(r.body), "fleet-ops") || strings.Contains(string(r.body), "VIN-A") {
			t.Errorf("GET %s as tenant B leaks tenant A: %d %s", path, r.status, r.body)
		}
	}
	// Naming tenant A in the tenant header does not help a tenant operator.
	if r := e.call(b, "GET", "/apis/vehicles", nil, "Fleetgate-Tenant", "tenant-a"); r.status != 403 {
		t.Fatalf("tenant header from a tenant operator: %d, want 403", r.status)
	}
	// And tenant A's objects are intact.
	e.must(200, a, "GET", "/apis/vehicles/versions/v1", nil)
	e.must(200, a, "GET", "/operators/alice", nil)
	e.must(200, a, "GET", "/apps/fleet-ops", nil)
	if owned := e.must(200, a, "GET", "/ownerships", nil)["items"].([]any); len(owned) != 1 {
		t.Fatalf("tenant A's ownership changed: %v", owned)
	}
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	author := e.tenantWithAdmin("acme", "ann", "author")
	reviewer := e.operator("acme", "rita", "reviewer")
	ops := e.operator("acme", "otto", "operator")
	e.apiWithVersion(author, "vehicles", "v1")
	tr := func(token string, status int, to string, extra ...any) map[string]any {
		t.Helper()
		body := map[string]any{"to": to, "reason": "because " + to}
		for i := 0; i+1 < len(extra); i += 2 {
			body[extra[i].(string)] = extra[i+1]
		}
		return e.must(status, token, "POST", "/apis/vehicles/versions/v1/transitions", body)
	}
	// Illegal transition: 409 listing the allowed ones.
	p := tr(author, 409, "published")
	if fmt.Sprint(p["allowed"]) != "[in_review]" || !strings.Contains(p["type"].(string), "illegal-transition") {
		t.Fatalf("illegal transition answer: %v", p)
	}
	tr(author, 200, "in_review")
	// Content is frozen once submitted.
	e.must(409, author, "PATCH", "/apis/vehicles/versions/v1", map[string]any{"upstream": map[string]any{"targets": []string{"http://127.0.0.1:1"}}})
	tr(reviewer, 200, "draft")
	tr(author, 200, "in_review")
	// The author cannot publish (role), and a reviewer cannot approve a version it authored.
	tr(author, 403, "published")
	tr(reviewer, 200, "published")
	tr(ops, 200, "blocked")
	tr(ops, 200, "published")
	// Deprecation needs a future sunset.
	p = tr(ops, 422, "deprecated")
	if p["errors"].([]any)[0].(map[string]any)["pointer"] != "/sunset" {
		t.Fatalf("missing sunset: %v", p)
	}
	sunset := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	tr(ops, 200, "deprecated", "sunset", sunset, "successor", "v2")
	tr(ops, 200, "retired")
	p = tr(ops, 409, "published")
	if fmt.Sprint(p["allowed"]) != "[]" {
		t.Fatalf("retired is final: %v", p)
	}
	hist := e.must(200, ops, "GET", "/apis/vehicles/versions/v1/transitions", nil)["items"].([]any)
	if len(hist) != 8 {
		t.Fatalf("history has %d transitions, want 8", len(hist))
	}
	first := hist[0].(map[string]any)
	if first["actor"] != "acme/ann" || first["reason"] != "because in_review" || first["to"] != "in_review" {
		t.Fatalf("first transition: %v", first)
	}
	v := e.must(200, ops, "GET", "/apis/vehicles/versions/v1", nil)
	if v["state"] != "retired" || v["successor"] != "v2" || v["sunset"] == nil {
		t.Fatalf("version after lifecycle: %v", v)
	}
}

// TestSelfApprovalForbidden: an operator holding both author and reviewer
// roles still cannot publish its own version.
func TestSelfApprovalForbidden(t *testing.T) {
	e := newEnv(t)
	both := e.tenantWithAdmin("acme", "sam", "author", "reviewer")
	e.apiWithVersion(both, "meters", "v1")
	e.must(200, both, "POST", "/apis/meters/versions/v1/transitions", map[string]any{"to": "in_review"})
	p := e.must(409, both, "POST", "/apis/meters/versions/v1/transitions", map[string]any{"to": "published"})
	if !strings.HasSuffix(p["type"].(string), "separation-of-duties") {
		t.Fatalf("self-approval: %v", p)
	}
}

func TestRBAC(t *testing.T) {
	e := newEnv(t)
	auditor := e.tenantWithAdmin("acme", "audrey", "auditor")
	author := e.operator("acme", "ann", "author")
	for _, tc := range []struct {
		name, token, method, path string
		body                      any
		want                      int
	}{
		{"auditor cannot create APIs", auditor, "POST", "/apis", map[string]any{"name": "x", "owner": "o"}, 403},
		{"author cannot create operators", author, "POST", "/operators", map[string]any{"name": "x", "roles": []string{"admin"}}, 403},
		{"author cannot read the audit log", author, "GET", "/audit", nil, 403},
		{"auditor reads the audit log", auditor, "GET", "/audit", nil, 200},
		{"tenant admin cannot create tenants", author, "POST", "/tenants", map[string]any{"id": "other"}, 403},
		{"author creates APIs", author, "POST", "/apis", map[string]any{"name": "x", "owner": "o"}, 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.call(tc.token, tc.method, tc.path, tc.body); r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
		})
	}
}
