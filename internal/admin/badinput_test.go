package admin_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/fleetgate/fleetgate/internal/store/sqlite"
)

type fieldErr struct {
	pointer string
	line    float64
}

func problemErrors(t *testing.T, m map[string]any) []fieldErr {
	t.Helper()
	var out []fieldErr
	errs, _ := m["errors"].([]any)
	for _, e := range errs {
		fe := e.(map[string]any)
		line, _ := fe["line"].(float64)
		out = append(out, fieldErr{pointer: fe["pointer"].(string), line: line})
	}
	return out
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.must(201, rootToken, "POST", "/apis", map[string]any{"name": "meters", "owner": "o"})
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		pointer            string
		line               float64
	}{
		{"malformed JSON", "POST", "/apis", "{\n  \"name\": \"x\",\n  \"owner\": }", 400, "", 3},
		{"truncated JSON", "POST", "/apis", "{\"name\": \"x\"", 400, "", 1},
		{"empty body", "POST", "/apis", "", 400, "", 0},
		{"trailing data", "POST", "/apis", `{"name":"x","owner":"o"} {}`, 400, "", 1},
		{"unknown field", "POST", "/apis", `{"name":"x","owner":"o","colour":"red"}`, 400, "/colour", 0},
		{"nested unknown field", "POST", "/apis/meters/versions", `{"version":"v1","upstream":{"targetz":[]}}`, 400, "/upstream/targetz", 0},
		{"wrong type", "POST", "/apis", `{"name":42,"owner":"o"}`, 400, "/name", 0},
		{"wrong nested type", "POST", "/apis/meters/versions", `{"version":"v1","upstream":{"targets":[1]}}`, 400, "/upstream/targets/0", 0},
		{"invalid name", "POST", "/apis", `{"name":"Not A Name!","owner":"o"}`, 422, "/name", 0},
		{"missing owner", "POST", "/apis", `{"name":"ok"}`, 422, "/owner", 0},
		{"invalid version label", "POST", "/apis/meters/versions", `{"version":"one"}`, 422, "/version", 0},
		{"invalid upstream", "POST", "/apis/meters/versions", `{"version":"v1","upstream":{"targets":["ftp://x"]}}`, 422, "/upstream/targets/0", 0},
		{"mqtt target with a wildcard", "POST", "/apis/meters/versions", `{"version":"v1","upstream":{"targets":["mqtt:fleet/#"]}}`, 422, "/upstream/targets/0", 0},
		{"mqtt reply timeout too long", "POST", "/apis/meters/versions", `{"version":"v1","upstream":{"targets":["mqtt:fleet/{d}/commands?reply=fleet/{d}/replies&timeout=1h"]}}`, 422, "/upstream/targets/0", 0},
		{"mqtt target with a misspelt parameter", "POST", "/apis/meters/versions", `{"version":"v1","upstream":{"targets":["mqtt:fleet/{d}/commands?replay=fleet/{d}/replies"]}}`, 422, "/upstream/targets/0", 0},
		{"mqtt target beside others", "POST", "/apis/meters/versions", `{"version":"v1","upstream":{"targets":["mqtt:fleet/x?qos=1","http://h"]}}`, 422, "/upstream/targets/0", 0},
		{"upstream with credentials", "POST", "/apis/meters/versions", `{"version":"v1","upstream":{"targets":["http://u:p@x"]}}`, 422, "/upstream/targets/0", 0},
		{"spec that does not parse", "POST", "/apis/meters/versions", map[string]any{"version": "v1", "spec": "openapi: 3.1.0\ninfo:\n  title: x\n  version: [\n"}, 422, "/spec", 5},
		{"spec of unknown kind", "POST", "/apis/meters/versions", map[string]any{"version": "v1", "spec": "swagger: \"2.0\"\ninfo: {title: x, version: '1'}\n"}, 422, "/spec", 0},
		{"duplicate name", "POST", "/apis", `{"name":"meters","owner":"o"}`, 409, "/name", 0},
		{"bad role", "POST", "/operators", `{"name":"x","roles":["root"]}`, 422, "/roles/0", 0},
		{"bad duration", "POST", "/tokens", `{"name":"x","expires_in":"soon"}`, 400, "/expires_in", 0},
		{"bad limit", "GET", "/apis?limit=0", nil, 400, "/query/limit", 0},
		{"unknown state", "POST", "/apis/meters/versions/v9/transitions", `{"to":"launched"}`, 422, "/to", 0},
		{"bad sunset", "POST", "/apis/meters/versions/v9/transitions", `{"to":"deprecated","sunset":"tomorrow"}`, 400, "/sunset", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(rootToken, tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content-type %q", ct)
			}
			m := r.json(t)
			errs := problemErrors(t, m)
			if tc.pointer == "" && tc.line == 0 {
				return
			}
			found := false
			for _, fe := range errs {
				if fe.pointer == tc.pointer && (tc.line == 0 || fe.line == tc.line) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want error at pointer %q line %v, got %+v (%s)", tc.pointer, tc.line, errs, r.body)
			}
		})
	}
	// Nothing was written by any of them: one API, and only the successful
	// creation is in the audit log besides the bootstrap.
	apis := e.must(200, rootToken, "GET", "/apis", nil)["items"].([]any)
	if len(apis) != 1 {
		t.Fatalf("bad requests left %d APIs", len(apis))
	}
}

