package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const vehicleAPI = `openapi: 3.1.0
info: {title: Vehicles, version: "1.0.0"}
servers: [{url: "https://vehicles.example.com/v1"}]
security: [{userJWT: []}]
components:
  securitySchemes:
    userJWT: {type: http, scheme: bearer, bearerFormat: JWT}
paths:
  /vehicles/{vin}/battery:
    get:
      operationId: getBattery
      parameters:
        - {name: vin, in: path, required: true, schema: {type: string, maxLength: 17}}
      responses:
        "200": {description: battery state}
        "401": {description: unauthenticated}
        "403": {description: forbidden}
        "429": {description: rate limited}
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
              additionalProperties: false
              required: [target_celsius]
              properties:
                target_celsius: {type: number, minimum: 16, maximum: 30}
      responses:
        "204": {description: accepted}
        "401": {description: unauthenticated}
        "403": {description: forbidden}
        "429": {description: rate limited}
`

// issuer is an OIDC-like token issuer: an ES256 key served as a JWKS over
// TLS. The fleetgate process trusts its certificate through SSL_CERT_FILE.
type issuer struct {
	key    *ecdsa.PrivateKey
	srv    *httptest.Server
	caFile string
}

func newIssuer(t *testing.T) *issuer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
		"x": b64(key.PublicKey.X.FillBytes(make([]byte, 32))), "y": b64(key.PublicKey.Y.FillBytes(make([]byte, 32))),
	}}})
	is.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(is.srv.Close)
	is.caFile = filepath.Join(t.TempDir(), "issuer-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw})
	if err := os.WriteFile(is.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return is
}

func (is *issuer) token(t *testing.T, sub string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://id.example.com", "aud": "vehicles", "sub": sub,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(is.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (n *node) admin(t *testing.T, secret, method, path string, body any, want int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.url+"/admin/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (n *node) call(t *testing.T, method, path, bearer, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, n.data+path, rd)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, b}
}

// TestNissanScenario scripts the 2016 Nissan Leaf failure against the real
// binary and a real upstream: the API must bind the VIN to the caller's
// identity instead of trusting it.
func TestNissanScenario(t *testing.T) {
	var upstreamCalls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamCalls.Add(1)
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the caller's token reached the upstream")
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Method == "POST" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fmt.Fprintf(w, `{"vin":%q,"charge":81,"subject":%q}`, strings.Split(r.URL.Path, "/")[3], r.Header.Get("X-Fleetgate-Subject"))
	}))
	defer upstream.Close()
	is := newIssuer(t)
	n := start(t, []string{"FLEETGATE_ADMIN_TOKEN=" + token, "SSL_CERT_FILE=" + is.caFile}, "--data-dir", t.TempDir())

	// A reviewer who is not the author publishes (separation of duties).
	n.admin(t, token, "POST", "/operators", map[string]any{"name": "rita", "roles": []string{"reviewer"}}, 201)
	reviewer := n.admin(t, token, "POST", "/tokens", map[string]any{"name": "rita", "operator": "rita"}, 201)["secret"].(string)
	n.admin(t, token, "POST", "/apis", map[string]any{"name": "vehicles", "owner": "connected-car"}, 201)
	owned := []map[string]any{{"param": "vin", "owned": "vehicle"}}
	n.admin(t, token, "POST", "/apis/vehicles/versions", map[string]any{
		"version": "v1", "spec": vehicleAPI,
		"upstream": map[string]any{"targets": []string{upstream.URL}},
		"policy": map[string]any{
			"auth":       map[string]any{"jwt": map[string]any{"issuer": "https://id.example.com", "audiences": []string{"vehicles"}, "jwks_url": is.srv.URL + "/jwks.json"}},
			"rate_limit": map[string]any{"rate": 50, "period": "1m", "burst": 50},
			"operations": map[string]any{"getBattery": map[string]any{"bindings": owned}, "setClimate": map[string]any{"bindings": owned}},
		},
	}, 201)
	n.admin(t, token, "POST", "/ownerships", map[string]any{"subject": "user:alice", "object_type": "vehicle", "object_id": "SJNFAAZE0U6000001"}, 201)
	n.admin(t, token, "POST", "/ownerships", map[string]any{"subject": "user:bob", "object_type": "vehicle", "object_id": "SJNFAAZE0U6000002"}, 201)
	n.admin(t, token, "POST", "/apis/vehicles/versions/v1/transitions", map[string]any{"to": "in_review", "reason": "ready"}, 200)
	n.admin(t, reviewer, "POST", "/apis/vehicles/versions/v1/transitions", map[string]any{"to": "published", "reason": "reviewed"}, 200)

	alice, bob := is.token(t, "alice"), is.token(t, "bob")
	battery := "/v1/vehicles/SJNFAAZE0U6000001/battery"
	var a answer
	for i := 0; i < 100; i++ { // the snapshot is rebuilt asynchronously after publish
		if a = n.call(t, "GET", battery, alice, ""); a.status != 404 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a.status != 200 || !strings.Contains(string(a.body), `"subject":"user:alice"`) {
		t.Fatalf("owner reading her battery: %d %s", a.status, a.body)
	}
	if a.header.Get("RateLimit-Policy") == "" || a.header.Get("X-Request-Id") == "" {
		t.Fatalf("missing RateLimit-Policy or X-Request-Id: %v", a.header)
	}
	if c := n.call(t, "POST", "/v1/vehicles/SJNFAAZE0U6000001/climate", alice, `{"target_celsius": 21}`); c.status != 204 {
		t.Fatalf("owner setting her climate: %d %s", c.status, c.body)
	}
	if c := n.call(t, "POST", "/v1/vehicles/SJNFAAZE0U6000001/climate", alice, `{"target_celsius": 99}`); c.status != 400 || !strings.Contains(string(c.body), "/body/target_celsius") {
		t.Fatalf("out-of-range climate: %d %s", c.status, c.body)
	}

	// Another authenticated user: the same 403 for a real and a made-up VIN.
	callsBefore := upstreamCalls.Load()
	real := n.call(t, "POST", "/v1/vehicles/SJNFAAZE0U6000001/climate", bob, `{"target_celsius": 30}`)
	fake := n.call(t, "POST", "/v1/vehicles/SJNFAAZE0U6999999/climate", bob, `{"target_celsius": 30}`)
	norm := regexp.MustCompile(`"(instance|request_id)":"[^"]*"`)
	if real.status != 403 || fake.status != 403 || norm.ReplaceAllString(string(real.body), "") != norm.ReplaceAllString(string(fake.body), "") {
		t.Fatalf("foreign vs made-up VIN differ:\n%d %s\n%d %s", real.status, real.body, fake.status, fake.body)
	}
	if upstreamCalls.Load() != callsBefore {
		t.Fatal("a denied request reached the upstream")
	}
	if b := n.call(t, "GET", "/v1/vehicles/SJNFAAZE0U6000002/battery", bob, ""); b.status != 200 {
		t.Fatalf("bob reading his own car: %d %s", b.status, b.body)
	}

	// No token: 401 with a challenge. A forged token: 401.
	if r := n.call(t, "GET", battery, "", ""); r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %v", r.status, r.header)
	}
	if r := n.call(t, "GET", battery, alice[:len(alice)-4]+"AAAA", ""); r.status != 401 {
		t.Fatalf("forged token: %d", r.status)
	}

	// Walking 1,000 VINs is cut off by the rate limit, and finds nothing.
	counts := map[int]int{}
	for i := 0; i < 1000; i++ {
		r := n.call(t, "GET", fmt.Sprintf("/v1/vehicles/SJNFAAZE0U6%06d/battery", 100000+i), bob, "")
		counts[r.status]++
		if r.status == 429 && r.header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if counts[200] != 0 || counts[429] < 900 {
		t.Fatalf("VIN walk: %v (want no 200 and the walk throttled)", counts)
	}
	t.Logf("VIN walk of 1000 by an authenticated stranger: %v", counts)

	// Shadow traffic and metrics.
	if r := n.call(t, "GET", "/v1/vehicles", alice, ""); r.status != 404 {
		t.Fatalf("undeclared route: %d", r.status)
	}
	res, err := client.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`fleetgate_denials_total{protocol="http",reason="identity-binding"}`, `fleetgate_requests_total{api="vehicles"`} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
