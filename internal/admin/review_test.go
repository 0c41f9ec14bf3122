package admin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/app"
	"github.com/fleetgate/fleetgate/internal/config"
	"github.com/fleetgate/fleetgate/internal/store/pgtest"
)

// wantProblem asserts a problem answer's status and type suffix.
func wantProblem(t *testing.T, r resp, status int, kind string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (%s): %s", r.status, status, kind, r.body)
	}
	m := r.json(t)
	if m["type"] != "https://fleetgate.dev/problems/"+kind {
		t.Fatalf("type %v, want %s: %s", m["type"], kind, r.body)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("content type %q", r.header.Get("Content-Type"))
	}
	return m
}

// auditActions lists the tenant's audit records of the object, as
// "actor action".
func (e *env) auditActions(tenant, object string) []string {
	e.t.Helper()
	items := e.must(200, rootToken, "GET", "/audit?object_id="+object+"&limit=1000", nil, "Fleetgate-Tenant", tenant)["items"].([]any)
	var out []string
	for _, it := range items {
		m := it.(map[string]any)
		out = append(out, m["actor"].(string)+" "+m["action"].(string))
	}
	return out
}

func hasAll(t *testing.T, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, g := range got {
			if g == w {
				found = true
			}
		}
		if !found {
			t.Errorf("audit lacks %q; has %q", w, got)
		}
	}
}

