package admin_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
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
	"github.com/fleetgate/fleetgate/internal/identity/pki/pkitest"
	"github.com/fleetgate/fleetgate/internal/store/sqlstore"
)

// claimEnv is a real node with a device KEK, a tenant CA and an admin of
// tenant acme; data is the data-plane base URL (claim enrollment lives
// there, not on the admin API).
func claimEnv(t *testing.T) (e *env, tok, data string) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.AdminToken = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", rootToken
	cfg.DeviceKEK = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	e = &env{t: t, url: a.AdminURL(), app: a, dir: cfg.DataDir, http: &http.Client{Timeout: 30 * time.Second}}
	tok = e.tenantWithAdmin("acme", "ada", "admin")
	e.must(201, tok, "POST", "/ca", map[string]any{})
	return e, tok, a.DataURLs()[0]
}

// claimBody is a claim enrollment request for device with a fresh P-256
// key whose CSR names cn.
func claimBody(t *testing.T, device, model, cn string) []byte {
	b, _ := json.Marshal(map[string]string{"device_id": device, "model": model, "serial": "SN-" + device, "csr": string(csrPEM(t, cn, nil))})
	return b
}

func claimPost(t *testing.T, url, authz string, body []byte) resp {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func auditActions(e *env, tok, action string) []map[string]any {
	e.t.Helper()
	out := e.must(200, tok, "GET", "/audit?action="+action, nil)
	items, _ := out["items"].([]any)
	var recs []map[string]any
	for _, it := range items {
		recs = append(recs, it.(map[string]any))
	}
	return recs
}

// TestClaimEnrollment walks a token claim through its life over the real
// data-plane listener: enrollments up to the maximum, every refusal with
// its precise problem type and an audit record and nothing registered,
// then revocation and expiry.
func TestClaimEnrollment(t *testing.T) {
	e, tok, data := claimEnv(t)
	url := data + "/.well-known/fleetgate/claim"
	created := e.must(201, tok, "POST", "/claims", map[string]any{"name": "batch-7", "models": []string{"em-300", "em-400"}, "max_devices": 2, "expires_in": "1h"})
	secret := created["secret"].(string)
	if !strings.HasPrefix(secret, "fgc_") || created["claim"].(map[string]any)["used"].(float64) != 0 {
		t.Fatalf("created: %v", created)
	}
	bearer := "Bearer " + secret
	if r := claimPost(t, url, bearer, claimBody(t, "meter-1", "em-300", "meter-1")); r.status != 201 {
		t.Fatalf("first enrollment: %d %s", r.status, r.body)
	}
	dev := e.must(200, tok, "GET", "/devices/meter-1", nil)
	if dev["status"] != "active" || dev["model"] != "em-300" || dev["serial"] != "SN-meter-1" {
		t.Fatalf("enrolled device: %v", dev)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	weak, _ := json.Marshal(map[string]string{"device_id": "meter-5", "model": "em-300", "csr": string(csrPEM(t, "meter-5", p224))})
	for _, tc := range []struct {
		name   string
		authz  string
		body   []byte
		status int
		kind   string
		audit  bool // a refusal of a known claim is audited
	}{
		{"model not allowed", bearer, claimBody(t, "meter-2", "em-999", "meter-2"), 403, "enrollment/model-not-allowed", true},
		{"device id taken", bearer, claimBody(t, "meter-1", "em-300", "meter-1"), 409, "enrollment/device-taken", true},
		{"CSR claims another device", bearer, claimBody(t, "meter-2", "em-300", "meter-1"), 403, "enrollment/identity-mismatch", true},
		{"unsupported key", bearer, weak, 422, "enrollment/unsupported-key", true},
		{"malformed CSR", bearer, []byte(`{"device_id":"meter-2","model":"em-300","csr":"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}`), 400, "enrollment/malformed-csr", true},
		{"unknown member", bearer, []byte(`{"device_id":"meter-2","model":"em-300","csr":"x","tenant":"globex"}`), 400, "enrollment/malformed-request", true},
		{"invalid device id", bearer, claimBody(t, "meter 2", "em-300", ""), 422, "enrollment/invalid-request", true},
		{"oversized", bearer, bytes.Repeat([]byte(" "), 64<<10), 413, "enrollment/too-large", true},
		{"not JSON", bearer, []byte("-----BEGIN CERTIFICATE REQUEST-----"), 400, "enrollment/malformed-request", true},
		{"unknown claim", "Bearer fgc_" + strings.Repeat("A", 43), claimBody(t, "meter-2", "em-300", "meter-2"), 401, "enrollment/invalid-claim", false},
		{"no credential", "", claimBody(t, "meter-2", "em-300", "meter-2"), 401, "enrollment/no-claim", false},
		{"enrollment token shape", "Bearer fge_" + strings.Repeat("A", 43), claimBody(t, "meter-2", "em-300", "meter-2"), 401, "enrollment/invalid-claim", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(auditActions(e, tok, "claim.enroll.refused"))
			r := claimPost(t, url, tc.authz, tc.body)
			if r.status != tc.status || problemType(t, r) != tc.kind || r.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s %s, want %d %s", r.status, problemType(t, r), r.body, tc.status, tc.kind)
			}
			after := auditActions(e, tok, "claim.enroll.refused")
			if got := len(after) - before; got != map[bool]int{true: 1, false: 0}[tc.audit] {
				t.Fatalf("%d new refusal records, audit %v", got, tc.audit)
			}
			if r := e.call(tok, "GET", "/devices/meter-2", nil); r.status != 404 {
				t.Fatalf("a refused enrollment registered the device: %d", r.status)
			}
		})
	}
	if r := claimPost(t, url, bearer, claimBody(t, "meter-2", "em-400", "meter-2")); r.status != 201 {
		t.Fatalf("second enrollment: %d %s", r.status, r.body)
	}
	if r := claimPost(t, url, bearer, claimBody(t, "meter-3", "em-300", "meter-3")); r.status != 403 || problemType(t, r) != "enrollment/claim-exhausted" {
		t.Fatalf("beyond the maximum: %d %s", r.status, r.body)
	}
	if c := e.must(200, tok, "GET", "/claims/batch-7", nil); c["used"].(float64) != 2 {
		t.Fatalf("use count: %v", c)
	}
	ok := auditActions(e, tok, "claim.enroll")
	if len(ok) != 2 || ok[0]["actor"] != "claim:batch-7" || ok[0]["object_type"] != "device" {
		t.Fatalf("enrollment audit: %v", ok)
	}
	// The secret is shown once: neither the claim nor the audit log has it.
	for _, path := range []string{"/claims/batch-7", "/claims", "/audit"} {
		if r := e.call(tok, "GET", path, nil); bytes.Contains(r.body, []byte(secret)) || bytes.Contains(r.body, []byte(secret[4:])) {
			t.Fatalf("%s reveals the claim secret", path)
		}
	}
	// The claim token is no enrollment token.
	if r := enroll(t, data+"/.well-known/fleetgate/enroll", secret, csrPEM(t, "meter-9", nil)); r.status != 401 {
		t.Fatalf("claim token as enrollment token: %d %s", r.status, r.body)
	}

	// Revoked, then expired claims are refused as such.
	e.must(201, tok, "POST", "/claims", map[string]any{"name": "batch-8", "models": []string{"em-300"}, "max_devices": 5, "expires_in": "1h"})
	second := e.must(201, tok, "POST", "/claims", map[string]any{"name": "batch-9", "models": []string{"em-300"}, "max_devices": 5, "expires_in": "1h"})["secret"].(string)
	rv := e.must(200, tok, "POST", "/claims/batch-7/revoke", map[string]any{"reason": "batch shipped"})
	if rv["revoked_at"] == nil || rv["revoke_reason"] != "batch shipped" {
		t.Fatalf("revoke: %v", rv)
	}
	if r := claimPost(t, url, bearer, claimBody(t, "meter-3", "em-300", "meter-3")); r.status != 401 || problemType(t, r) != "enrollment/claim-revoked" {
		t.Fatalf("revoked claim: %d %s", r.status, r.body)
	}
	db := e.app.Store().(*sqlstore.DB)
	if _, err := db.SQL().Exec(`UPDATE claims SET expires_at = ? WHERE name = 'batch-9'`, time.Now().Add(-time.Second).UnixMicro()); err != nil {
		t.Fatal(err)
	}
	if r := claimPost(t, url, "Bearer "+second, claimBody(t, "meter-3", "em-300", "meter-3")); r.status != 401 || problemType(t, r) != "enrollment/claim-expired" {
		t.Fatalf("expired claim: %d %s", r.status, r.body)
	}
	if v := e.must(200, rootToken, "GET", "/audit/verify", nil, "Fleetgate-Tenant", "acme"); v["ok"] != true {
		t.Fatalf("audit chain: %v", v)
	}
}

