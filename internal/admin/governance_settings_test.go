package admin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/app"
	"github.com/fleetgate/fleetgate/internal/config"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

func TestGovernanceSettingsValidation(t *testing.T) {
	e := newEnv(t)
	admin := e.tenantWithAdmin("acme", "ada", "admin")
	author := e.operator("acme", "ann", "author")
	e.must(201, admin, "POST", "/apis", map[string]any{"name": "vehicles", "owner": "o"})

	got := e.must(200, author, "GET", "/governance", nil)
	eff := got["effective"].(map[string]any)
	if eff["version_budget"].(float64) != 2 || eff["retire_window"] != "30d" || eff["lint_levels"].(map[string]any)["operation-security"] != "error" {
		t.Fatalf("defaults: %v", eff)
	}
	if r := e.call(author, "PUT", "/governance", map[string]any{"version_budget": 3}); r.status != 403 {
		t.Fatalf("an author changed the settings: %d %s", r.status, r.body)
	}
	cases := []struct {
		name    string
		body    any
		status  int
		pointer string
		detail  string
	}{
		{"unknown rule lists the known ones", map[string]any{"lint_levels": map[string]any{"no-such-rule": "off"}}, 422, "/lint_levels/no-such-rule", "known rules: operation-security"},
		{"bad level", map[string]any{"lint_levels": map[string]any{"version-in-path": "loud"}}, 422, "/lint_levels/version-in-path", "error, warn, info or off"},
		{"fixed rule", map[string]any{"lint_levels": map[string]any{"waiver-needs-reason": "off"}}, 422, "/lint_levels/waiver-needs-reason", "cannot be overridden"},
		{"budget out of range", map[string]any{"version_budget": 101}, 422, "/version_budget", "from 1 to 100"},
		{"budget of an unknown API", map[string]any{"api_budgets": map[string]any{"vehicels": 3}}, 422, "/api_budgets/vehicels", "no API named"},
		{"zero API budget", map[string]any{"api_budgets": map[string]any{"vehicles": 0}}, 422, "/api_budgets/vehicles", "from 1 to 100"},
		{"bad window", map[string]any{"retire_window": "a month"}, 422, "/retire_window", "30d"},
		{"window too short", map[string]any{"retire_window": "5m"}, 422, "/retire_window", "from 1h"},
		{"unknown field", map[string]any{"budget": 3}, 400, "/budget", ""},
		{"wrong type", map[string]any{"version_budget": "3"}, 400, "/version_budget", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(admin, "PUT", "/governance", tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			m := r.json(t)
			errs, _ := m["errors"].([]any)
			if len(errs) == 0 {
				t.Fatalf("no field errors: %s", r.body)
			}
			fe := errs[0].(map[string]any)
			if fe["pointer"] != tc.pointer || !strings.Contains(fe["detail"].(string), tc.detail) {
				t.Fatalf("error %v, want pointer %s and %q", fe, tc.pointer, tc.detail)
			}
		})
	}
	// Nothing was written by the refused requests.
	if got := e.must(200, admin, "GET", "/governance", nil); got["updated_by"] != nil {
		t.Fatalf("a refused PUT left settings: %v", got)
	}
	put := e.must(200, admin, "PUT", "/governance", map[string]any{"lint_levels": map[string]any{"version-in-path": "off"},
		"version_budget": 4, "api_budgets": map[string]any{"vehicles": 3}, "retire_window": "7d"})
	if put["retire_window"] != "7d" || put["updated_by"] != "acme/ada" || put["effective"].(map[string]any)["version_budget"].(float64) != 4 {
		t.Fatalf("put answer: %v", put)
	}
	recs := e.must(200, rootToken, "GET", "/audit?action=governance.update", nil, "Fleetgate-Tenant", "acme")["items"].([]any)
	if len(recs) != 1 || recs[0].(map[string]any)["actor"] != "acme/ada" {
		t.Fatalf("audit of the change: %v", recs)
	}
	// Another tenant keeps the defaults.
	other := e.tenantWithAdmin("globex", "gus", "admin")
	if eff := e.must(200, other, "GET", "/governance", nil)["effective"].(map[string]any); eff["version_budget"].(float64) != 2 {
		t.Fatalf("settings leak across tenants: %v", eff)
	}
}