func TestReviewWorkflow(t *testing.T) {
	e := newEnv(t)
	admin := e.tenantWithAdmin("acme", "boss", "admin")
	ann := e.operator("acme", "ann", "author")
	carl := e.operator("acme", "carl", "author", "reviewer") // edits ann's draft: a co-author
	dora := e.operator("acme", "dora", "reviewer")           // declared co-author
	rita := e.operator("acme", "rita", "reviewer")
	rob := e.operator("acme", "rob", "reviewer")
	audi := e.operator("acme", "audi", "auditor")
	v1 := "/apis/vehicles/versions/v1"
	e.must(201, ann, "POST", "/apis", map[string]any{"name": "vehicles", "owner": "o"})
	e.must(201, ann, "POST", "/apis/vehicles/versions", map[string]any{"version": "v1", "spec": specWithBase("/v1"),
		"upstream": map[string]any{"targets": []string{"http://127.0.0.1:9"}}, "policy": ownedPolicy()})

	t.Run("editing another's draft makes a co-author; declaring one too", func(t *testing.T) {
		e.must(200, carl, "PATCH", v1, map[string]any{"upstream": map[string]any{"targets": []string{"http://127.0.0.1:10"}}})
		e.must(200, ann, "PATCH", v1, map[string]any{"upstream": map[string]any{"targets": []string{"http://127.0.0.1:9"}}}) // the author: no co-author
		e.must(201, ann, "POST", v1+"/co-authors", map[string]any{"operator": "dora"})
		wantProblem(t, e.call(ann, "POST", v1+"/co-authors", map[string]any{"operator": "dora"}), 409, "conflict")
		wantProblem(t, e.call(ann, "POST", v1+"/co-authors", map[string]any{"operator": "ann"}), 422, "validation")
		wantProblem(t, e.call(ann, "POST", v1+"/co-authors", map[string]any{"operator": "nobody"}), 422, "validation")
		wantProblem(t, e.call(rita, "POST", v1+"/co-authors", map[string]any{"operator": "rob"}), 403, "forbidden")
		items := e.must(200, rita, "GET", v1+"/co-authors", nil)["items"].([]any)
		if len(items) != 2 || items[0].(map[string]any)["actor"] != "acme/carl" || items[0].(map[string]any)["source"] != "edit" ||
			items[1].(map[string]any)["actor"] != "acme/dora" || items[1].(map[string]any)["source"] != "declared" {
			t.Fatalf("co-authors: %v", items)
		}
	})

	e.must(200, ann, "POST", v1+"/transitions", map[string]any{"to": "in_review"})

	t.Run("the review shows state, round, co-authors and lint", func(t *testing.T) {
		rv := e.must(200, audi, "GET", v1+"/review", nil)
		if rv["state"] != "in_review" || rv["round"].(float64) != 1 || rv["author"] != "acme/ann" || len(rv["co_authors"].([]any)) != 2 ||
			rv["approvals_required"].(float64) != 1 || rv["diff"] != nil {
			t.Fatalf("review: %v", rv)
		}
		if _, ok := rv["lint"].([]any); !ok {
			t.Fatalf("no lint findings array: %v", rv)
		}
	})

	t.Run("separation of duties: author and co-authors cannot approve", func(t *testing.T) {
		wantProblem(t, e.call(ann, "POST", v1+"/review/approve", map[string]any{}), 403, "forbidden") // no reviewer role at all
		m := wantProblem(t, e.call(carl, "POST", v1+"/review/approve", map[string]any{}), 403, "self-approval")
		if !strings.Contains(m["detail"].(string), "co-author") {
			t.Fatalf("detail: %v", m["detail"])
		}
		wantProblem(t, e.call(dora, "POST", v1+"/review/approve", map[string]any{}), 403, "self-approval")
		wantProblem(t, e.call(dora, "POST", v1+"/review/request-changes", map[string]any{"comment": "mine"}), 403, "self-approval")
		// Nor through the transitions endpoint.
		checkType(t, e.call(carl, "POST", v1+"/transitions", map[string]any{"to": "published"}), "separation-of-duties")
		if rv := e.must(200, ann, "GET", v1+"/review", nil); len(rv["approvals"].([]any)) != 0 {
			t.Fatalf("a refused approval was recorded: %v", rv["approvals"])
		}
	})

	t.Run("settings: admins only, checked", func(t *testing.T) {
		if s := e.must(200, ann, "GET", "/review-settings", nil); s["approvals_required"].(float64) != 1 || len(s["approvers"].([]any)) != 0 {
			t.Fatalf("defaults: %v", s)
		}
		wantProblem(t, e.call(rita, "PUT", "/review-settings", map[string]any{"approvals_required": 1}), 403, "forbidden")
		bad := []struct {
			name string
			body any
			ptr  string
		}{
			{"missing count", map[string]any{}, "/approvals_required"},
			{"zero", map[string]any{"approvals_required": 0}, "/approvals_required"},
			{"too many", map[string]any{"approvals_required": 11}, "/approvals_required"},
			{"unknown operator", map[string]any{"approvals_required": 1, "approvers": []string{"rita", "ghost"}}, "/approvers/1"},
			{"not a reviewer", map[string]any{"approvals_required": 1, "approvers": []string{"ann"}}, "/approvers/0"},
			{"twice", map[string]any{"approvals_required": 1, "approvers": []string{"rita", "rita"}}, "/approvers/1"},
			{"bad name", map[string]any{"approvals_required": 1, "approvers": []string{"Rita!"}}, "/approvers/0"},
		}
		for _, tc := range bad {
			m := wantProblem(t, e.call(admin, "PUT", "/review-settings", tc.body), 422, "validation")
			if errs := m["errors"].([]any); errs[len(errs)-1].(map[string]any)["pointer"] != tc.ptr {
				t.Errorf("%s: errors %v, want pointer %s", tc.name, errs, tc.ptr)
			}
		}
		wantProblem(t, e.call(admin, "PUT", "/review-settings", map[string]any{"approvals_required": 2, "extra": 1}), 400, "bad-request")
		s := e.must(200, admin, "PUT", "/review-settings", map[string]any{"approvals_required": 2})
		if s["approvals_required"].(float64) != 2 || s["updated_by"] != "acme/boss" {
			t.Fatalf("settings: %v", s)
		}
	})

	t.Run("two approvals needed", func(t *testing.T) {
		a := e.must(200, rita, "POST", v1+"/review/approve", map[string]any{"comment": "looks right"})
		if a["published"] != false || a["approvals"].(float64) != 1 || a["approvals_required"].(float64) != 2 {
			t.Fatalf("first approval: %v", a)
		}
		wantProblem(t, e.call(rita, "POST", v1+"/review/approve", map[string]any{}), 409, "already-approved")
		// One approval is not enough, through any door.
		m := checkType(t, e.call(rita, "POST", v1+"/transitions", map[string]any{"to": "published"}), "approvals-required")
		if !strings.Contains(m["detail"].(string), "1 of the 2") {
			t.Fatalf("detail: %v", m["detail"])
		}
		a = e.must(200, rob, "POST", v1+"/review/approve", map[string]any{})
		if a["published"] != true || a["approvals"].(float64) != 2 || a["version"].(map[string]any)["state"] != "published" {
			t.Fatalf("second approval: %v", a)
		}
		if v := e.must(200, ann, "GET", v1, nil); v["state"] != "published" {
			t.Fatalf("state %v", v["state"])
		}
		wantProblem(t, e.call(dora, "POST", v1+"/review/approve", map[string]any{}), 409, "not-in-review")
		if rv := e.must(200, audi, "GET", v1+"/review", nil); len(rv["approvals"].([]any)) != 2 || rv["state"] != "published" {
			t.Fatalf("a published version's review names its approvers: %v", rv["approvals"])
		}
		hasAll(t, e.auditActions("acme", "vehicles/v1"), "acme/carl version.update", "acme/ann version.coauthor.add",
			"acme/rita review.approve", "acme/rob review.approve", "acme/rob version.transition")
	})

	mk := func(api, label, base string) {
		e.must(201, ann, "POST", "/apis/"+api+"/versions", map[string]any{"version": label, "spec": specWithBase(base),
			"upstream": map[string]any{"targets": []string{"http://127.0.0.1:9"}}, "policy": ownedPolicy()})
		e.must(200, ann, "POST", "/apis/"+api+"/versions/"+label+"/transitions", map[string]any{"to": "in_review"})
	}
	v2 := "/apis/vehicles/versions/v2"

	t.Run("comments with anchors", func(t *testing.T) {
		mk("vehicles", "v2", "/v2")
		c := e.must(201, ann, "POST", v2+"/review/comments", map[string]any{"comment": "battery moved", "operation": "getBattery",
			"pointer": "/paths/~1vehicles~1{vin}~1battery/get"})
		if c["round"].(float64) != 1 || c["kind"] != "comment" || c["actor"] != "acme/ann" {
			t.Fatalf("comment: %v", c)
		}
		bad := []struct {
			name, ptr string
			body      map[string]any
		}{
			{"empty", "/comment", map[string]any{"comment": "  "}},
			{"unknown operation", "/operation", map[string]any{"comment": "x", "operation": "getEngine"}},
			{"pointer to nothing", "/pointer", map[string]any{"comment": "x", "pointer": "/paths/~1nope"}},
			{"not a pointer", "/pointer", map[string]any{"comment": "x", "pointer": "paths"}},
			{"bad escape", "/pointer", map[string]any{"comment": "x", "pointer": "/a~2"}},
			{"too long", "/comment", map[string]any{"comment": strings.Repeat("x", 4001)}},
		}
		for _, tc := range bad {
			m := wantProblem(t, e.call(rita, "POST", v2+"/review/comments", tc.body), 422, "validation")
			if m["errors"].([]any)[0].(map[string]any)["pointer"] != tc.ptr {
				t.Errorf("%s: %v", tc.name, m["errors"])
			}
		}
		wantProblem(t, e.call(audi, "POST", v2+"/review/comments", map[string]any{"comment": "x"}), 403, "forbidden")
		wantProblem(t, e.call(ann, "POST", "/apis/vehicles/versions/v9/review/comments", map[string]any{"comment": "x"}), 404, "not-found")
	})

	t.Run("the breaking-change diff against the predecessor is in the review", func(t *testing.T) {
		d, ok := e.must(200, rita, "GET", v2+"/review", nil)["diff"].(map[string]any)
		if !ok || d["against"] != "v1" || len(d["changes"].([]any)) == 0 {
			t.Fatalf("diff: %v", d)
		}
	})

	t.Run("request changes resets the round", func(t *testing.T) {
		e.must(200, rita, "POST", v2+"/review/approve", map[string]any{})
		wantProblem(t, e.call(rob, "POST", v2+"/review/request-changes", map[string]any{}), 422, "validation")
		wantProblem(t, e.call(ann, "POST", v2+"/review/request-changes", map[string]any{"comment": "x"}), 403, "forbidden")
		out := e.must(200, rob, "POST", v2+"/review/request-changes", map[string]any{"comment": "climate needs a rate limit", "operation": "setClimate"})
		if out["version"].(map[string]any)["state"] != "draft" || out["event"].(map[string]any)["kind"] != "changes_requested" {
			t.Fatalf("request changes: %v", out)
		}
		wantProblem(t, e.call(rob, "POST", v2+"/review/request-changes", map[string]any{"comment": "again"}), 409, "not-in-review")
		wantProblem(t, e.call(rob, "POST", v2+"/review/approve", map[string]any{}), 409, "not-in-review")
		e.must(200, ann, "POST", v2+"/transitions", map[string]any{"to": "in_review"})
		rv := e.must(200, rita, "GET", v2+"/review", nil)
		if rv["round"].(float64) != 2 || len(rv["approvals"].([]any)) != 0 || len(rv["changes_requested"].([]any)) != 1 || len(rv["comments"].([]any)) != 1 {
			t.Fatalf("after resubmission: %v", rv)
		}
		// rita's round-1 approval does not count: approving again is
		// allowed, and it is the first of round 2.
		a := e.must(200, rita, "POST", v2+"/review/approve", map[string]any{})
		if a["round"].(float64) != 2 || a["approvals"].(float64) != 1 || a["published"] != false {
			t.Fatalf("round 2 approval: %v", a)
		}
		a = e.must(200, rob, "POST", v2+"/review/approve", map[string]any{})
		if a["published"] != true {
			t.Fatalf("second round 2 approval: %v", a)
		}
		hasAll(t, e.auditActions("acme", "vehicles/v2"), "acme/ann review.comment", "acme/rob review.request-changes", "acme/rob version.transition")
	})

	t.Run("a governance refusal keeps the approval and says why", func(t *testing.T) {
		e.must(200, admin, "PUT", "/review-settings", map[string]any{"approvals_required": 1})
		mk("vehicles", "v3", "/v3") // v1 and v2 are live: the budget of 2 is full
		a := e.must(200, rita, "POST", "/apis/vehicles/versions/v3/review/approve", map[string]any{})
		ref, ok := a["publish_refused"].(map[string]any)
		if a["published"] != false || !ok || ref["check"] != "version-budget" || ref["type"] != "https://fleetgate.dev/problems/check-failed/version-budget" ||
			!strings.Contains(ref["detail"].(string), "v1 (published)") {
			t.Fatalf("approval: %v", a)
		}
		rv := e.must(200, rita, "GET", "/apis/vehicles/versions/v3/review", nil)
		if rv["state"] != "in_review" || len(rv["approvals"].([]any)) != 1 {
			t.Fatalf("after refusal: %v", rv)
		}
		wantProblem(t, e.call(rita, "POST", "/apis/vehicles/versions/v3/review/approve", map[string]any{}), 409, "already-approved")
	})

	t.Run("scheduled publication: by the scheduler, not before", func(t *testing.T) {
		e.must(201, ann, "POST", "/apis", map[string]any{"name": "cars", "owner": "o"})
		mk("cars", "v1", "/cars")
		cv := "/apis/cars/versions/v1"
		for _, tc := range []struct{ name, at string }{{"past", time.Now().Add(-time.Hour).Format(time.RFC3339)}, {"not RFC 3339", "tomorrow"}, {"date only", "2030-01-01"}} {
			m := wantProblem(t, e.call(rita, "POST", cv+"/review/approve", map[string]any{"publish_at": tc.at}), 422, "validation")
			if m["errors"].([]any)[0].(map[string]any)["pointer"] != "/publish_at" {
				t.Errorf("%s: %v", tc.name, m)
			}
		}
		at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		a := e.must(200, rita, "POST", cv+"/review/approve", map[string]any{"publish_at": at.Format(time.RFC3339)})
		if a["published"] != false || a["scheduled"].(map[string]any)["publish_at"] != at.Format(time.RFC3339) {
			t.Fatalf("scheduled approval: %v", a)
		}
		ctx := context.Background()
		if outs, err := e.app.PublishScheduled(ctx, at.Add(-time.Second)); err != nil || len(outs) != 0 {
			t.Fatalf("before its time: %v %v", outs, err)
		}
		if v := e.must(200, ann, "GET", cv, nil); v["state"] != "in_review" {
			t.Fatalf("published early: %v", v["state"])
		}
		outs, err := e.app.PublishScheduled(ctx, at)
		if err != nil || len(outs) != 1 || outs[0].Result != "published" || outs[0].API != "cars" {
			t.Fatalf("at its time: %+v %v", outs, err)
		}
		if v := e.must(200, ann, "GET", cv, nil); v["state"] != "published" {
			t.Fatalf("not published: %v", v["state"])
		}
		if outs, err := e.app.PublishScheduled(ctx, at.Add(time.Hour)); err != nil || len(outs) != 0 {
			t.Fatalf("published twice: %v %v", outs, err)
		}
		hasAll(t, e.auditActions("acme", "cars/v1"), "acme/rita review.approve", "system/review-scheduler version.transition")
		if rv := e.must(200, ann, "GET", cv+"/review", nil); rv["scheduled"] != nil {
			t.Fatalf("schedule left behind: %v", rv["scheduled"])
		}
	})

	t.Run("request changes drops a scheduled publication", func(t *testing.T) {
		e.must(201, ann, "POST", "/apis", map[string]any{"name": "trucks", "owner": "o"})
		mk("trucks", "v1", "/trucks")
		tv := "/apis/trucks/versions/v1"
		at := time.Now().Add(time.Hour).UTC()
		e.must(200, rita, "POST", tv+"/review/approve", map[string]any{"publish_at": at.Format(time.RFC3339)})
		e.must(200, rob, "POST", tv+"/review/request-changes", map[string]any{"comment": "not this week"})
		if outs, err := e.app.PublishScheduled(context.Background(), at.Add(time.Hour)); err != nil || len(outs) != 0 {
			t.Fatalf("a dropped schedule ran: %+v %v", outs, err)
		}
		if v := e.must(200, ann, "GET", tv, nil); v["state"] != "draft" {
			t.Fatalf("state %v", v["state"])
		}
	})

	t.Run("a stale schedule is dropped and audited, never published", func(t *testing.T) {
		e.must(201, ann, "POST", "/apis", map[string]any{"name": "bikes", "owner": "o"})
		mk("bikes", "v1", "/bikes")
		bv := "/apis/bikes/versions/v1"
		at := time.Now().Add(time.Hour).UTC()
		e.must(200, rita, "POST", bv+"/review/approve", map[string]any{"publish_at": at.Format(time.RFC3339)})
		// Sent back through the plain transitions endpoint, then resubmitted:
		// round 2 was never approved.
		e.must(200, rob, "POST", bv+"/transitions", map[string]any{"to": "draft", "reason": "wait"})
		e.must(200, ann, "POST", bv+"/transitions", map[string]any{"to": "in_review"})
		outs, err := e.app.PublishScheduled(context.Background(), at)
		if err != nil || len(outs) != 1 || outs[0].Result != "stale" {
			t.Fatalf("stale schedule: %+v %v", outs, err)
		}
		if v := e.must(200, ann, "GET", bv, nil); v["state"] != "in_review" {
			t.Fatalf("state %v", v["state"])
		}
		hasAll(t, e.auditActions("acme", "bikes/v1"), "system/review-scheduler review.schedule.drop")
	})

	t.Run("the audit chain verifies", func(t *testing.T) {
		hasAll(t, e.auditActions("acme", "acme"), "acme/boss review.settings.update")
		if v := e.must(200, rootToken, "GET", "/audit/verify", nil, "Fleetgate-Tenant", "acme"); v["ok"] != true {
			t.Fatalf("verify: %v", v)
		}
	})

	t.Run("other tenants see nothing", func(t *testing.T) {
		other := e.tenantWithAdmin("globex", "gus", "admin")
		wantProblem(t, e.call(other, "GET", v1+"/review", nil), 404, "not-found")
		wantProblem(t, e.call(other, "POST", v1+"/review/approve", map[string]any{}), 404, "not-found")
		if s := e.must(200, other, "GET", "/review-settings", nil); s["approvals_required"].(float64) != 1 {
			t.Fatalf("settings leak across tenants: %v", s)
		}
	})
}

