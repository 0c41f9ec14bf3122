package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
)

// testExtCA is an external CA made in the test: its certificate and key.
type testExtCA struct {
	cert *x509.Certificate
	pem  string
	key  *ecdsa.PrivateKey
}

func newTestExtCA(t testing.TB, cn string, now time.Time) *testExtCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(365 * 24 * time.Hour), BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testExtCA{cert: cert, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), key: key}
}

func (c *testExtCA) leaf(t testing.TB, cn string, now time.Time, mod func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Minute),
		NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if mod != nil {
		mod(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func TestDeviceIndexExternalCA(t *testing.T) {
	now := time.Now()
	factory := newTestExtCA(t, "Factory CA", now)
	impostor := newTestExtCA(t, "Factory CA", now) // same name, other key
	shared := newTestExtCA(t, "Shared CA", now)    // registered by two tenants
	cas := []model.ExternalCA{
		{TenantID: "acme", Name: "factory", CertPEM: factory.pem, Source: "cn", CreatedAt: now},
		{TenantID: "acme", Name: "shared", CertPEM: shared.pem, Source: "san-uri", Pattern: "spiffe://shared/{device}", CreatedAt: now},
		{TenantID: "globex", Name: "shared", CertPEM: shared.pem, Source: "san-uri", Pattern: "spiffe://shared/{device}", CreatedAt: now},
	}
	devices := []model.Device{
		{ID: "m-1", TenantID: "acme", Status: model.DeviceActive, Model: "em-300"},
		{ID: "m-2", TenantID: "acme", Status: model.DeviceSuspended},
		{ID: "m-1", TenantID: "globex", Status: model.DeviceActive},
		{ID: "g-only", TenantID: "globex", Status: model.DeviceActive},
	}
	spiffe := func(id string) func(*x509.Certificate) {
		return func(c *x509.Certificate) { u, _ := url.Parse("spiffe://shared/" + id); c.URIs = []*url.URL{u} }
	}
	x := BuildDeviceIndex(DeviceInput{Devices: devices, ExternalCAs: cas})
	for _, tc := range []struct {
		name   string
		cert   *x509.Certificate
		at     time.Time
		tenant string // "" = refused
	}{
		{"registered active device", factory.leaf(t, "m-1", now, nil), now, "acme"},
		{"another certificate of the same device", factory.leaf(t, "m-1", now, nil), now, "acme"},
		{"unregistered device", factory.leaf(t, "m-9", now, nil), now, ""},
		{"suspended device", factory.leaf(t, "m-2", now, nil), now, ""},
		{"device of another tenant", factory.leaf(t, "g-only", now, nil), now, ""},
		{"same CA name, other key", impostor.leaf(t, "m-1", now, nil), now, ""},
		{"expired leaf", factory.leaf(t, "m-1", now, nil), now.Add(48 * time.Hour), ""},
		{"server-auth only", factory.leaf(t, "m-1", now, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }), now, ""},
		{"leaf is a CA", factory.leaf(t, "m-1", now, func(c *x509.Certificate) { c.BasicConstraintsValid, c.IsCA = true, true }), now, ""},
		{"carries a Fleetgate URN", factory.leaf(t, "m-1", now, func(c *x509.Certificate) {
			u, _ := url.Parse("urn:fleetgate:globex:device:m-1")
			c.URIs = []*url.URL{u}
		}), now, ""},
		{"shared CA, id in one tenant", shared.leaf(t, "x", now, spiffe("g-only")), now, "globex"},
		{"shared CA, id in both tenants", shared.leaf(t, "x", now, spiffe("m-1")), now, ""},
		{"no certificate", nil, now, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := x.Principal(tc.cert, tc.at)
			if (tc.tenant != "") != ok {
				t.Fatalf("ok = %v, want tenant %q", ok, tc.tenant)
			}
			if !ok {
				return
			}
			if p.Kind != "device" || p.Tenant != tc.tenant || p.Credential != "device_cert" {
				t.Fatalf("principal %+v", p)
			}
			if !x.Valid(p, tc.cert, tc.at) {
				t.Fatal("Valid disagrees with Principal")
			}
		})
	}
	// Decommissioning the device (a later snapshot) ends its sessions.
	cert := factory.leaf(t, "m-1", now, nil)
	p, _ := x.Principal(cert, now)
	devices[0].Status = model.DeviceDecommissioned
	y := BuildDeviceIndex(DeviceInput{Devices: devices, ExternalCAs: cas})
	if y.Valid(p, cert, now) {
		t.Fatal("decommissioned device still valid")
	}
	// Deleting the CA registration does too.
	z := BuildDeviceIndex(DeviceInput{Devices: devices[:1], ExternalCAs: nil})
	devices[0].Status = model.DeviceActive
	if z.Valid(p, cert, now) {
		t.Fatal("certificate of a deleted external CA still valid")
	}
}

// BenchmarkDeviceIndexExternal compares the external-CA lookup (cached
// chain verification) with the built-in fingerprint lookup, in one run.
func BenchmarkDeviceIndexExternal(b *testing.B) {
	now := time.Now()
	ca, _ := pki.NewCA("acme", pki.KeyECDSAP256, 0, now)
	builtin := issueDeviceCert(b, ca, "d1", now)
	ext := newTestExtCA(b, "Factory CA", now)
	extCert := ext.leaf(b, "d2", now, nil)
	x := BuildDeviceIndex(DeviceInput{
		Devices:     []model.Device{{ID: "d1", TenantID: "acme", Status: model.DeviceActive}, {ID: "d2", TenantID: "acme", Status: model.DeviceActive}},
		Credentials: []model.DeviceCredential{{ID: "c", TenantID: "acme", DeviceID: "d1", Kind: model.CredCertificate, Fingerprint: pki.Fingerprint(builtin)}},
		ExternalCAs: []model.ExternalCA{{TenantID: "acme", Name: "f", CertPEM: ext.pem, Source: "cn", CreatedAt: now}},
	})
	for _, bc := range []struct {
		name string
		cert *x509.Certificate
	}{{"builtin", builtin}, {"external", extCert}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := x.Principal(bc.cert, now); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
	b.Run("external-uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(x.ext.verify(extCert, now)) != 1 {
				b.Fatal("not verified")
			}
		}
	})
}
