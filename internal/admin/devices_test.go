package admin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// problemPointers returns the pointers of a problem's errors.
func problemPointers(t *testing.T, r resp) []string {
	t.Helper()
	var p struct {
		Errors []struct {
			Pointer string `json:"pointer"`
			Line    int    `json:"line"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("not a problem: %s", r.body)
	}
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Pointer)
	}
	return out
}

func TestDeviceRegistry(t *testing.T) {
	e := newEnv(t)
	admin := e.tenantWithAdmin("acme", "ada", "admin")
	ops := e.operator("acme", "otto", "operator")
	auditor := e.operator("acme", "audrey", "auditor")
	other := e.tenantWithAdmin("globex", "gil", "admin")

	created := e.must(201, ops, "POST", "/devices", map[string]any{"id": "meter-00:1A", "model": "m1", "serial": "S1",
		"owners": []string{"user:alice"}, "attributes": map[string]string{"region": "eu"}, "firmware": "1.0.0"})
	if created["status"] != "pending" || created["tenant"] != "acme" {
		t.Fatalf("created: %v", created)
	}
	// Owners become ownership relations, so identity bindings follow them.
	own := e.must(200, admin, "GET", "/ownerships?subject=user:alice&object_type=device", nil)
	if items := own["items"].([]any); len(items) != 1 || items[0].(map[string]any)["object_id"] != "meter-00:1A" {
		t.Fatalf("ownership of device: %v", own)
	}

	cases := []struct {
		name   string
		token  string
		method string
		path   string
		body   any
		status int
		ptrs   []string
	}{
		{"auditor reads", auditor, "GET", "/devices/meter-00:1A", nil, 200, nil},
		{"auditor lists", auditor, "GET", "/devices", nil, 200, nil},
		{"auditor cannot write", auditor, "POST", "/devices", map[string]any{"id": "x"}, 403, nil},
		{"duplicate id", ops, "POST", "/devices", map[string]any{"id": "meter-00:1A"}, 409, []string{"/id"}},
		{"every bad field located", ops, "POST", "/devices", map[string]any{"id": "bad id", "status": "decommissioned",
			"owners": []string{"alice"}, "attributes": map[string]string{"Bad": "x"}}, 422,
			[]string{"/id", "/status", "/owners/0", "/attributes/Bad"}},
		{"unknown field", ops, "POST", "/devices", map[string]any{"id": "d2", "colour": "red"}, 400, []string{"/colour"}},
		{"other tenant cannot see it", other, "GET", "/devices/meter-00:1A", nil, 404, nil},
		{"other tenant cannot change it", other, "PATCH", "/devices/meter-00:1A", map[string]any{"status": "suspended"}, 404, nil},
		{"other tenant cannot delete it", other, "DELETE", "/devices/meter-00:1A", nil, 404, nil},
		{"bad status", ops, "PATCH", "/devices/meter-00:1A", map[string]any{"status": "lost"}, 422, []string{"/status"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(tc.token, tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.ptrs != nil {
				if got := problemPointers(t, r); !slices.Equal(got, tc.ptrs) {
					t.Fatalf("pointers %v, want %v", got, tc.ptrs)
				}
			}
		})
	}

	// A status change is audited with from, to and the reason.
	e.must(200, ops, "PATCH", "/devices/meter-00:1A", map[string]any{"status": "suspended", "reason": "reported stolen"})
	recs := e.must(200, admin, "GET", "/audit?action=device.status", nil)["items"].([]any)
	if len(recs) != 1 || !strings.Contains(string(mustJSON(t, recs[0])), "reported stolen") {
		t.Fatalf("status audit: %v", recs)
	}
	// Owner changes move the ownership relations.
	e.must(200, ops, "PATCH", "/devices/meter-00:1A", map[string]any{"owners": []string{"user:bob"}})
	if n := len(e.must(200, admin, "GET", "/ownerships?object_type=device", nil)["items"].([]any)); n != 1 {
		t.Fatalf("ownerships after owner change: %d", n)
	}
	// Decommissioning is terminal.
	e.must(200, ops, "PATCH", "/devices/meter-00:1A", map[string]any{"status": "decommissioned"})
	e.must(409, ops, "PATCH", "/devices/meter-00:1A", map[string]any{"status": "active"})
	e.must(409, ops, "POST", "/devices/meter-00:1A/enrollment-tokens", nil)
	e.must(204, ops, "DELETE", "/devices/meter-00:1A", nil)
	e.must(404, ops, "GET", "/devices/meter-00:1A", nil)
	if n := len(e.must(200, admin, "GET", "/ownerships?object_type=device", nil)["items"].([]any)); n != 0 {
		t.Fatalf("ownerships survive their device: %d", n)
	}
}

// importCall posts an import body with an explicit content type.
func (e *env) importCall(token, query, contentType, body string) resp {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/admin/v1/devices/import"+query, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	res, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func TestDeviceImport(t *testing.T) {
	e := newEnv(t)
	tok := e.tenantWithAdmin("acme", "ada", "admin")
	e.must(201, tok, "POST", "/devices", map[string]any{"id": "existing"})

	cases := []struct {
		name, query, ctype, body string
		status                   int
		ptrs                     []string
		imported                 float64
	}{
		{"json all good", "", "application/json", `[{"id":"j1","model":"m"},{"id":"j2","owners":["user:a"]}]`, 201, nil, 2},
		{"json bad rows import nothing", "", "application/json",
			`[{"id":"j3"},{"id":"bad id"},{"id":"j3"},{"id":"existing"},{"id":"j4","colour":"x"},7]`, 422,
			[]string{"/rows/1/id", "/rows/2/id", "/rows/3/id", "/rows/4/colour", "/rows/5"}, 0},
		{"json partial imports the good rows", "?partial=true", "application/json", `[{"id":"j5"},{"id":"j6","status":"gone"}]`, 201,
			[]string{"/rows/1/status"}, 1},
		{"json not an array", "", "application/json", `{"id":"x"}`, 400, []string{""}, 0},
		{"csv good", "", "text/csv", "id,model,owners,attr.region\nc1,m1,user:a;user:b,eu\nc2,m1,,\n", 201, nil, 2},
		{"csv bad rows located", "", "text/csv", "id,status\nc3,active\nc4,nope\nc5\n", 422, []string{"/rows/1/status", "/rows/2"}, 0},
		{"csv unknown column", "", "text/csv", "id,colour\nc6,red\n", 422, []string{"/columns/1"}, 0},
		{"csv without id", "", "text/csv", "model\nm\n", 422, []string{"/columns"}, 0},
		{"bad partial flag", "?partial=maybe", "text/csv", "id\nc7\n", 400, []string{"/query/partial"}, 0},
		{"unsupported type", "", "application/xml", "<x/>", 415, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.importCall(tok, tc.query, tc.ctype, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.ptrs != nil {
				if got := problemPointers(t, r); !slices.Equal(got, tc.ptrs) {
					t.Fatalf("pointers %v, want %v", got, tc.ptrs)
				}
			}
			if r.status == 201 {
				if got := r.json(t)["imported"]; got != tc.imported {
					t.Fatalf("imported %v, want %v", got, tc.imported)
				}
			}
		})
	}
	// Exactly the good rows exist: nothing from the refused imports.
	var ids []string
	for _, d := range e.must(200, tok, "GET", "/devices", nil)["items"].([]any) {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	if want := []string{"c1", "c2", "existing", "j1", "j2", "j5"}; !slices.Equal(ids, want) {
		t.Fatalf("devices %v, want %v", ids, want)
	}
	c1 := e.must(200, tok, "GET", "/devices/c1", nil)
	if c1["attributes"].(map[string]any)["region"] != "eu" || len(c1["owners"].([]any)) != 2 {
		t.Fatalf("csv row: %v", c1)
	}
	// CSV errors carry the line of the row.
	r := e.importCall(tok, "", "text/csv", "id\n\"ok\"\nbad id\n")
	if !strings.Contains(string(r.body), `"line":3`) {
		t.Fatalf("csv error without its line: %s", r.body)
	}
}

func TestSecurityFindings(t *testing.T) {
	e := newEnv(t)
	author := e.tenantWithAdmin("acme", "ann", "author", "operator")
	reviewer := e.operator("acme", "rita", "reviewer")
	e.must(201, author, "POST", "/apis", map[string]any{"name": "open", "owner": "o"})
	// No spec (so no lint), and an object identifier with no binding.
	e.must(201, author, "POST", "/apis/open/versions", map[string]any{"version": "v1",
		"bindings": map[string]any{"http": map[string]any{"base_path": "/open", "operations": []any{map[string]any{"method": "GET", "path": "/devices/{deviceId}", "operation_id": "getDevice"}}}},
		"policy":   map[string]any{"auth": map[string]any{"methods": []string{"api_key"}}}})
	e.must(200, author, "POST", "/apis/open/versions/v1/transitions", map[string]any{"to": "in_review"})
	e.must(200, reviewer, "POST", "/apis/open/versions/v1/transitions", map[string]any{"to": "published"})
	fs := e.must(200, author, "GET", "/security/findings", nil)["findings"].([]any)
	found := false
	for _, f := range fs {
		m := f.(map[string]any)
		if m["id"] == "over-broad-authorization" && m["severity"] == "high" && strings.Contains(fmt.Sprint(m["objects"]), "open/v1 getDevice") && m["fix"] != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("over-broad authorization not reported: %v", fs)
	}
	other := e.tenantWithAdmin("globex", "gus", "admin")
	if fs := e.must(200, other, "GET", "/security/findings", nil)["findings"].([]any); len(fs) != 0 {
		t.Fatalf("findings leak across tenants: %v", fs)
	}
}
