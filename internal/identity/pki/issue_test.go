package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestIssueEveryKeyType(t *testing.T) {
	leafKinds := []string{"p256", "p384", "ed25519", "rsa2048"}
	for _, kt := range allKeyTypes {
		for _, lk := range leafKinds {
			t.Run(string(kt)+"/"+lk, func(t *testing.T) {
				ca := testCA(t, testTenant, kt)
				id := DeviceIdentity{Tenant: testTenant, DeviceID: "aa:bb:cc:00:11:22"}
				csr := mustParseCSR(t, csrDER(t, testKey(t, lk), id.DeviceID))
				cert, certPEM, err := ca.Issue(csr, id, IssueOptions{Now: testNow})
				if err != nil {
					t.Fatalf("Issue: %v", err)
				}
				block, _ := pem.Decode(certPEM)
				if block == nil || !bytes.Equal(block.Bytes, cert.Raw) {
					t.Fatal("PEM does not hold the returned certificate")
				}
				chains, err := cert.Verify(x509.VerifyOptions{
					Roots:       pool(ca.Cert),
					CurrentTime: testNow,
					KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
				})
				if err != nil || len(chains) != 1 || len(chains[0]) != 2 {
					t.Fatalf("Verify: chains=%d err=%v", len(chains), err)
				}
				// Client auth only: a device certificate must not serve TLS.
				if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(ca.Cert), CurrentTime: testNow}); err == nil {
					t.Error("certificate verifies for server auth")
				}
				checkLeaf(t, ca, cert, id, lk == "rsa2048")
			})
		}
	}
}