func TestGovernanceSettingsChangeBehaviour(t *testing.T) {
	e := newEnv(t)
	admin := e.tenantWithAdmin("acme", "ada", "admin")
	author := e.operator("acme", "ann", "author", "operator")
	reviewer := e.operator("acme", "rita", "reviewer")

	t.Run("a disabled lint rule no longer blocks", func(t *testing.T) {
		e.must(201, author, "POST", "/apis", map[string]any{"name": "open", "owner": "o"})
		insecure := strings.Replace(specWithBase("/open"), "security:\n  - key: []\n", "", 1)
		e.must(201, author, "POST", "/apis/open/versions", map[string]any{"version": "v1", "spec": insecure, "policy": ownedPolicy()})
		checkType(t, e.call(author, "POST", "/apis/open/versions/v1/transitions", map[string]any{"to": "in_review"}), "lint")
		e.must(200, admin, "PUT", "/governance", map[string]any{"lint_levels": map[string]any{"operation-security": "warn"}})
		e.must(200, author, "POST", "/apis/open/versions/v1/transitions", map[string]any{"to": "in_review"})
		// The inventory reports the finding at the tenant's level.
		for _, f := range e.must(200, author, "GET", "/inventory", nil)["findings"].([]any) {
			if fm := f.(map[string]any); fm["rule"] == "operation-security" && fm["level"] != "warn" {
				t.Fatalf("inventory ignores the tenant's level: %v", fm)
			}
		}
	})

	t.Run("a per-API budget of 3 allows a third version", func(t *testing.T) {
		e.must(201, author, "POST", "/apis", map[string]any{"name": "vehicles", "owner": "o"})
		for _, v := range []string{"v1", "v2", "v3"} {
			e.must(201, author, "POST", "/apis/vehicles/versions", map[string]any{"version": v, "spec": specWithBase("/" + v),
				"upstream": map[string]any{"targets": []string{"http://127.0.0.1:9"}}, "policy": ownedPolicy()})
		}
		e.publish(author, reviewer, "vehicles", "v1")
		e.publish(author, reviewer, "vehicles", "v2")
		e.must(200, author, "POST", "/apis/vehicles/versions/v3/transitions", map[string]any{"to": "in_review"})
		checkType(t, e.call(reviewer, "POST", "/apis/vehicles/versions/v3/transitions", map[string]any{"to": "published"}), "version-budget")
		e.must(200, admin, "PUT", "/governance", map[string]any{"api_budgets": map[string]any{"vehicles": 3}})
		e.must(200, reviewer, "POST", "/apis/vehicles/versions/v3/transitions", map[string]any{"to": "published"})
	})
}

// chargeSpec has the shape of vehicleSpec's operations plus a response
// schema, under paths and names chosen by another team.
func shapedSpec(base, resource, param string) string {
	return `openapi: 3.1.0
info: {title: T, version: "1.0"}
servers: [{url: "https://api.example.com` + base + `"}]
security: [{key: []}]
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-API-Key}
paths:
  /` + resource + `/{` + param + `}/battery:
    get:
      operationId: getBattery
      parameters: [{name: ` + param + `, in: path, required: true, schema: {type: string, maxLength: 17}}]
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: object
                properties:
                  level: {type: integer, maximum: 100}
`
}

