package httpgw

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/ratelimit"
)

const benchSpec = `openapi: 3.1.0
info: {title: Vehicles, version: "1.0.0"}
servers: [{url: "https://vehicles.example.com/v1"}]
security: [{key: []}]
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-API-Key}
paths:
  /vehicles/{vin}/battery:
    get:
      operationId: getBattery
      parameters: [{name: vin, in: path, required: true, schema: {type: string, maxLength: 17, pattern: "^[A-Z0-9]+$"}}]
      responses: {"200": {description: ok}}
`

// BenchmarkGateway drives the whole HTTP adapter (match, API key, binding,
// rate limit, validation, proxy over a real loopback connection) in
// process, for profiling: go test -bench Gateway -cpuprofile cpu.out.
func BenchmarkGateway(b *testing.B) {
	body := []byte(`{"vin":"SJNFAAZE0U6000001","charge":81}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	defer up.Close()
	secret, _, hash := credential.NewAPIKey()
	v := model.Version{ID: "v", TenantID: "acme", APIName: "vehicles", Label: "v1", State: model.StatePublished,
		Bindings: model.Bindings{HTTP: &model.HTTPBinding{BasePath: "/v1", Operations: []model.HTTPOperation{{Method: "GET", Path: "/vehicles/{vin}/battery", OperationID: "getBattery"}}}},
		Upstream: model.Upstream{Targets: []string{up.URL}},
		Spec:     &model.Spec{Format: "openapi", Version: "3.1.0", Content: benchSpec},
		Policy: model.Policy{RateLimit: &model.RateLimitPolicy{Rate: 1 << 30, Period: "1s"},
			Operations: map[string]model.OperationPolicy{"getBattery": {Bindings: []model.IdentityBinding{{Param: "vin", Owned: "vehicle"}}}}},
	}
	c := ratelimit.NewLocal(ratelimit.LocalOptions{})
	defer c.Close()
	eng := policy.NewEngine(policy.Options{Counter: c})
	s := policy.Compile(&policy.Input{Versions: []model.Version{v},
		Apps:       []model.Application{{ID: "a", TenantID: "acme", Name: "bench"}},
		Keys:       []model.APIKey{{ID: "k", TenantID: "acme", AppID: "a", Hash: hash[:]}},
		Ownerships: []model.Ownership{{TenantID: "acme", Subject: "app:bench", ObjectType: "vehicle", ObjectID: "SJNFAAZE0U6000001"}}}, nil)
	if len(s.Warnings) > 0 {
		b.Fatal(s.Warnings)
	}
	eng.Swap(s)
	gw := New(Options{Engine: eng})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "/v1/vehicles/SJNFAAZE0U6000001/battery", nil)
			req.Header.Set("X-API-Key", secret)
			w := httptest.NewRecorder()
			gw.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
			_, _ = io.Copy(io.Discard, w.Body)
		}
	})
}

// BenchmarkBaselineProxy is the same exchange through a plain
// httputil.ReverseProxy, to compare with BenchmarkGateway.
func BenchmarkBaselineProxy(b *testing.B) {
	body := []byte(`{"vin":"SJNFAAZE0U6000001","charge":81}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	p := httputil.NewSingleHostReverseProxy(u)
	p.Transport = newTransport(0)
	p.BufferPool = &bufferPool{}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "/v1/vehicles/SJNFAAZE0U6000001/battery", nil)
			w := httptest.NewRecorder()
			p.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("%d", w.Code)
			}
		}
	})
}