// TestClaimParallelEnrollment fires more enrollments at once than the
// claim allows, over real sockets: exactly max_devices succeed.
func TestClaimParallelEnrollment(t *testing.T) {
	e, tok, data := claimEnv(t)
	secret := e.must(201, tok, "POST", "/claims", map[string]any{"name": "par", "models": []string{"m"}, "max_devices": 3, "expires_in": "1h"})["secret"].(string)
	const n = 10
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = claimBody(t, fmt.Sprintf("p-%d", i), "m", "")
	}
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(b []byte) {
			defer wg.Done()
			req, _ := http.NewRequest("POST", data+"/.well-known/fleetgate/claim", bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+secret)
			res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		}(bodies[i])
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[201] != 3 || count[403] != n-3 {
		t.Fatalf("statuses %v; want 3 x 201 and %d x 403", count, n-3)
	}
	devs := e.must(200, tok, "GET", "/devices", nil)["items"].([]any)
	if c := e.must(200, tok, "GET", "/claims/par", nil); c["used"].(float64) != 3 || len(devs) != 3 {
		t.Fatalf("used %v, %d devices", c["used"], len(devs))
	}
}

func TestClaimAdminValidation(t *testing.T) {
	e, tok, _ := claimEnv(t)
	aud := e.operator("acme", "audrey", "auditor")
	for _, tc := range []struct {
		name    string
		body    map[string]any
		pointer string
	}{
		{"no expiry", map[string]any{"name": "a", "models": []string{"m"}, "max_devices": 1}, "/expires_in"},
		{"too long", map[string]any{"name": "a", "models": []string{"m"}, "max_devices": 1, "expires_in": "9000h"}, "/expires_in"},
		{"both expiries", map[string]any{"name": "a", "models": []string{"m"}, "max_devices": 1, "expires_in": "1h", "expires_at": time.Now().Add(time.Hour)}, "/expires_at"},
		{"no models", map[string]any{"name": "a", "models": []string{}, "max_devices": 1, "expires_in": "1h"}, "/models"},
		{"model twice", map[string]any{"name": "a", "models": []string{"m", "m"}, "max_devices": 1, "expires_in": "1h"}, "/models/1"},
		{"zero devices", map[string]any{"name": "a", "models": []string{"m"}, "max_devices": 0, "expires_in": "1h"}, "/max_devices"},
		{"bad name", map[string]any{"name": "A B", "models": []string{"m"}, "max_devices": 1, "expires_in": "1h"}, "/name"},
		{"bad kind", map[string]any{"name": "a", "models": []string{"m"}, "max_devices": 1, "expires_in": "1h", "kind": "psk"}, "/kind"},
		{"CSR on a token claim", map[string]any{"name": "a", "models": []string{"m"}, "max_devices": 1, "expires_in": "1h", "csr": "x"}, "/csr"},
		{"bad CSR", map[string]any{"name": "a", "models": []string{"m"}, "max_devices": 1, "expires_in": "1h", "kind": "certificate", "csr": "x"}, "/csr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(tok, "POST", "/claims", tc.body)
			if r.status != 422 || !bytes.Contains(r.body, []byte(`"pointer":"`+tc.pointer+`"`)) {
				t.Fatalf("%d %s, want 422 at %s", r.status, r.body, tc.pointer)
			}
		})
	}
	body := map[string]any{"name": "batch", "models": []string{"m"}, "max_devices": 1, "expires_in": "1h"}
	e.must(403, aud, "POST", "/claims", body)
	e.must(201, tok, "POST", "/claims", body)
	e.must(409, tok, "POST", "/claims", body)
	e.must(403, aud, "POST", "/claims/batch/revoke", nil)
	e.must(404, tok, "POST", "/claims/nope/revoke", nil)
	if l := e.must(200, aud, "GET", "/claims", nil)["items"].([]any); len(l) != 1 {
		t.Fatalf("list: %v", l)
	}
	if recs := auditActions(e, tok, "claim.create"); len(recs) != 1 {
		t.Fatalf("claim.create audit: %v", recs)
	}
	// A certificate claim from a CSR: the CSR may not pick a device name.
	if r := e.call(tok, "POST", "/claims", map[string]any{"name": "c1", "models": []string{"m"}, "max_devices": 1, "expires_in": "1h",
		"kind": "certificate", "csr": string(csrPEM(t, "meter-1", nil))}); r.status != 422 || !strings.Contains(string(r.body), "identity-mismatch") {
		t.Fatalf("claim CSR naming a device: %d %s", r.status, r.body)
	}
	c := e.must(201, tok, "POST", "/claims", map[string]any{"name": "c2", "models": []string{"m"}, "max_devices": 1, "expires_in": "1h",
		"kind": "certificate", "csr": string(csrPEM(t, "", nil))})
	if c["certificate"] == nil || c["private_key"] != nil || c["claim"].(map[string]any)["fingerprint"] == "" {
		t.Fatalf("certificate claim from a CSR: %v", c)
	}
}

