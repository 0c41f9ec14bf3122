package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func specWithBase(base string) string {
	return strings.Replace(vehicleSpec, "https://api.example.com/v1", "https://api.example.com"+base, 1)
}

func ownedPolicy() map[string]any {
	owned := []map[string]any{{"param": "vin", "owned": "vehicle"}}
	return map[string]any{"operations": map[string]any{"getBattery": map[string]any{"bindings": owned}, "setClimate": map[string]any{"bindings": owned}}}
}

// governed publishes api/version through review by the separate reviewer.
func (e *env) publish(author, reviewer, api, version string) {
	e.t.Helper()
	e.must(200, author, "POST", "/apis/"+api+"/versions/"+version+"/transitions", map[string]any{"to": "in_review"})
	e.must(200, reviewer, "POST", "/apis/"+api+"/versions/"+version+"/transitions", map[string]any{"to": "published"})
}

func checkType(t *testing.T, r resp, check string) map[string]any {
	t.Helper()
	if r.status != 409 && r.status != 422 {
		t.Fatalf("want a refusal by %s, got %d: %s", check, r.status, r.body)
	}
	m := r.json(t)
	if m["type"] != "https://fleetgate.dev/problems/check-failed/"+check {
		t.Fatalf("want check %s, got %v: %s", check, m["type"], m["detail"])
	}
	return m
}

