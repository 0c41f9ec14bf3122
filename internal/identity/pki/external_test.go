package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"
)

// extCert signs tmpl with signer (self-signed when parent is nil) and
// returns the PEM.
func extCert(tb testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, []byte) {
	tb.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		tb.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func caTmpl(mod func(*x509.Certificate)) *x509.Certificate {
	t := &x509.Certificate{Subject: pkix.Name{CommonName: "Factory CA"}, NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(365 * 24 * time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	if mod != nil {
		mod(t)
	}
	return t
}

func TestParseExternalCA(t *testing.T) {
	p256, rsa1024, p224 := testKey(t, "p256"), testKey(t, "rsa1024"), testKey(t, "p224")
	_, good := extCert(t, caTmpl(nil), nil, p256.Public(), p256)
	_, leaf := extCert(t, caTmpl(func(c *x509.Certificate) { c.IsCA = false; c.KeyUsage = x509.KeyUsageDigitalSignature }), nil, p256.Public(), p256)
	_, noSign := extCert(t, caTmpl(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCRLSign }), nil, p256.Public(), p256)
	_, weakRSA := extCert(t, caTmpl(nil), nil, rsa1024.Public(), rsa1024)
	_, weakEC := extCert(t, caTmpl(nil), nil, p224.Public(), p224)
	_, expired := extCert(t, caTmpl(func(c *x509.Certificate) { c.NotAfter = testNow.Add(-time.Minute) }), nil, p256.Public(), p256)
	for _, tc := range []struct {
		name string
		in   []byte
		code string
	}{
		{"valid CA", good, ""},
		{"trailing whitespace", append(append([]byte("\n"), good...), "\n\n"...), ""},
		{"end entity", leaf, CodeNotCA},
		{"no keyCertSign", noSign, CodeNotCA},
		{"RSA-1024", weakRSA, CodeWeakKey},
		{"P-224", weakEC, CodeWeakKey},
		{"expired", expired, CodeExpired},
		{"two certificates", append(append([]byte{}, good...), good...), CodeMalformedCertificate},
		{"not PEM", []byte("hello"), CodeMalformedCertificate},
		{"CSR block", []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), CodeMalformedCertificate},
		{"garbage DER", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), CodeMalformedCertificate},
		{"oversized", []byte(strings.Repeat("A", MaxExternalCASize+1)), CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseExternalCA(tc.in, testNow)
			if tc.code == "" {
				if err != nil || c == nil || !c.IsCA {
					t.Fatalf("ParseExternalCA = %v, %v", c, err)
				}
				return
			}
			wantCode(t, err, tc.code)
		})
	}
}

