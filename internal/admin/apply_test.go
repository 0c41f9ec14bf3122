package admin_test

import (
	"fmt"
	"testing"
)

func fleet(dryRun bool, owner string, extraVersion map[string]any) map[string]any {
	owned := []map[string]any{{"param": "vin", "owned": "vehicle"}}
	versions := []any{map[string]any{"version": "v1", "spec": vehicleSpec, "upstream": map[string]any{"targets": []string{"http://127.0.0.1:9001"}},
		"policy": map[string]any{"operations": map[string]any{"getBattery": map[string]any{"bindings": owned}, "setClimate": map[string]any{"bindings": owned}}}}}
	if extraVersion != nil {
		versions = append(versions, extraVersion)
	}
	return map[string]any{
		"dry_run": dryRun,
		"tenants": []any{map[string]any{"id": "acme", "display_name": "ACME"}},
		"apis": []any{
			map[string]any{"tenant": "acme", "name": "vehicles", "owner": owner, "versions": versions},
			map[string]any{"tenant": "acme", "name": "meters", "owner": "energy"},
		},
	}
}

func planSummary(t *testing.T, out map[string]any) string {
	t.Helper()
	s := ""
	for _, it := range out["plan"].([]any) {
		m := it.(map[string]any)
		s += fmt.Sprintf("%s %s %s; ", m["action"], m["kind"], m["name"])
	}
	return s
}

func auditCount(e *env, tenant string) int {
	return len(e.must(200, rootToken, "GET", "/audit?limit=1000", nil, "Fleetgate-Tenant", tenant)["items"].([]any))
}

func TestApply(t *testing.T) {
	e := newEnv(t)

	// Dry run: the plan, and nothing written.
	out := e.must(200, rootToken, "POST", "/apply", fleet(true, "fleet-team", nil))
	want := "create tenant acme; create api acme/vehicles; create version acme/vehicles/v1; create api acme/meters; "
	if got := planSummary(t, out); got != want || out["applied"] != false {
		t.Fatalf("dry run plan:\n got %s\nwant %s (applied=%v)", got, want, out["applied"])
	}
	if r := e.call(rootToken, "GET", "/tenants/acme", nil); r.status != 404 {
		t.Fatalf("dry run created the tenant: %d", r.status)
	}

	out = e.must(200, rootToken, "POST", "/apply", fleet(false, "fleet-team", nil))
	if got := planSummary(t, out); got != want || out["applied"] != true {
		t.Fatalf("apply plan: %s", got)
	}
	audited := auditCount(e, "acme")
	if audited != 4 {
		t.Fatalf("apply wrote %d audit records, want 4", audited)
	}

	// Idempotent: the same document again changes and audits nothing.
	out = e.must(200, rootToken, "POST", "/apply", fleet(false, "fleet-team", nil))
	if got := planSummary(t, out); got != "unchanged tenant acme; unchanged api acme/vehicles; unchanged version acme/vehicles/v1; unchanged api acme/meters; " {
		t.Fatalf("second apply: %s", got)
	}
	if n := auditCount(e, "acme"); n != audited {
		t.Fatalf("idempotent apply audited %d new records", n-audited)
	}

	// All or nothing: a valid change plus a broken version later in the
	// document leaves the store exactly as it was.
	bad := map[string]any{"version": "v2", "spec": "openapi: 3.1.0\ninfo: [\n"}
	r := e.call(rootToken, "POST", "/apply", fleet(false, "new-owner", bad))
	if r.status != 422 {
		t.Fatalf("broken apply: %d %s", r.status, r.body)
	}
	errs := problemErrors(t, r.json(t))
	if len(errs) == 0 || errs[0].pointer != "/apis/0/versions/1/spec" {
		t.Fatalf("broken apply error location: %+v", errs)
	}
	api := e.must(200, rootToken, "GET", "/apis/vehicles", nil, "Fleetgate-Tenant", "acme")
	if api["owner"] != "fleet-team" {
		t.Fatalf("failed apply changed the owner to %v", api["owner"])
	}
	if n := auditCount(e, "acme"); n != audited {
		t.Fatalf("failed apply left %d audit records", n-audited)
	}

	// Update of a draft is planned as an update with its changes.
	out = e.must(200, rootToken, "POST", "/apply", fleet(false, "new-owner", nil))
	if got := planSummary(t, out); got != "unchanged tenant acme; update api acme/vehicles; unchanged version acme/vehicles/v1; unchanged api acme/meters; " {
		t.Fatalf("update plan: %s", got)
	}

	// A tenant operator may not declare tenants.
	tok := e.tenantWithAdmin("acme", "alice", "admin")
	if r := e.call(tok, "POST", "/apply", fleet(false, "x", nil)); r.status != 403 {
		t.Fatalf("tenant admin applying tenants: %d", r.status)
	}
}

func TestApplyFrozenVersion(t *testing.T) {
	e := newEnv(t)
	e.must(200, rootToken, "POST", "/apply", fleet(false, "fleet-team", nil))
	h := []string{"Fleetgate-Tenant", "acme"}
	e.must(200, rootToken, "POST", "/apis/vehicles/versions/v1/transitions", map[string]any{"to": "in_review"}, h...)
	doc := fleet(false, "fleet-team", nil)
	doc["apis"].([]any)[0].(map[string]any)["versions"].([]any)[0].(map[string]any)["upstream"] = map[string]any{"targets": []string{"http://127.0.0.1:7777"}}
	if r := e.call(rootToken, "POST", "/apply", doc); r.status != 409 {
		t.Fatalf("changing a submitted version through apply: %d %s", r.status, r.body)
	}
}