func TestGovernance(t *testing.T) {
	e := newEnv(t)
	author := e.tenantWithAdmin("acme", "ann", "author", "operator")
	reviewer := e.operator("acme", "rita", "reviewer")

	t.Run("lint blocks an insecure draft", func(t *testing.T) {
		e.must(201, author, "POST", "/apis", map[string]any{"name": "leaky", "owner": "o"})
		insecure := strings.Replace(specWithBase("/leaky"), "security:\n  - key: []\n", "", 1)
		e.must(201, author, "POST", "/apis/leaky/versions", map[string]any{"version": "v1", "spec": insecure})
		m := checkType(t, e.call(author, "POST", "/apis/leaky/versions/v1/transitions", map[string]any{"to": "in_review"}), "lint")
		rules := map[string]bool{}
		for _, f := range m["data"].([]any) {
			fm := f.(map[string]any)
			rules[fm["rule"].(string)] = true
			if fm["line"].(float64) == 0 || fm["pointer"] == "" {
				t.Errorf("finding without location: %v", fm)
			}
		}
		if !rules["object-binding"] || !rules["operation-security"] {
			t.Fatalf("missing the Nissan and security findings: %v", rules)
		}
		if v := e.must(200, author, "GET", "/apis/leaky/versions/v1", nil); v["state"] != "draft" {
			t.Fatalf("refused submission changed the state: %v", v["state"])
		}
	})

	e.must(201, author, "POST", "/apis", map[string]any{"name": "vehicles", "owner": "o"})
	mk := func(api, label, base string) {
		e.must(201, author, "POST", "/apis/"+api+"/versions", map[string]any{"version": label, "spec": specWithBase(base),
			"upstream": map[string]any{"targets": []string{"http://127.0.0.1:9"}}, "policy": ownedPolicy()})
	}
	mk("vehicles", "v1", "/v1")
	e.publish(author, reviewer, "vehicles", "v1")

	t.Run("breaking change needs a new major", func(t *testing.T) {
		// v1.1 drops the climate operation: breaking within major 1.
		cut := specWithBase("/v1-1")
		cut = cut[:strings.Index(cut, "  /vehicles/{vin}/climate:")]
		e.must(201, author, "POST", "/apis/vehicles/versions", map[string]any{"version": "v1.1", "spec": cut, "policy": map[string]any{
			"operations": map[string]any{"getBattery": map[string]any{"bindings": []map[string]any{{"param": "vin", "owned": "vehicle"}}}}}})
		m := checkType(t, e.call(author, "POST", "/apis/vehicles/versions/v1.1/transitions", map[string]any{"to": "in_review"}), "breaking-change")
		if !strings.Contains(m["detail"].(string), "operation-removed") {
			t.Fatalf("detail: %v", m["detail"])
		}
	})

	t.Run("collisions across APIs block publishing", func(t *testing.T) {
		e.must(201, author, "POST", "/apis", map[string]any{"name": "cars", "owner": "o"})
		mk("cars", "v1", "/v1") // same paths as vehicles v1
		e.must(200, author, "POST", "/apis/cars/versions/v1/transitions", map[string]any{"to": "in_review"})
		m := checkType(t, e.call(reviewer, "POST", "/apis/cars/versions/v1/transitions", map[string]any{"to": "published"}), "operation-collision")
		if !strings.Contains(m["detail"].(string), "vehicles/v1") {
			t.Fatalf("detail: %v", m["detail"])
		}
	})

	t.Run("version budget", func(t *testing.T) {
		mk("vehicles", "v2", "/v2")
		e.publish(author, reviewer, "vehicles", "v2")
		mk("vehicles", "v3", "/v3")
		e.must(200, author, "POST", "/apis/vehicles/versions/v3/transitions", map[string]any{"to": "in_review"})
		m := checkType(t, e.call(reviewer, "POST", "/apis/vehicles/versions/v3/transitions", map[string]any{"to": "published"}), "version-budget")
		if !strings.Contains(m["detail"].(string), "v1 (published)") || !strings.Contains(m["detail"].(string), "v2 (published)") {
			t.Fatalf("detail: %v", m["detail"])
		}
	})

	t.Run("retirement is refused while the version is called", func(t *testing.T) {
		e.must(201, author, "POST", "/apps", map[string]any{"name": "phone-app"})
		key := e.must(201, author, "POST", "/apps/phone-app/keys", map[string]any{"name": "k"})["secret"].(string)
		e.must(201, author, "POST", "/ownerships", map[string]any{"subject": "app:phone-app", "object_type": "vehicle", "object_id": "VIN1"})
		data := e.app.DataURLs()[0]
		var status int
		for i := 0; i < 100; i++ { // the snapshot follows the admin change asynchronously
			req, _ := http.NewRequest("GET", data+"/v1/vehicles/VIN1/battery", nil)
			req.Header.Set("X-API-Key", key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if status = res.StatusCode; status != 401 && status != 403 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if status != 502 { // allowed, and the upstream does not exist
			t.Fatalf("traffic through the gateway: %d", status)
		}
		sunset := time.Now().Add(90 * 24 * time.Hour).UTC().Format(time.RFC3339)
		e.must(200, author, "POST", "/apis/vehicles/versions/v1/transitions", map[string]any{"to": "deprecated", "sunset": sunset, "successor": "v2"})
		m := checkType(t, e.call(author, "POST", "/apis/vehicles/versions/v1/transitions", map[string]any{"to": "retired"}), "retire-in-use")
		if !strings.Contains(m["detail"].(string), "app:phone-app") {
			t.Fatalf("the refusal must name the caller: %v", m["detail"])
		}
		checkType(t, e.call(author, "POST", "/apis/vehicles/versions/v1/transitions", map[string]any{"to": "retired", "force": true}), "retire-in-use")
		e.must(200, author, "POST", "/apis/vehicles/versions/v1/transitions", map[string]any{"to": "retired", "force": true, "reason": "customer migrated by support"})
		recs := e.must(200, rootToken, "GET", "/audit?action=version.transition&limit=1000", nil, "Fleetgate-Tenant", "acme")["items"].([]any)
		last := recs[len(recs)-1].(map[string]any)
		if !strings.Contains(string(mustJSON(t, last["detail"])), `"forced":true`) {
			t.Fatalf("forced retirement not audited as such: %v", last)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInventory(t *testing.T) {
	e := newEnv(t)
	author := e.tenantWithAdmin("acme", "ann", "author", "operator")
	reviewer := e.operator("acme", "rita", "reviewer")
	e.must(201, author, "POST", "/apis", map[string]any{"name": "vehicles", "owner": "o"})
	e.must(201, author, "POST", "/apis/vehicles/versions", map[string]any{"version": "v1", "spec": specWithBase("/v1"),
		"upstream": map[string]any{"targets": []string{"http://127.0.0.1:9"}}, "policy": ownedPolicy()})
	e.publish(author, reviewer, "vehicles", "v1")
	inv := e.must(200, author, "GET", "/inventory", nil)
	ops := inv["operations"].([]any)
	if len(ops) != 2 {
		t.Fatalf("operations: %v", ops)
	}
	op := ops[0].(map[string]any)
	if op["path"] != "/v1/vehicles/{vin}/battery" || op["bindings"].(float64) != 1 || op["anonymous"] != false || op["auth"].([]any)[0] != "api_key" {
		t.Fatalf("operation: %v", op)
	}
	score := inv["score"].(float64)
	if score <= 0 || score >= 100 {
		t.Fatalf("score %v should be deducted for the missing rate limits and warnings: %v", score, inv["score_parts"])
	}
	parts := map[string]bool{}
	for _, p := range inv["score_parts"].([]any) {
		parts[p.(map[string]any)["name"].(string)] = true
	}
	if !parts["unlimited"] || parts["unbound-identifiers"] {
		t.Fatalf("score parts: %v", inv["score_parts"])
	}
	r := e.call(author, "GET", "/inventory?format=markdown", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/markdown") || !strings.Contains(string(r.body), "| vehicles | v1 | published | http | `GET /v1/vehicles/{vin}/battery` | api_key | 1 |") {
		t.Fatalf("markdown: %d %s", r.status, r.body)
	}
	// Another tenant sees none of it.
	other := e.tenantWithAdmin("globex", "gus", "admin")
	if ops := e.must(200, other, "GET", "/inventory", nil)["operations"].([]any); len(ops) != 0 {
		t.Fatalf("inventory leaks across tenants: %v", ops)
	}
}