func TestMapping(t *testing.T) {
	p256 := testKey(t, "p256")
	uri := func(s string) *url.URL { u, _ := url.Parse(s); return u }
	leaf := func(cn string, dns []string, uris ...string) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: dns, NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}
		for _, u := range uris {
			tmpl.URIs = append(tmpl.URIs, uri(u))
		}
		c, _ := extCert(t, tmpl, nil, p256.Public(), p256)
		return c
	}
	for _, tc := range []struct {
		name, source, pattern string
		cert                  *x509.Certificate
		want                  string // "" = refused
		badRule               bool
	}{
		{"cn whole", "cn", "", leaf("meter-17", nil), "meter-17", false},
		{"cn with prefix", "cn", "dev-{device}", leaf("dev-meter-17", nil), "meter-17", false},
		{"cn prefix missing", "cn", "dev-{device}", leaf("meter-17", nil), "", false},
		{"cn invalid id", "cn", "", leaf("meter 17", nil), "", false},
		{"cn empty", "cn", "", leaf("", nil), "", false},
		{"uri", "san-uri", "spiffe://acme.example/device/{device}", leaf("x", nil, "spiffe://acme.example/device/m-1"), "m-1", false},
		{"uri among others", "san-uri", "spiffe://acme.example/device/{device}", leaf("x", nil, "https://acme.example/", "spiffe://acme.example/device/m-1"), "m-1", false},
		{"uri ambiguous", "san-uri", "spiffe://acme.example/device/{device}", leaf("x", nil, "spiffe://acme.example/device/m-1", "spiffe://acme.example/device/m-2"), "", false},
		{"uri other trust domain", "san-uri", "spiffe://acme.example/device/{device}", leaf("x", nil, "spiffe://evil.example/device/m-1"), "", false},
		{"uri path escape", "san-uri", "spiffe://acme.example/device/{device}", leaf("x", nil, "spiffe://acme.example/device/a/b"), "", false},
		{"dns suffix", "san-dns", "{device}.devices.acme.example", leaf("x", []string{"M-1.Devices.Acme.Example"}), "m-1", false},
		{"dns wrong suffix", "san-dns", "{device}.devices.acme.example", leaf("x", []string{"m-1.devices.acme.example.evil"}), "", false},
		{"dns subdomain", "san-dns", "{device}.devices.acme.example", leaf("x", []string{"a.b.devices.acme.example"}), "a.b", false},
		{"bad source", "email", "{device}", nil, "", true},
		{"no placeholder", "san-uri", "spiffe://x/", nil, "", true},
		{"two placeholders", "cn", "{device}{device}", nil, "", true},
		{"san without pattern", "san-dns", "", nil, "", true},
		{"space in pattern", "cn", "a {device}", nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMapping(tc.source, tc.pattern)
			if tc.badRule {
				wantCode(t, err, CodeInvalidMapping)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.DeviceID(tc.cert)
			if tc.want == "" {
				wantCode(t, err, CodeInvalidIdentity)
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("DeviceID = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestIssueClaim(t *testing.T) {
	ca := testCA(t, "acme", KeyECDSAP256)
	id := ClaimIdentity{Tenant: "acme", ClaimID: "0190-batch"}
	key := testKey(t, "p256")
	cert, _, err := ca.IssueClaim(mustParseCSR(t, csrDER(t, key, "")), id, IssueOptions{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ClaimOf(cert); err != nil || got != id {
		t.Fatalf("ClaimOf = %v, %v", got, err)
	}
	// A claim certificate is no device certificate.
	if _, err := IdentityOf(cert); err == nil {
		t.Fatal("IdentityOf accepted a claim certificate")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(ca.Cert), CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("claim certificate does not chain to the CA: %v", err)
	}
	// A device certificate is no claim certificate.
	if _, err := ClaimOf(issueFor(t, ca, "meter-1")); err == nil {
		t.Fatal("ClaimOf accepted a device certificate")
	}
	for _, tc := range []struct {
		name string
		csr  []byte
		id   ClaimIdentity
		code string
	}{
		{"CSR names a device", csrDER(t, key, "meter-1"), id, CodeIdentityMismatch},
		{"CSR names a device URN", csrDER(t, key, "", "urn:fleetgate:acme:device:meter-1"), id, CodeIdentityMismatch},
		{"other tenant", csrDER(t, key, ""), ClaimIdentity{Tenant: "globex", ClaimID: "c"}, CodeIdentityMismatch},
		{"bad claim id", csrDER(t, key, ""), ClaimIdentity{Tenant: "acme", ClaimID: "a:b"}, CodeInvalidIdentity},
		{"weak key", csrDER(t, testKey(t, "p224"), ""), id, CodeUnsupportedKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csr, err := x509.ParseCertificateRequest(tc.csr)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = ca.IssueClaim(csr, tc.id, IssueOptions{Now: testNow})
			wantCode(t, err, tc.code)
		})
	}
}

func FuzzParseExternalCA(f *testing.F) {
	p256 := testKey(f, "p256")
	_, good := extCert(f, caTmpl(nil), nil, p256.Public(), p256)
	f.Add(good)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseExternalCA(data, testNow)
		if err != nil {
			var e *Error
			if c != nil || !errors.As(err, &e) {
				t.Fatalf("ParseExternalCA = %v, %v (%T)", c, err, err)
			}
			return
		}
		if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 || Weakness(c) != "" {
			t.Fatalf("accepted a certificate that cannot be a strong CA")
		}
	})
}

func FuzzMapping(f *testing.F) {
	f.Add("san-uri", "spiffe://acme/device/{device}", "spiffe://acme/device/m-1")
	f.Add("san-dns", "{device}.d.example", "M.d.example")
	f.Add("cn", "", "meter-17")
	f.Fuzz(func(t *testing.T, source, pattern, name string) {
		m, err := ParseMapping(source, pattern)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidMapping {
				t.Fatalf("ParseMapping error %v (%T)", err, err)
			}
			return
		}
		if id, ok := m.match(name); ok {
			if !validDeviceID(id) {
				t.Fatalf("match(%q) = %q, not a device id", name, id)
			}
			if m.Source != SourceSANDNS && m.prefix+id+m.suffix != name {
				t.Fatalf("match(%q) = %q does not rebuild the name", name, id)
			}
		}
	})
}

// verifTmpl is a verification certificate template: common name cn, valid
// around testNow.
func verifTmpl(cn string, mod func(*x509.Certificate)) *x509.Certificate {
	t := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(24 * time.Hour)}
	if mod != nil {
		mod(t)
	}
	return t
}

func TestVerifyCAPossession(t *testing.T) {
	caKey, other, leafKey := testKey(t, "p256"), testKey(t, "p384"), testKey(t, "ed25519")
	ca, caPEM := extCert(t, caTmpl(nil), nil, caKey.Public(), caKey)
	otherCA, _ := extCert(t, caTmpl(nil), nil, other.Public(), other)
	code := RegistrationCode(testTenant)
	if code != "fleetgate-ca-verification:acme" {
		t.Fatalf("RegistrationCode = %q", code)
	}
	proof := func(cn string, mod func(*x509.Certificate), parent *x509.Certificate, signer crypto.Signer) []byte {
		_, p := extCert(t, verifTmpl(cn, mod), parent, leafKey.Public(), signer)
		return p
	}
	good := proof(code, nil, ca, caKey)
	rsaKey := testKey(t, "rsa2048")
	rsaCA, _ := extCert(t, caTmpl(nil), nil, rsaKey.Public(), rsaKey)
	sha1 := proof(code, func(c *x509.Certificate) { c.SignatureAlgorithm = x509.SHA1WithRSA }, rsaCA, rsaKey)
	twoCNs := proof("", func(c *x509.Certificate) {
		c.Subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidCommonName, Value: code}, {Type: oidCommonName, Value: "other"}}
	}, ca, caKey)
	keyPEM := func() []byte {
		der, err := x509.MarshalPKCS8PrivateKey(caKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}()
	for _, tc := range []struct {
		name   string
		ca     *x509.Certificate
		in     []byte
		code   string // "" = accepted
		detail string
	}{
		{"good", ca, good, "", ""},
		{"surrounding whitespace", ca, append(append([]byte("\n "), good...), "\n\n"...), "", ""},
		{"valid until the last second", ca, proof(code, func(c *x509.Certificate) { c.NotAfter = testNow }, ca, caKey), "", ""},
		{"signed by another key", ca, proof(code, nil, otherCA, other), CodeBadSignature, "not signed by this CA"},
		{"SHA-1 signature", rsaCA, sha1, CodeWeakKey, "insecure SHA1-RSA"},
		{"self-signed", ca, proof(code, nil, nil, leafKey), CodeBadSignature, "not signed by this CA"},
		{"checked against another CA", otherCA, good, CodeBadSignature, "not signed by this CA"},
		{"no CA", nil, good, CodeBadSignature, "not signed by this CA"},
		{"another tenant's code", ca, proof(RegistrationCode("globex"), nil, ca, caKey), CodeIdentityMismatch, "registration code " + code},
		{"code with a suffix", ca, proof(code+"x", nil, ca, caKey), CodeIdentityMismatch, "registration code " + code},
		{"no common name", ca, proof("", nil, ca, caKey), CodeIdentityMismatch, "registration code " + code},
		{"two common names", ca, twoCNs, CodeIdentityMismatch, "registration code " + code},
		{"expired", ca, proof(code, func(c *x509.Certificate) { c.NotAfter = testNow.Add(-time.Second) }, ca, caKey), CodeExpired, "expired or not yet valid"},
		{"not yet valid", ca, proof(code, func(c *x509.Certificate) { c.NotBefore = testNow.Add(time.Minute) }, ca, caKey), CodeExpired, "expired or not yet valid"},
		{"missing", ca, nil, CodeMalformedCertificate, "missing"},
		{"blank", ca, []byte(" \n\t"), CodeMalformedCertificate, "missing"},
		{"two certificates", ca, append(append([]byte{}, good...), good...), CodeMalformedCertificate, "exactly one"},
		{"garbage", ca, []byte("hello"), CodeMalformedCertificate, "not a PEM certificate"},
		{"garbage DER", ca, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), CodeMalformedCertificate, "verification certificate: x509"},
		{"the CA key instead", ca, keyPEM, CodeMalformedCertificate, "private key"},
		{"a CSR instead", ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER(t, caKey, code)}), CodeMalformedCertificate, "not a PEM certificate"},
		{"the CA certificate itself", ca, caPEM, CodeIdentityMismatch, "registration code"},
		{"oversized", ca, []byte(strings.Repeat("A", MaxExternalCASize+1)), CodeTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vc, err := VerifyCAPossession(tc.ca, tc.in, code, testNow)
			if tc.code == "" {
				if err != nil || vc == nil || vc.Subject.CommonName != code {
					t.Fatalf("VerifyCAPossession = %v, %v", vc, err)
				}
				return
			}
			wantCode(t, err, tc.code)
			if vc != nil || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("VerifyCAPossession = %v, %v; want detail %q", vc, err, tc.detail)
			}
		})
	}
}
