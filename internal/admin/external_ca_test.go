package admin_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/pki/pkitest"
)

// TestExternalCARegistrationCode: every role of a tenant reads its code;
// a system operator reads another tenant's with Fleetgate-Tenant.
func TestExternalCARegistrationCode(t *testing.T) {
	e := newEnv(t)
	admin := e.tenantWithAdmin("acme", "ada", "admin")
	aud := e.operator("acme", "audrey", "auditor")
	e.tenantWithAdmin("globex", "gil", "admin")
	for _, tc := range []struct {
		name, token, want string
		hdr               []string
	}{
		{"admin", admin, "fleetgate-ca-verification:acme", nil},
		{"auditor", aud, "fleetgate-ca-verification:acme", nil},
		{"system operator for globex", rootToken, "fleetgate-ca-verification:globex", []string{"Fleetgate-Tenant", "globex"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.must(200, tc.token, "GET", "/ca/external/registration-code", nil, tc.hdr...)
			if len(got) != 1 || got["registration_code"] != tc.want {
				t.Fatalf("registration code: %v, want %s", got, tc.want)
			}
		})
	}
	e.must(401, "", "GET", "/ca/external/registration-code", nil)
	e.must(403, admin, "GET", "/ca/external/registration-code", nil, "Fleetgate-Tenant", "globex")
}

// TestExternalCAProofOfPossession: registering an external CA needs a
// certificate its key signed for the tenant's registration code. Every
// refusal is a 422 at /verification_certificate that stores and audits
// nothing; another tenant cannot reuse the proof, but registers the same
// CA with its own. On both store backends.
func TestExternalCAProofOfPossession(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { externalCAProofOfPossession(t, newEnvOn(t, backend)) })
	}
}

func externalCAProofOfPossession(t *testing.T, e *env) {
	acme := e.tenantWithAdmin("acme", "ada", "admin")
	globex := e.tenantWithAdmin("globex", "gil", "admin")
	ca, other := pkitest.NewExternalCA(t, nil), pkitest.NewExternalCA(t, nil)
	code := "fleetgate-ca-verification:acme"
	good := ca.Verification(t, "acme")
	keyPEM := func() string {
		der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}()
	body := func(proof any) map[string]any {
		b := map[string]any{"name": "factory", "certificate": ca.PEM, "mapping": map[string]any{"source": "cn"}}
		if proof != nil {
			b["verification_certificate"] = proof
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		proof  any // nil: field absent
		detail string
	}{
		{"absent", nil, "missing"},
		{"empty", "", "missing"},
		{"garbage", "hello", "not a PEM certificate"},
		{"the CA key instead", keyPEM, "private key"},
		{"two certificates", good + good, "exactly one"},
		{"signed by another CA", other.Verification(t, "acme"), "not signed by this CA"},
		{"the CA certificate itself", ca.PEM, "common name must be the registration code " + code},
		{"another tenant's code", ca.Verification(t, "globex"), "common name must be the registration code " + code},
		{"no common name", ca.VerificationWith(t, nil), "common name must be the registration code " + code},
		{"expired", ca.VerificationWith(t, func(c *x509.Certificate) {
			c.Subject.CommonName, c.NotBefore, c.NotAfter = code, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
		}), "expired or not yet valid"},
		{"not yet valid", ca.VerificationWith(t, func(c *x509.Certificate) {
			c.Subject.CommonName, c.NotBefore = code, time.Now().Add(time.Hour)
		}), "expired or not yet valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(acme, "POST", "/ca/external", body(tc.proof))
			if r.status != 422 || problemType(t, r) != "external-ca-invalid" {
				t.Fatalf("%d %s, want 422 external-ca-invalid", r.status, r.body)
			}
			var p struct {
				Errors []struct{ Pointer, Detail string }
			}
			if err := json.Unmarshal(r.body, &p); err != nil || len(p.Errors) != 1 || p.Errors[0].Pointer != "/verification_certificate" ||
				!strings.Contains(p.Errors[0].Detail, tc.detail) {
				t.Fatalf("errors %+v, want one at /verification_certificate with %q", p.Errors, tc.detail)
			}
		})
	}
	if l := e.must(200, acme, "GET", "/ca/external", nil)["items"].([]any); len(l) != 0 {
		t.Fatalf("refused CAs stored: %v", l)
	}
	if recs := auditActions(e, acme, "external_ca.create"); len(recs) != 0 {
		t.Fatalf("refused CAs audited: %v", recs)
	}

	// The name of the registration-code route is not a CA name.
	reserved := body(good)
	reserved["name"] = "registration-code"
	if r := e.call(acme, "POST", "/ca/external", reserved); r.status != 422 || !strings.Contains(string(r.body), `"pointer":"/name"`) {
		t.Fatalf("reserved name: %d %s", r.status, r.body)
	}

	e.must(201, acme, "POST", "/ca/external", body(good))
	recs := auditActions(e, acme, "external_ca.create")
	block, _ := pem.Decode([]byte(good))
	sum := sha256.Sum256(block.Bytes)
	if len(recs) != 1 || !strings.Contains(fmt.Sprint(recs[0]["detail"]), hex.EncodeToString(sum[:])) {
		t.Fatalf("create audit without the proof's fingerprint: %v", recs)
	}

	// globex knows acme's proof (and the CA certificate): that is not
	// possession of the key.
	if r := e.call(globex, "POST", "/ca/external", body(good)); r.status != 422 || !strings.Contains(string(r.body), "registration code fleetgate-ca-verification:globex") {
		t.Fatalf("tenant reusing another tenant's proof: %d %s", r.status, r.body)
	}
	if l := e.must(200, globex, "GET", "/ca/external", nil)["items"].([]any); len(l) != 0 {
		t.Fatalf("CA registered with another tenant's proof: %v", l)
	}
	// The key holder proves it for globex too.
	e.must(201, globex, "POST", "/ca/external", body(ca.Verification(t, "globex")))
}