func checkLeaf(t *testing.T, ca *CA, cert *x509.Certificate, id DeviceIdentity, rsaKey bool) {
	t.Helper()
	if cert.Subject.CommonName != id.DeviceID {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
	if len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != id.Tenant {
		t.Errorf("O = %q", cert.Subject.Organization)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "urn:fleetgate:"+id.Tenant+":device:"+id.DeviceID {
		t.Errorf("URIs = %v", cert.URIs)
	}
	if len(cert.DNSNames)+len(cert.EmailAddresses)+len(cert.IPAddresses) != 0 {
		t.Errorf("unexpected SANs: %v %v %v", cert.DNSNames, cert.EmailAddresses, cert.IPAddresses)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || len(cert.UnknownExtKeyUsage) != 0 {
		t.Errorf("ExtKeyUsage = %v %v", cert.ExtKeyUsage, cert.UnknownExtKeyUsage)
	}
	wantKU := x509.KeyUsageDigitalSignature
	if rsaKey {
		wantKU |= x509.KeyUsageKeyEncipherment
	}
	if cert.KeyUsage != wantKU {
		t.Errorf("KeyUsage = %b, want %b", cert.KeyUsage, wantKU)
	}
	if !cert.BasicConstraintsValid || cert.IsCA {
		t.Error("leaf is not marked cA=false")
	}
	if !bytes.Equal(cert.AuthorityKeyId, ca.Cert.SubjectKeyId) || len(cert.SubjectKeyId) != 20 {
		t.Errorf("AKID=%x (CA SKID %x) SKID=%x", cert.AuthorityKeyId, ca.Cert.SubjectKeyId, cert.SubjectKeyId)
	}
	if n := cert.SerialNumber.BitLen(); n == 0 || n > 128 {
		t.Errorf("serial has %d bits", n)
	}
	got, err := IdentityOf(cert)
	if err != nil || got != id {
		t.Errorf("IdentityOf = %+v, %v", got, err)
	}
}

func TestIssueSerialsDiffer(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	a, b := issueFor(t, ca, "d1"), issueFor(t, ca, "d1")
	if a.SerialNumber.Cmp(b.SerialNumber) == 0 {
		t.Fatal("two issuances share a serial")
	}
}

func TestIssueValidity(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	csr := mustParseCSR(t, csrDER(t, testKey(t, "p256"), ""))
	id := DeviceIdentity{testTenant, "d"}
	tests := []struct {
		name          string
		opts          IssueOptions
		wantNotBefore time.Time
		wantNotAfter  time.Time
	}{
		{"default", IssueOptions{Now: testNow}, testNow.Add(-backdate), testNow.Add(-backdate + DefaultLeafValidity)},
		{"one day", IssueOptions{Now: testNow, Validity: 24 * time.Hour}, testNow.Add(-backdate), testNow.Add(-backdate + 24*time.Hour)},
		{"clamped to CA expiry", IssueOptions{Now: ca.Cert.NotAfter.Add(-time.Hour), Validity: MaxLeafValidity}, ca.Cert.NotAfter.Add(-time.Hour - backdate), ca.Cert.NotAfter},
		{"not before the CA", IssueOptions{Now: ca.Cert.NotBefore.Add(time.Second)}, ca.Cert.NotBefore, ca.Cert.NotBefore.Add(DefaultLeafValidity)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, _, err := ca.Issue(csr, id, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !cert.NotBefore.Equal(tt.wantNotBefore) || !cert.NotAfter.Equal(tt.wantNotAfter) {
				t.Fatalf("validity %v..%v, want %v..%v", cert.NotBefore, cert.NotAfter, tt.wantNotBefore, tt.wantNotAfter)
			}
		})
	}
}

func TestIssueRefuses(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	key := testKey(t, "p256")
	good := DeviceIdentity{testTenant, "dev-1"}
	csrFor := func(cn string, uris ...string) []byte { return csrDER(t, key, cn, uris...) }
	badSig := func() []byte {
		der := csrFor("dev-1")
		der[len(der)-3] ^= 0xff
		return der
	}()
	tests := []struct {
		name string
		csr  []byte // parsed with x509 directly, so Issue's own checks run
		id   DeviceIdentity
		opts IssueOptions
		code string
	}{
		{"CN names another device", csrFor("dev-2"), good, IssueOptions{Now: testNow}, CodeIdentityMismatch},
		{"URN names another device", csrFor("", "urn:fleetgate:acme:device:dev-2"), good, IssueOptions{Now: testNow}, CodeIdentityMismatch},
		{"URN names another tenant", csrFor("dev-1", "urn:fleetgate:globex:device:dev-1"), good, IssueOptions{Now: testNow}, CodeIdentityMismatch},
		{"URN in other case", csrFor("", "URN:FleetGate:acme:device:dev-2"), good, IssueOptions{Now: testNow}, CodeIdentityMismatch},
		{"malformed fleetgate URN", csrFor("", "urn:fleetgate:acme"), good, IssueOptions{Now: testNow}, CodeIdentityMismatch},
		{"second URN names another device", csrFor("", "urn:fleetgate:acme:device:dev-1", "urn:fleetgate:acme:device:dev-2"), good, IssueOptions{Now: testNow}, CodeIdentityMismatch},
		{"identity of another tenant", csrFor("dev-1"), DeviceIdentity{"globex", "dev-1"}, IssueOptions{Now: testNow}, CodeIdentityMismatch},
		{"invalid device id", csrFor(""), DeviceIdentity{testTenant, "dev/1"}, IssueOptions{Now: testNow}, CodeInvalidIdentity},
		{"device id too long", csrFor(""), DeviceIdentity{testTenant, strings.Repeat("d", 65)}, IssueOptions{Now: testNow}, CodeInvalidIdentity},
		{"empty device id", csrFor(""), DeviceIdentity{testTenant, ""}, IssueOptions{Now: testNow}, CodeInvalidIdentity},
		{"validity too long", csrFor(""), good, IssueOptions{Now: testNow, Validity: MaxLeafValidity + time.Second}, CodeInvalidValidity},
		{"negative validity", csrFor(""), good, IssueOptions{Now: testNow, Validity: -time.Hour}, CodeInvalidValidity},
		{"no clock", csrFor(""), good, IssueOptions{}, CodeInvalidValidity},
		{"CA expired", csrFor(""), good, IssueOptions{Now: ca.Cert.NotAfter}, CodeInvalidValidity},
		{"CA not yet valid", csrFor(""), good, IssueOptions{Now: ca.Cert.NotBefore.Add(-time.Second)}, CodeInvalidValidity},
		{"bad signature", badSig, good, IssueOptions{Now: testNow}, CodeBadSignature},
		{"weak key", csrDER(t, testKey(t, "rsa1024"), ""), good, IssueOptions{Now: testNow}, CodeUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, err := x509.ParseCertificateRequest(tt.csr)
			if err != nil {
				t.Fatal(err)
			}
			cert, p, err := ca.Issue(csr, tt.id, tt.opts)
			if cert != nil || p != nil {
				t.Fatal("Issue returned a certificate")
			}
			wantCode(t, err, tt.code)
		})
	}
	if _, _, err := ca.Issue(nil, good, IssueOptions{Now: testNow}); err == nil {
		t.Error("Issue(nil) succeeded")
	}
}

// The CA decides the identity: whatever else the CSR asks for is dropped.
func TestIssueIgnoresRequestedNames(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	tmpl := &x509.CertificateRequest{
		DNSNames:       []string{"evil.example"},
		EmailAddresses: []string{"root@example.com"},
		URIs:           []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/admin"}, {Scheme: "urn", Opaque: "fleetgate:acme:device:dev-1"}},
	}
	tmpl.Subject.CommonName = "dev-1"
	tmpl.Subject.Organization = []string{"Globex"}
	der, err := x509.CreateCertificateRequest(nil, tmpl, testKey(t, "p256"))
	if err != nil {
		t.Fatal(err)
	}
	id := DeviceIdentity{testTenant, "dev-1"}
	cert, _, err := ca.Issue(mustParseCSR(t, der), id, IssueOptions{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	checkLeaf(t, ca, cert, id, false)
}

func TestParseCSR(t *testing.T) {
	p256 := csrDER(t, testKey(t, "p256"), "dev-1")
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	tests := []struct {
		name string
		in   []byte
		code string // "" means accepted
	}{
		{"DER", p256, ""},
		{"PEM", pemOf("CERTIFICATE REQUEST", p256), ""},
		{"legacy PEM type", pemOf("NEW CERTIFICATE REQUEST", p256), ""},
		{"PEM with leading blank line", append([]byte("\n"), pemOf("CERTIFICATE REQUEST", p256)...), ""},
		{"P-384", csrDER(t, testKey(t, "p384"), ""), ""},
		{"Ed25519", csrDER(t, testKey(t, "ed25519"), ""), ""},
		{"RSA-2048", csrDER(t, testKey(t, "rsa2048"), ""), ""},
		{"RSA-1024", csrDER(t, testKey(t, "rsa1024"), ""), CodeUnsupportedKey},
		{"P-224", csrDER(t, testKey(t, "p224"), ""), CodeUnsupportedKey},
		{"P-521", csrDER(t, testKey(t, "p521"), ""), CodeUnsupportedKey},
		{"X25519", withSPKI(t, p256, x25519SPKI(t)), CodeUnsupportedKey},
		{"DSA", withSPKI(t, p256, dsaSPKI(t)), CodeUnsupportedKey},
		{"unknown algorithm", withSPKI(t, p256, unknownSPKI(t)), CodeUnsupportedKey},
		{"key swapped after signing", withSPKI(t, p256, mustSPKI(t, csrDER(t, testKey(t, "p384"), ""))), CodeBadSignature},
		{"garbage", []byte("this is not a certificate request"), CodeMalformedCSR},
		{"empty", nil, CodeMalformedCSR},
		{"truncated", p256[:len(p256)-10], CodeMalformedCSR},
		{"trailing data", append(bytes.Clone(p256), 0), CodeMalformedCSR},
		{"PEM of a certificate", pemOf("CERTIFICATE", p256), CodeMalformedCSR},
		{"PEM then junk", append(pemOf("CERTIFICATE REQUEST", p256), "junk"...), CodeMalformedCSR},
		{"broken PEM", []byte("-----BEGIN CERTIFICATE REQUEST-----\n!!!\n"), CodeMalformedCSR},
		{"too large", bytes.Repeat([]byte{0x30}, MaxCSRSize+1), CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, err := ParseCSR(tt.in)
			if tt.code == "" {
				if err != nil || csr == nil {
					t.Fatalf("ParseCSR: %v", err)
				}
				return
			}
			if csr != nil {
				t.Fatal("ParseCSR returned a request")
			}
			wantCode(t, err, tt.code)
		})
	}
}

// mustSPKI returns the SubjectPublicKeyInfo of a DER CSR.
func mustSPKI(t *testing.T, der []byte) []byte {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr.RawSubjectPublicKeyInfo
}

func TestIdentityOf(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	issued := issueFor(t, ca, "dev-1")
	withURIs := func(uris ...string) *x509.Certificate {
		c := &x509.Certificate{}
		for _, s := range uris {
			u, err := url.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			c.URIs = append(c.URIs, u)
		}
		return c
	}
	tests := []struct {
		name    string
		cert    *x509.Certificate
		want    DeviceIdentity
		wantErr bool
	}{
		{"issued", issued, DeviceIdentity{testTenant, "dev-1"}, false},
		{"colons in device id", withURIs("urn:fleetgate:acme:device:aa:bb:cc"), DeviceIdentity{testTenant, "aa:bb:cc"}, false},
		{"other URIs ignored", withURIs("spiffe://x/y", "urn:isbn:123", "urn:fleetgate:acme:device:d"), DeviceIdentity{testTenant, "d"}, false},
		{"namespace case-insensitive", withURIs("URN:FLEETGATE:acme:device:d"), DeviceIdentity{testTenant, "d"}, false},
		{"nil", nil, DeviceIdentity{}, true},
		{"no URN", withURIs("spiffe://acme/dev-1"), DeviceIdentity{}, true},
		{"two URNs", withURIs("urn:fleetgate:acme:device:a", "urn:fleetgate:acme:device:b"), DeviceIdentity{}, true},
		{"no device part", withURIs("urn:fleetgate:acme"), DeviceIdentity{}, true},
		{"not a device", withURIs("urn:fleetgate:acme:user:bob"), DeviceIdentity{}, true},
		{"empty device id", withURIs("urn:fleetgate:acme:device:"), DeviceIdentity{}, true},
		{"empty tenant", withURIs("urn:fleetgate::device:d"), DeviceIdentity{}, true},
		{"query", withURIs("urn:fleetgate:acme:device:d?x=1"), DeviceIdentity{}, true},
		{"fragment", withURIs("urn:fleetgate:acme:device:d#f"), DeviceIdentity{}, true},
		{"percent-encoded", withURIs("urn:fleetgate:acme:device:d%2Fe"), DeviceIdentity{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := IdentityOf(tt.cert)
			if tt.wantErr {
				wantCode(t, err, CodeInvalidIdentity)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("IdentityOf = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	cert := issueFor(t, testCA(t, testTenant, KeyECDSAP256), "dev-1")
	sum := sha256.Sum256(cert.Raw)
	got := Fingerprint(cert)
	if got != hex.EncodeToString(sum[:]) || got != strings.ToLower(got) || len(got) != 64 {
		t.Fatalf("Fingerprint = %q", got)
	}
}
