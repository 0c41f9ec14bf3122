package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/admin"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// deviceEnv serves a second admin server over the test node's store, with
// a KEK set and the enrollment handler mounted at /enroll, until the
// composition root does both itself.
func deviceEnv(t *testing.T) (*env, string) {
	e := newEnv(t)
	srv := admin.New(admin.Options{Store: e.app.Store()})
	srv.SetDeviceOptions(admin.DeviceOptions{KEK: make([]byte, 32)})
	mux := http.NewServeMux()
	mux.Handle(admin.Prefix+"/", srv)
	mux.Handle("/enroll", srv.EnrollHandler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	// The node's own server has no KEK: CA creation is refused, not done
	// with a key stored in clear.
	e.must(503, rootToken, "POST", "/ca", map[string]any{})
	e2 := *e
	e2.url = ts.URL
	return &e2, ts.URL + "/enroll"
}

func csrPEM(t *testing.T, cn string, key any) []byte {
	t.Helper()
	if key == nil {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		key = k
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func enroll(t *testing.T, url, secret string, body []byte) resp {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(string(body)))
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func TestDeviceEnrollment(t *testing.T) {
	e, enrollURL := deviceEnv(t)
	tok := e.tenantWithAdmin("acme", "ada", "admin")
	ops := e.operator("acme", "otto", "operator")
	e.must(201, tok, "POST", "/devices", map[string]any{"id": "d1"})
	e.must(201, tok, "POST", "/devices", map[string]any{"id": "d2", "status": "suspended"})
	newToken := func(dev string) string {
		return e.must(201, ops, "POST", "/devices/"+dev+"/enrollment-tokens", map[string]any{"expires_in": "1h"})["secret"].(string)
	}

	// Before the CA exists, enrollment is refused (and audited).
	secret := newToken("d1")
	if r := enroll(t, enrollURL, secret, csrPEM(t, "d1", nil)); r.status != 409 || !strings.Contains(string(r.body), "no-ca") {
		t.Fatalf("enroll without CA: %d %s", r.status, r.body)
	}
	e.must(403, ops, "POST", "/ca", map[string]any{}) // admins only
	e.must(422, tok, "POST", "/ca", map[string]any{"key_type": "rsa-1024"})
	ca := e.must(201, tok, "POST", "/ca", map[string]any{"key_type": "ecdsa-p256"})
	e.must(409, tok, "POST", "/ca", map[string]any{})
	r := e.call(ops, "GET", "/ca", nil)
	if r.status != 200 || string(r.body) != ca["certificate"] {
		t.Fatalf("GET /ca: %d %s", r.status, r.body)
	}
	block, _ := pem.Decode(r.body)
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	expired := "fge_" + strings.Repeat("E", 43)
	if err := e.app.Store().Update(context.Background(), func(tx store.Tx) error {
		h := sha256.Sum256([]byte(expired))
		return tx.CreateEnrollmentToken(&model.EnrollmentToken{ID: "expired", TenantID: "acme", DeviceID: "d1", Hash: h[:],
			ExpiresAt: time.Now().Add(-time.Minute), CreatedAt: time.Now().Add(-time.Hour)})
	}); err != nil {
		t.Fatal(err)
	}
	refusals := []struct {
		name, secret string
		body         []byte
		status       int
		kind         string
	}{
		{"no token", "", csrPEM(t, "d1", nil), 401, "enrollment/no-token"},
		{"unknown token", "fge_" + strings.Repeat("x", 43), csrPEM(t, "d1", nil), 401, "enrollment/invalid-token"},
		{"expired token", expired, csrPEM(t, "d1", nil), 401, "enrollment/token-expired"},
		{"suspended device", newToken("d2"), csrPEM(t, "d2", nil), 403, "enrollment/device-status"},
		{"CSR naming another device", secret, csrPEM(t, "d2", nil), 403, "enrollment/identity-mismatch"},
		{"weak key", secret, csrPEM(t, "d1", rsa1024), 422, "enrollment/unsupported-key"},
		{"not a CSR", secret, []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), 400, "enrollment/malformed-csr"},
		{"empty body", secret, nil, 400, "enrollment/malformed-csr"},
		{"oversized body", secret, []byte(strings.Repeat("A", pki.MaxESTRequestSize+1)), 413, "too-large"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			r := enroll(t, enrollURL, tc.secret, tc.body)
			if r.status != tc.status || !strings.Contains(string(r.body), admin.ProblemBase+tc.kind+`"`) {
				t.Fatalf("status %d, want %d %s: %s", r.status, tc.status, tc.kind, r.body)
			}
		})
	}
	// A refusal consumes nothing: the same token then enrolls.
	r = enroll(t, enrollURL, secret, csrPEM(t, "d1", nil))
	if r.status != 201 {
		t.Fatalf("enroll: %d %s", r.status, r.body)
	}
	out := r.json(t)
	block, _ = pem.Decode([]byte(out["certificate"].(string)))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("issued certificate does not verify: %v", err)
	}
	if id, err := pki.IdentityOf(cert); err != nil || id.Tenant != "acme" || id.DeviceID != "d1" {
		t.Fatalf("identity %+v %v", id, err)
	}
	if d := e.must(200, ops, "GET", "/devices/d1", nil); d["status"] != "active" || d["first_seen"] == nil {
		t.Fatalf("device after enrollment: %v", d)
	}
	// Replay: refused, audited, nothing issued.
	if r := enroll(t, enrollURL, secret, csrPEM(t, "d1", nil)); r.status != 401 || !strings.Contains(string(r.body), "token-used") {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	creds := e.must(200, ops, "GET", "/devices/d1/credentials", nil)["items"].([]any)
	if len(creds) != 1 || creds[0].(map[string]any)["fingerprint"] != pki.Fingerprint(cert) {
		t.Fatalf("credentials: %v", creds)
	}
	refused := e.must(200, tok, "GET", "/audit?action=device.enroll.refused", nil)["items"].([]any)
	// no-ca, expired, suspended, mismatch, weak key, not a CSR, empty, replay;
	// unknown, missing and oversized requests name no tenant or are cut first.
	if len(refused) != 8 {
		t.Fatalf("%d refusal records, want 8: %s", len(refused), mustJSON(t, refused))
	}
	if n := len(e.must(200, tok, "GET", "/audit?action=device.enroll", nil)["items"].([]any)); n != 1 {
		t.Fatalf("%d enroll records", n)
	}

	// Revocation lands on the CRL.
	credID := creds[0].(map[string]any)["id"].(string)
	e.must(422, ops, "POST", "/devices/d1/credentials/"+credID+"/revoke", map[string]any{"reason": "stolen"})
	e.must(404, ops, "POST", "/devices/d2/credentials/"+credID+"/revoke", map[string]any{})
	rev := e.must(200, ops, "POST", "/devices/d1/credentials/"+credID+"/revoke", map[string]any{"reason": "keyCompromise"})
	if rev["revoked_at"] == nil {
		t.Fatalf("revoke: %v", rev)
	}
	r = e.call(ops, "GET", "/ca/crl", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("CRL: %d %s", r.status, r.body)
	}
	crl, err := x509.ParseRevocationList(r.body)
	if err != nil || crl.CheckSignatureFrom(caCert) != nil {
		t.Fatalf("CRL: %v", err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(cert.SerialNumber) != 0 ||
		crl.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Fatalf("CRL entries: %+v", crl.RevokedCertificateEntries)
	}
}