func TestOversizedBody(t *testing.T) {
	e := newEnv(t)
	big := `{"name":"x","owner":"` + strings.Repeat("a", 2<<20) + `"}`
	r := e.call(rootToken, "POST", "/apis", big)
	if r.status != 413 {
		t.Fatalf("status %d, want 413", r.status)
	}
	huge := map[string]any{"version": "v1", "spec": strings.Repeat("#", 6<<20)}
	e.must(201, rootToken, "POST", "/apis", map[string]any{"name": "x", "owner": "o"})
	if r := e.call(rootToken, "POST", "/apis/x/versions", huge); r.status != 413 {
		t.Fatalf("huge spec: %d, want 413", r.status)
	}
}

// TestAuditEveryMutationAndTamperDetection checks that mutations are
// audited with digests and request ids, then edits and deletes records
// directly in the SQLite file and expects verify to name the first broken
// link.
func TestAuditEveryMutationAndTamperDetection(t *testing.T) {
	e := newEnv(t)
	e.apiWithVersion(rootToken, "vehicles", "v1")
	r := e.call(rootToken, "PATCH", "/apis/vehicles", map[string]any{"owner": "new-team"}, "X-Request-Id", "req-42")
	if r.status != 200 {
		t.Fatalf("patch: %d", r.status)
	}
	recs := e.must(200, rootToken, "GET", "/audit?action=api.update", nil)["items"].([]any)
	if len(recs) != 1 {
		t.Fatalf("api.update records: %d", len(recs))
	}
	rec := recs[0].(map[string]any)
	if rec["actor"] != "default/admin" || rec["request_id"] != "req-42" || rec["object_id"] != "vehicles" ||
		rec["before_digest"] == rec["after_digest"] || rec["before_digest"] == "" {
		t.Fatalf("audit record: %v", rec)
	}
	all := e.must(200, rootToken, "GET", "/audit?limit=1000", nil)["items"].([]any)
	// bootstrap (3) + api.create + version.create + api.update
	if len(all) != 6 {
		t.Fatalf("audit has %d records, want 6", len(all))
	}
	page := e.must(200, rootToken, "GET", "/audit?limit=2", nil)
	if page["next"] != "2" {
		t.Fatalf("pagination cursor: %v", page["next"])
	}
	v := e.must(200, rootToken, "GET", "/audit/verify", nil)
	if v["ok"] != true || v["checked"].(float64) != 6 {
		t.Fatalf("verify before tampering: %v", v)
	}

	db, err := sql.Open("sqlite3", "file:"+filepath.Join(e.dir, sqlite.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tamper := func(q string) map[string]any {
		t.Helper()
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
		return e.must(200, rootToken, "GET", "/audit/verify", nil)
	}
	brokenAt := func(v map[string]any) (float64, string) {
		b := v["chains"].([]any)[0].(map[string]any)["broken"].(map[string]any)
		return b["seq"].(float64), b["reason"].(string)
	}
	v = tamper(`UPDATE audit SET actor = 'someone-else' WHERE tenant_id = 'default' AND seq = 4`)
	if seq, reason := brokenAt(v); v["ok"] != false || seq != 4 || !strings.Contains(reason, "edited") {
		t.Fatalf("edited record: %v", v)
	}
	tamper(`UPDATE audit SET actor = 'default/admin' WHERE tenant_id = 'default' AND seq = 4`)
	v = tamper(`DELETE FROM audit WHERE tenant_id = 'default' AND seq = 3`)
	if seq, reason := brokenAt(v); seq != 4 || !strings.Contains(reason, "gap") {
		t.Fatalf("deleted record: %v", v)
	}
	// A deleted tail is caught by the head row.
	e2 := newEnv(t)
	e2.must(201, rootToken, "POST", "/apis", map[string]any{"name": "x", "owner": "o"})
	db2, _ := sql.Open("sqlite3", "file:"+filepath.Join(e2.dir, sqlite.FileName)+"?_pragma=busy_timeout(5000)")
	defer db2.Close()
	if _, err := db2.Exec(`DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)`); err != nil {
		t.Fatal(err)
	}
	v = e2.must(200, rootToken, "GET", "/audit/verify", nil)
	if seq, reason := brokenAt(v); seq != 4 || !strings.Contains(reason, "tail") {
		t.Fatalf("deleted tail: %v", v)
	}
}