// newEnvOn is newEnv on a chosen backend ("sqlite" or "postgres", a
// private schema of the test server).
func newEnvOn(t *testing.T, backend string) *env {
	t.Helper()
	if backend == "sqlite" {
		return newEnv(t)
	}
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.AdminToken = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", rootToken
	cfg.Store = pgtest.SchemaURL(t)
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

// TestConcurrentLastApprovals: two reviewers give the last two approvals
// at the same moment, repeatedly; each version is published exactly once
// (the version's row lock orders them; on PostgreSQL that lock is what
// keeps both from counting one approval, or both from publishing).
func TestConcurrentLastApprovals(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { concurrentLastApprovals(t, newEnvOn(t, backend)) })
	}
}

func concurrentLastApprovals(t *testing.T, e *env) {
	admin := e.tenantWithAdmin("acme", "boss", "admin")
	ann := e.operator("acme", "ann", "author")
	revs := []string{e.operator("acme", "rita", "reviewer"), e.operator("acme", "rob", "reviewer")}
	e.must(200, admin, "PUT", "/review-settings", map[string]any{"approvals_required": 2})
	for i := 0; i < 5; i++ { // one API each: published versions must not collide
		api := fmt.Sprintf("vehicles%d", i)
		vp := "/apis/" + api + "/versions/v1"
		e.must(201, ann, "POST", "/apis", map[string]any{"name": api, "owner": "o"})
		e.must(201, ann, "POST", "/apis/"+api+"/versions", map[string]any{"version": "v1", "spec": specWithBase(fmt.Sprintf("/c%d", i)), "policy": ownedPolicy()})
		e.must(200, ann, "POST", vp+"/transitions", map[string]any{"to": "in_review"})
		var wg sync.WaitGroup
		results := make([]resp, len(revs))
		for j, tok := range revs {
			wg.Add(1)
			go func(j int, tok string) {
				defer wg.Done()
				results[j] = e.call(tok, "POST", vp+"/review/approve", map[string]any{})
			}(j, tok)
		}
		wg.Wait()
		published := 0
		for _, r := range results {
			if r.status != 200 {
				t.Fatalf("approval: %d %s", r.status, r.body)
			}
			if r.json(t)["published"] == true {
				published++
			}
		}
		trs := e.must(200, ann, "GET", vp+"/transitions", nil)["items"].([]any)
		if published != 1 || len(trs) != 2 {
			t.Fatalf("%s published by %d approvals, %d transitions", api, published, len(trs))
		}
	}
}