func TestNearDuplicatesWarnNotBlock(t *testing.T) {
	e := newEnv(t)
	author := e.tenantWithAdmin("acme", "ann", "author", "operator")
	reviewer := e.operator("acme", "rita", "reviewer")
	bound := func(param string) map[string]any {
		return map[string]any{"operations": map[string]any{"getBattery": map[string]any{"bindings": []map[string]any{{"param": param, "owned": "vehicle"}}}}}
	}
	e.must(201, author, "POST", "/apis", map[string]any{"name": "vehicles", "owner": "o"})
	e.must(201, author, "POST", "/apis/vehicles/versions", map[string]any{"version": "v1", "spec": shapedSpec("/v1", "vehicles", "vin"), "policy": bound("vin")})
	e.publish(author, reviewer, "vehicles", "v1")

	e.must(201, author, "POST", "/apis", map[string]any{"name": "cars", "owner": "o"})
	e.must(201, author, "POST", "/apis/cars/versions", map[string]any{"version": "v1", "spec": shapedSpec("/cars/v1", "cars", "carId"), "policy": bound("carId")})
	out := e.must(200, author, "POST", "/apis/cars/versions/v1/transitions", map[string]any{"to": "in_review"})
	ws, _ := out["warnings"].([]any)
	if len(ws) != 1 {
		t.Fatalf("submit answer without the near-duplicate warning: %v", out)
	}
	w := ws[0].(map[string]any)
	ov := w["data"].([]any)[0].(map[string]any)
	if w["check"] != "near-duplicate" || ov["other_api"] != "vehicles" || ov["other_version"] != "v1" ||
		!strings.Contains(ov["other_operation"].(string), "GET /vehicles/{vin}/battery") || !strings.Contains(w["detail"].(string), "vehicles/v1") {
		t.Fatalf("warning: %v", w)
	}
	items := e.must(200, reviewer, "GET", "/apis/cars/versions/v1/overlaps", nil)["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["operation"] != "getBattery (GET /cars/{carId}/battery)" {
		t.Fatalf("overlaps route: %v", items)
	}
	// A warning does not block: the reviewer publishes.
	e.must(200, reviewer, "POST", "/apis/cars/versions/v1/transitions", map[string]any{"to": "published"})
	recs := e.must(200, rootToken, "GET", "/audit?action=version.transition", nil, "Fleetgate-Tenant", "acme")["items"].([]any)
	found := false
	for _, r := range recs {
		found = found || strings.Contains(string(mustJSON(t, r.(map[string]any)["detail"])), `"warnings":["near-duplicate"]`)
	}
	if !found {
		t.Fatal("the submission accepted with a warning is not audited as such")
	}
	// The same shape at the same route is a collision, not a near-duplicate:
	// it blocks publishing.
	e.must(201, author, "POST", "/apis", map[string]any{"name": "autos", "owner": "o"})
	e.must(201, author, "POST", "/apis/autos/versions", map[string]any{"version": "v1", "spec": shapedSpec("/v1", "vehicles", "id"), "policy": bound("id")})
	out = e.must(200, author, "POST", "/apis/autos/versions/v1/transitions", map[string]any{"to": "in_review"})
	if ws, _ := out["warnings"].([]any); len(ws) != 1 || len(ws[0].(map[string]any)["data"].([]any)) != 1 {
		t.Fatalf("only the near-duplicate in cars is a warning, the collision with vehicles is not: %v", out["warnings"])
	}
	checkType(t, e.call(reviewer, "POST", "/apis/autos/versions/v1/transitions", map[string]any{"to": "published"}), "operation-collision")
}

const channelSpec = `asyncapi: 2.6.0
info: {title: Fleet, version: "1.0"}
servers:
  prod: {url: "broker.example.com:8883", protocol: mqtts, security: [{key: []}]}
components:
  securitySchemes:
    key: {type: userPassword}
channels:
  v1/fleet/{deviceId}/telemetry:
    parameters: {deviceId: {schema: {type: string, maxLength: 64}}}
    publish:
      operationId: sendTelemetry
      message:
        payload: {type: object, properties: {temp: {type: number}}}
`

func TestMQTTChannelCollisionBlocksPublishing(t *testing.T) {
	e := newEnv(t)
	author := e.tenantWithAdmin("acme", "ann", "author", "operator")
	reviewer := e.operator("acme", "rita", "reviewer")
	// The copy names the parameter differently: topics collide by shape.
	for api, param := range map[string]string{"telemetry": "deviceId", "telemetry-copy": "id"} {
		pol := map[string]any{"operations": map[string]any{"sendTelemetry": map[string]any{"bindings": []map[string]any{{"param": param, "equals": "principal.id"}}}}}
		e.must(201, author, "POST", "/apis", map[string]any{"name": api, "owner": "o"})
		e.must(201, author, "POST", "/apis/"+api+"/versions", map[string]any{"version": "v1", "spec": strings.ReplaceAll(channelSpec, "deviceId", param), "policy": pol})
		e.must(200, author, "POST", "/apis/"+api+"/versions/v1/transitions", map[string]any{"to": "in_review"})
	}
	e.must(200, reviewer, "POST", "/apis/telemetry/versions/v1/transitions", map[string]any{"to": "published"})
	m := checkType(t, e.call(reviewer, "POST", "/apis/telemetry-copy/versions/v1/transitions", map[string]any{"to": "published"}), "operation-collision")
	if !strings.Contains(m["detail"].(string), "MQTT publish") || !strings.Contains(m["detail"].(string), "telemetry/v1") {
		t.Fatalf("detail: %v", m["detail"])
	}
}