func TestExternalCAAdminAndFindings(t *testing.T) {
	e, tok, data := claimEnv(t)
	ops := e.operator("acme", "otto", "operator")
	good := pkitest.NewExternalCA(t, nil)
	proof := good.Verification(t, "acme")
	// A refused CA with a proof its own key signed: the CA is what is refused.
	badCA := func(mod func(*x509.Certificate)) []string {
		ca := pkitest.NewExternalCA(t, mod)
		return []string{ca.PEM, ca.Verification(t, "acme")}
	}
	endEntity := badCA(func(c *x509.Certificate) { c.IsCA = false })
	noSign := badCA(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature })
	expired := badCA(func(c *x509.Certificate) { c.NotAfter = time.Now().Add(-time.Minute) })
	cn := map[string]any{"source": "cn"}
	for _, tc := range []struct {
		name, cert, proof, want string
		mapping                 map[string]any
	}{
		{"end entity", endEntity[0], endEntity[1], "not-a-ca", cn},
		{"no keyCertSign", noSign[0], noSign[1], "not-a-ca", cn},
		{"expired", expired[0], expired[1], "expired", cn},
		{"not PEM", "hello", proof, "malformed-certificate", cn},
		{"bad mapping", good.PEM, proof, "invalid-mapping", map[string]any{"source": "san-uri"}},
		{"two placeholders", good.PEM, proof, "invalid-mapping", map[string]any{"source": "san-dns", "pattern": "{device}.{device}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(tok, "POST", "/ca/external", map[string]any{"name": "f", "certificate": tc.cert, "verification_certificate": tc.proof, "mapping": tc.mapping})
			if r.status != 422 || problemType(t, r) != "external-ca-invalid" || !strings.Contains(string(r.body), tc.want) {
				t.Fatalf("%d %s, want 422 %s", r.status, r.body, tc.want)
			}
		})
	}
	body := map[string]any{"name": "factory", "certificate": good.PEM, "verification_certificate": proof,
		"mapping": map[string]any{"source": "san-uri", "pattern": "spiffe://acme/device/{device}"}}
	e.must(403, ops, "POST", "/ca/external", body)
	e.must(201, tok, "POST", "/ca/external", body)
	body["name"] = "again"
	e.must(409, tok, "POST", "/ca/external", body)
	soon := pkitest.NewExternalCA(t, func(c *x509.Certificate) { c.NotAfter = time.Now().Add(10 * 24 * time.Hour) })
	e.must(201, tok, "POST", "/ca/external", map[string]any{"name": "old", "certificate": soon.PEM, "verification_certificate": soon.Verification(t, "acme"), "mapping": cn})
	if l := e.must(200, ops, "GET", "/ca/external", nil)["items"].([]any); len(l) != 2 {
		t.Fatalf("list: %v", l)
	}

	// Findings: a claim at 90%, an exhausted unrevoked claim, an expiring CA.
	sec := e.must(201, tok, "POST", "/claims", map[string]any{"name": "full", "models": []string{"m"}, "max_devices": 1, "expires_in": "1h"})["secret"].(string)
	e.must(201, tok, "POST", "/claims", map[string]any{"name": "idle", "models": []string{"m"}, "max_devices": 50, "expires_in": "1h"})
	if r := claimPost(t, data+"/.well-known/fleetgate/claim", "Bearer "+sec, claimBody(t, "f-1", "m", "")); r.status != 201 {
		t.Fatalf("enroll: %d %s", r.status, r.body)
	}
	fs := e.must(200, tok, "GET", "/security/findings", nil)["findings"].([]any)
	got := map[string]string{}
	for _, f := range fs {
		m := f.(map[string]any)
		got[m["id"].(string)] = fmt.Sprint(m["objects"])
	}
	if !strings.Contains(got["claim-unrevoked"], "claim:full") || !strings.Contains(got["external-ca-expiring"], "external_ca:old") ||
		strings.Contains(got["external-ca-expiring"], "factory") || strings.Contains(got["claim-near-exhaustion"], "idle") {
		t.Fatalf("findings: %v", got)
	}
	e.must(204, tok, "DELETE", "/ca/external/old", nil)
	e.must(404, tok, "DELETE", "/ca/external/old", nil)
	if recs := auditActions(e, tok, "external_ca.delete"); len(recs) != 1 {
		t.Fatalf("delete audit: %v", recs)
	}
	if recs := auditActions(e, tok, "external_ca.create"); len(recs) != 2 {
		t.Fatalf("create audit: %v", recs)
	}
}
