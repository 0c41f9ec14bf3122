package policy

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/ratelimit"
)

const vehicleSpec = `openapi: 3.1.0
info: {title: Vehicles, version: "1"}
servers: [{url: "https://api.example.com/v1"}]
security: [{key: []}]
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-API-Key}
paths:
  /vehicles/{vin}/battery:
    get:
      operationId: getBattery
      parameters:
        - {name: vin, in: path, required: true, schema: {type: string, maxLength: 17}}
      responses: {"200": {description: ok}}
  /vehicles/{vin}/climate:
    post:
      operationId: setClimate
      parameters:
        - {name: vin, in: path, required: true, schema: {type: string, maxLength: 17}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [target]
              properties:
                target: {type: number, minimum: 10, maximum: 30}
      responses: {"204": {description: ok}}
  /status:
    get:
      operationId: status
      security: []
      responses: {"200": {description: ok}}
`

type fixture struct {
	eng    *Engine
	snap   *Snapshot
	key    string // alice's app key, tenant acme
	other  string // key of tenant "globex"
	expkey string
}

func newFixture(t testing.TB, state model.State, limit *model.RateLimitPolicy) *fixture {
	t.Helper()
	secret, _, hash := credential.NewAPIKey()
	other, _, ohash := credential.NewAPIKey()
	exp, _, ehash := credential.NewAPIKey()
	past := time.Now().Add(-time.Hour)
	in := &Input{
		Serial: 1,
		Versions: []model.Version{{
			ID: "ver1", TenantID: "acme", APIName: "vehicles", Label: "v1", State: state,
			Bindings: model.Bindings{HTTP: &model.HTTPBinding{BasePath: "/v1", Operations: []model.HTTPOperation{
				{Method: "GET", Path: "/vehicles/{vin}/battery", OperationID: "getBattery"},
				{Method: "POST", Path: "/vehicles/{vin}/climate", OperationID: "setClimate"},
				{Method: "GET", Path: "/status", OperationID: "status"},
			}}},
			Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}},
			Spec:     &model.Spec{Format: "openapi", Version: "3.1.0", Content: vehicleSpec},
			Policy: model.Policy{
				RateLimit: limit,
				Operations: map[string]model.OperationPolicy{
					"getBattery": {Bindings: []model.IdentityBinding{{Param: "vin", Owned: "vehicle"}},
						Rules: []string{`principal.attributes["region"] == "eu" && params.vin.size() == 5`}},
					"setClimate": {Bindings: []model.IdentityBinding{{Param: "vin", Owned: "vehicle"}}},
				},
			},
		}},
		Apps: []model.Application{
			{ID: "a1", TenantID: "acme", Name: "alice-app", Attributes: map[string]string{"region": "eu"}},
			{ID: "a2", TenantID: "globex", Name: "mallory-app", Attributes: map[string]string{"region": "eu"}},
		},
		Keys: []model.APIKey{
			{ID: "k1", TenantID: "acme", AppID: "a1", Hash: hash[:]},
			{ID: "k2", TenantID: "globex", AppID: "a2", Hash: ohash[:]},
			{ID: "k3", TenantID: "acme", AppID: "a1", Hash: ehash[:], ExpiresAt: &past},
		},
		Ownerships: []model.Ownership{
			{TenantID: "acme", Subject: "app:alice-app", ObjectType: "vehicle", ObjectID: "WVW01"},
			{TenantID: "acme", Subject: "app:bob-app", ObjectType: "vehicle", ObjectID: "WVW02"},
			{TenantID: "acme", Subject: "app:alice-app", ObjectType: "vehicle", ObjectID: "WVW01X"},
		},
	}
	s := Compile(in, nil)
	if len(s.Warnings) > 0 {
		t.Fatalf("compile warnings: %v", s.Warnings)
	}
	c := ratelimit.NewLocal(ratelimit.LocalOptions{})
	t.Cleanup(func() { c.Close() })
	e := NewEngine(Options{Counter: c})
	e.Swap(s)
	return &fixture{eng: e, snap: s, key: secret, other: other, expkey: exp}
}

func (f *fixture) decide(method, path, key, body string) Decision {
	var pbuf [MaxParams]Param
	rt, ps := f.snap.MatchHTTP(method, path, pbuf[:0])
	r := &Request{Protocol: HTTP, Action: method, Path: path, Route: rt, Params: ps, Query: url.Values{}, Header: http.Header{},
		Now: time.Now(), Credentials: Credentials{APIKey: key}}
	if body != "" {
		r.Body, r.ContentType = []byte(body), "application/json"
	}
	return f.eng.Decide(context.Background(), f.snap, r)
}