// TestSunsetSweeper: at the sunset, an unused deprecated version is retired
// by the system actor; a used one is left deprecated and alerted on (gauge
// and finding).
func TestSunsetSweeper(t *testing.T) {
	e := newEnv(t)
	author := e.tenantWithAdmin("acme", "ann", "author", "operator")
	reviewer := e.operator("acme", "rita", "reviewer")
	for _, api := range []string{"quiet", "busy"} {
		e.must(201, author, "POST", "/apis", map[string]any{"name": api, "owner": "o"})
		for _, v := range []string{"v1", "v2"} {
			e.must(201, author, "POST", "/apis/"+api+"/versions", map[string]any{"version": v, "spec": specWithBase("/" + api + "/" + v),
				"upstream": map[string]any{"targets": []string{"http://127.0.0.1:9"}}, "policy": ownedPolicy()})
			e.publish(author, reviewer, api, v)
		}
		sunset := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		e.must(200, author, "POST", "/apis/"+api+"/versions/v1/transitions", map[string]any{"to": "deprecated", "sunset": sunset, "successor": "v2"})
	}
	st := e.app.Store()
	ctx := context.Background()
	// Time passes: the sunsets are an hour ago, and busy/v1 was called
	// yesterday by a device (persisted usage).
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	var busyID string
	if err := st.Update(ctx, func(tx store.Tx) error {
		for _, api := range []string{"quiet", "busy"} {
			a, err := tx.GetAPI("acme", api)
			if err != nil {
				return err
			}
			v, err := tx.GetVersion("acme", a.ID, "v1")
			if err != nil {
				return err
			}
			v.Sunset = &past
			if api == "busy" {
				busyID = v.ID
			}
			if err := tx.UpdateVersion(v); err != nil {
				return err
			}
		}
		return tx.AddVersionUsage([]model.VersionUsage{{TenantID: "acme", VersionID: busyID, Consumer: "device:meter-17", Model: "em-300",
			Firmware: "1.2.0", Count: 42, LastSeen: time.Now().Add(-24 * time.Hour)}})
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := e.app.SunsetSweeper().Run(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Retired) != 1 || rep.Retired[0] != "acme/quiet/v1" || len(rep.Alerts) != 1 || rep.Alerts[0].API != "busy" {
		t.Fatalf("sweep: %+v", rep)
	}
	if v := e.must(200, author, "GET", "/apis/quiet/versions/v1", nil); v["state"] != "retired" {
		t.Fatalf("quiet/v1: %v", v["state"])
	}
	if v := e.must(200, author, "GET", "/apis/busy/versions/v1", nil); v["state"] != "deprecated" {
		t.Fatalf("busy/v1: %v", v["state"])
	}
	recs := e.must(200, rootToken, "GET", "/audit?action=version.transition&actor=system/sunset-sweeper", nil, "Fleetgate-Tenant", "acme")["items"].([]any)
	if len(recs) != 1 || recs[0].(map[string]any)["object_id"] != "quiet/v1" || !strings.Contains(string(mustJSON(t, recs[0].(map[string]any)["detail"])), `"automatic":true`) {
		t.Fatalf("automatic retirement audit: %v", recs)
	}
	if r := e.call(rootToken, "GET", "/audit/verify", nil, "Fleetgate-Tenant", "acme"); r.status != 200 {
		t.Fatalf("audit chain after the sweep: %d %s", r.status, r.body)
	}
	res, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `fleetgate_versions_past_sunset{api="busy",tenant="acme",version="v1"} 1`) ||
		!strings.Contains(string(body), "fleetgate_sunset_retirements_total 1") {
		t.Fatalf("metrics lack the alert:\n%s", grepLines(string(body), "sunset"))
	}
	var finding map[string]any
	for _, f := range e.must(200, author, "GET", "/security/findings", nil)["findings"].([]any) {
		if fm := f.(map[string]any); fm["id"] == "past-sunset-in-use" {
			finding = fm
		}
	}
	if finding == nil || !strings.Contains(finding["objects"].([]any)[0].(string), "busy/v1") ||
		!strings.Contains(finding["objects"].([]any)[0].(string), "device:meter-17 [em-300 1.2.0] (42 calls") {
		t.Fatalf("finding: %v", finding)
	}
	// With a retire window shorter than the device's silence, the next
	// sweep retires busy/v1 and the alert clears.
	e.must(200, rootToken, "PUT", "/governance", map[string]any{"retire_window": "12h"}, "Fleetgate-Tenant", "acme")
	if rep, err = e.app.SunsetSweeper().Run(ctx, time.Now()); err != nil || len(rep.Retired) != 1 || len(rep.Alerts) != 0 {
		t.Fatalf("second sweep: %+v %v", rep, err)
	}
	res, err = http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(body), `fleetgate_versions_past_sunset{`) {
		t.Fatalf("the alert did not clear:\n%s", grepLines(string(body), "sunset"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestUsageSurvivesRestart: calls through the data plane are flushed at
// shutdown; after a restart on the same SQLite file the retirement check
// still names the caller.
func TestUsageSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *env {
		cfg := config.Default()
		cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.AdminToken = dir, "127.0.0.1:0", "127.0.0.1:0", rootToken
		a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		return &env{t: t, url: a.AdminURL(), app: a, dir: dir, http: &http.Client{Timeout: 30 * time.Second}}
	}
	e := start()
	author := e.tenantWithAdmin("acme", "ann", "author", "operator")
	reviewer := e.operator("acme", "rita", "reviewer")
	e.must(201, author, "POST", "/apis", map[string]any{"name": "vehicles", "owner": "o"})
	for _, v := range []string{"v1", "v2"} {
		e.must(201, author, "POST", "/apis/vehicles/versions", map[string]any{"version": v, "spec": specWithBase("/" + v),
			"upstream": map[string]any{"targets": []string{"http://127.0.0.1:9"}}, "policy": ownedPolicy()})
		e.publish(author, reviewer, "vehicles", v)
	}
	e.must(201, author, "POST", "/apps", map[string]any{"name": "phone-app"})
	key := e.must(201, author, "POST", "/apps/phone-app/keys", map[string]any{"name": "k"})["secret"].(string)
	e.must(201, author, "POST", "/ownerships", map[string]any{"subject": "app:phone-app", "object_type": "vehicle", "object_id": "VIN1"})
	data := e.app.DataURLs()[0]
	status := 0
	for i := 0; i < 100 && status != 502; i++ { // the snapshot follows the admin change asynchronously
		req, _ := http.NewRequest("GET", data+"/v1/vehicles/VIN1/battery", nil)
		req.Header.Set("X-API-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if status = res.StatusCode; status != 502 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if status != 502 { // allowed, and the upstream does not exist
		t.Fatalf("traffic through the gateway: %d", status)
	}
	sunset := time.Now().Add(90 * 24 * time.Hour).UTC().Format(time.RFC3339)
	e.must(200, author, "POST", "/apis/vehicles/versions/v1/transitions", map[string]any{"to": "deprecated", "sunset": sunset, "successor": "v2"})
	if err := e.app.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	e = start()
	t.Cleanup(func() { _ = e.app.Shutdown(context.Background()) })
	m := checkType(t, e.call(author, "POST", "/apis/vehicles/versions/v1/transitions", map[string]any{"to": "retired"}), "retire-in-use")
	if !strings.Contains(m["detail"].(string), "app:phone-app (1 calls") {
		t.Fatalf("the refusal after a restart must name the caller: %v", m["detail"])
	}
	inv := e.must(200, author, "GET", "/inventory", nil)
	calls := 0.0
	for _, op := range inv["operations"].([]any) {
		calls += op.(map[string]any)["calls"].(float64)
	}
	if calls == 0 {
		t.Fatalf("inventory lost the traffic across the restart: %v", inv["operations"])
	}
}