func TestDecide(t *testing.T) {
	f := newFixture(t, model.StatePublished, nil)
	for _, tc := range []struct {
		name, method, path, key, body string
		status                        Status
		reason, pointer               string
	}{
		{"owner reads battery", "GET", "/v1/vehicles/WVW01/battery", f.key, "", Allow, "", ""},
		{"no credentials", "GET", "/v1/vehicles/WVW01/battery", "", "", Unauthenticated, ReasonNoCredentials, ""},
		{"garbage key", "GET", "/v1/vehicles/WVW01/battery", "hello", "", Unauthenticated, ReasonBadCredentials, ""},
		{"expired key", "GET", "/v1/vehicles/WVW01/battery", f.expkey, "", Unauthenticated, ReasonBadCredentials, ""},
		{"key of another tenant", "GET", "/v1/vehicles/WVW01/battery", f.other, "", Unauthenticated, ReasonBadCredentials, ""},
		{"someone else's vehicle", "GET", "/v1/vehicles/WVW02/battery", f.key, "", Forbidden, ReasonBinding, ""},
		{"made-up vehicle", "GET", "/v1/vehicles/ZZZ99/battery", f.key, "", Forbidden, ReasonBinding, ""},
		{"rule false", "GET", "/v1/vehicles/WVW01X/battery", f.key, "", Forbidden, ReasonRule, ""},
		{"valid climate", "POST", "/v1/vehicles/WVW01/climate", f.key, `{"target": 21.5}`, Allow, "", ""},
		{"invalid climate", "POST", "/v1/vehicles/WVW01/climate", f.key, `{"target": 99}`, Invalid, ReasonInvalid, "/body/target"},
		{"anonymous status", "GET", "/v1/status", "", "", Allow, "", ""},
		{"undeclared", "GET", "/v1/secret", f.key, "", NotFound, ReasonNoRoute, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := f.decide(tc.method, tc.path, tc.key, tc.body)
			if d.Status != tc.status || d.Reason != tc.reason || (tc.pointer != "" && d.Pointer != tc.pointer) {
				t.Fatalf("got status %d reason %q pointer %q (%s); want %d %q %q", d.Status, d.Reason, d.Pointer, d.Detail, tc.status, tc.reason, tc.pointer)
			}
		})
	}
	// A foreign VIN and a made-up VIN are indistinguishable.
	a := f.decide("GET", "/v1/vehicles/WVW02/battery", f.key, "")
	b := f.decide("GET", "/v1/vehicles/ZZZ99/battery", f.key, "")
	if a.Detail != b.Detail || a.Reason != b.Reason || a.Status != b.Status {
		t.Fatalf("existence leaks: %+v vs %+v", a, b)
	}
}

func TestDecideLifecycleAndLimits(t *testing.T) {
	for _, tc := range []struct {
		state  model.State
		status Status
	}{{model.StateRetired, Gone}, {model.StateBlocked, Blocked}, {model.StateDeprecated, Allow}} {
		f := newFixture(t, tc.state, nil)
		if d := f.decide("GET", "/v1/vehicles/WVW01/battery", f.key, ""); d.Status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.state, d.Status, tc.status)
		}
	}
	f := newFixture(t, model.StatePublished, &model.RateLimitPolicy{Rate: 5, Period: "1m", Burst: 5})
	for i := 0; i < 5; i++ {
		if d := f.decide("GET", "/v1/vehicles/WVW01/battery", f.key, ""); d.Status != Allow || !d.HasRateLimit || d.RateLimit.Result.Remaining != 4-i {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	d := f.decide("GET", "/v1/vehicles/WVW01/battery", f.key, "")
	if d.Status != RateLimited || d.RateLimit.Result.RetryAfter <= 0 {
		t.Fatalf("6th request: %+v", d)
	}
}

func TestCompileLeavesOutBrokenVersions(t *testing.T) {
	in := &Input{Versions: []model.Version{
		{ID: "a", TenantID: "t", APIName: "x", Label: "v1", State: model.StatePublished,
			Bindings: model.Bindings{HTTP: &model.HTTPBinding{BasePath: "/x", Operations: []model.HTTPOperation{{Method: "GET", Path: "/a", OperationID: "a"}}}},
			Policy:   model.Policy{Rules: []string{"nonsense +"}}},
		{ID: "b", TenantID: "t", APIName: "y", Label: "v1", State: model.StatePublished,
			Bindings: model.Bindings{HTTP: &model.HTTPBinding{BasePath: "/y", Operations: []model.HTTPOperation{{Method: "GET", Path: "/a", OperationID: "a"}}}},
			Policy:   model.Policy{Auth: &model.AuthPolicy{Methods: []string{"anonymous"}}}},
		{ID: "c", TenantID: "t", APIName: "z", Label: "v1", State: model.StatePublished,
			Bindings: model.Bindings{HTTP: &model.HTTPBinding{BasePath: "/y", Operations: []model.HTTPOperation{{Method: "GET", Path: "/a", OperationID: "a"}}}}},
	}}
	s := Compile(in, nil)
	if len(s.Warnings) != 2 {
		t.Fatalf("warnings: %v", s.Warnings)
	}
	if rt, _ := s.MatchHTTP("GET", "/y/a", nil); rt == nil || rt.API != "y" {
		t.Fatalf("good version must still be served: %+v", rt)
	}
	if rt, _ := s.MatchHTTP("GET", "/x/a", nil); rt != nil {
		t.Fatal("broken version served")
	}
}

// BenchmarkDecide measures a typical decision: API key, identity binding by
// ownership, one CEL rule and a rate limit.
func BenchmarkDecide(b *testing.B) {
	f := newFixture(b, model.StatePublished, &model.RateLimitPolicy{Rate: 1 << 30, Period: "1s", Burst: 1 << 30})
	var pbuf [MaxParams]Param
	path := "/v1/vehicles/WVW01/battery"
	rt, ps := f.snap.MatchHTTP("GET", path, pbuf[:0])
	r := &Request{Protocol: HTTP, Action: "GET", Path: path, Route: rt, Params: ps, Now: time.Now(), Credentials: Credentials{APIKey: f.key}}
	// The benchmark's own operation has no schema for query/body, so
	// validation is the parameter check only.
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d := f.eng.Decide(ctx, f.snap, r); d.Status != Allow {
			b.Fatalf("denied: %+v", d)
		}
	}
}
