package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
)

func issueDeviceCert(t testing.TB, ca *pki.CA, device string, now time.Time) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: device}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	cert, _, err := ca.Issue(csr, pki.DeviceIdentity{Tenant: ca.Tenant(), DeviceID: device}, pki.IssueOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestDeviceIndex(t *testing.T) {
	now := time.Now()
	ca, err := pki.NewCA("acme", pki.KeyECDSAP256, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := pki.NewCA("globex", pki.KeyECDSAP256, 0, now)
	certs := map[string]*x509.Certificate{}
	var creds []model.DeviceCredential
	add := func(name, device string, ca *pki.CA, revoked bool) {
		c := issueDeviceCert(t, ca, device, now)
		certs[name] = c
		cred := model.DeviceCredential{ID: name, TenantID: ca.Tenant(), DeviceID: device, Kind: model.CredCertificate, Fingerprint: pki.Fingerprint(c), NotAfter: &c.NotAfter}
		if revoked {
			cred.RevokedAt = &now
		}
		creds = append(creds, cred)
	}
	add("active", "d1", ca, false)
	add("revoked", "d1", ca, true)
	add("suspended", "d2", ca, false)
	add("deleted", "gone", ca, false)
	add("other-tenant", "d1", other, false)
	certs["unknown"] = issueDeviceCert(t, ca, "d1", now)
	devices := []model.Device{
		{ID: "d1", TenantID: "acme", Model: "m1", Firmware: "1.2.3", Status: model.DeviceActive, Attributes: map[string]string{"region": "eu"}},
		{ID: "d2", TenantID: "acme", Status: model.DeviceSuspended},
		{ID: "d1", TenantID: "globex", Status: model.DeviceActive},
	}
	x := BuildDeviceIndex(DeviceInput{Devices: devices, Credentials: creds})

	for _, tc := range []struct {
		name   string
		cert   *x509.Certificate
		at     time.Time
		ok     bool
		tenant string
	}{
		{"active device", certs["active"], now, true, "acme"},
		{"same id, other tenant", certs["other-tenant"], now, true, "globex"},
		{"revoked credential", certs["revoked"], now, false, ""},
		{"suspended device", certs["suspended"], now, false, ""},
		{"deleted device", certs["deleted"], now, false, ""},
		{"certificate never recorded", certs["unknown"], now, false, ""},
		{"expired", certs["active"], certs["active"].NotAfter, false, ""},
		{"no certificate", nil, now, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := x.Principal(tc.cert, tc.at)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if p.Kind != "device" || p.Tenant != tc.tenant || p.ID != "d1" || p.Device != "d1" || p.Subject != "device:d1" {
				t.Fatalf("principal %+v", p)
			}
			if !x.Valid(p, tc.cert, tc.at) {
				t.Fatal("Valid disagrees with Principal")
			}
		})
	}
	p, _ := x.Principal(certs["active"], now)
	if p.Model != "m1" || p.Firmware != "1.2.3" || p.View().Attributes["region"] != "eu" || deviceView(p).ID != "d1" {
		t.Fatalf("device fields: %+v", p)
	}
	// A later index without the device ends its sessions.
	y := BuildDeviceIndex(DeviceInput{Devices: devices[1:], Credentials: creds})
	if !x.Active("acme", "d1") || x.Active("acme", "d2") || y.Active("acme", "d1") || y.Valid(p, certs["active"], now) {
		t.Fatal("principal of a removed device still valid")
	}
}

func BenchmarkDeviceIndexPrincipal(b *testing.B) {
	now := time.Now()
	ca, _ := pki.NewCA("acme", pki.KeyECDSAP256, 0, now)
	cert := issueDeviceCert(b, ca, "d1", now)
	x := BuildDeviceIndex(DeviceInput{
		Devices:     []model.Device{{ID: "d1", TenantID: "acme", Status: model.DeviceActive}},
		Credentials: []model.DeviceCredential{{ID: "c", TenantID: "acme", DeviceID: "d1", Kind: model.CredCertificate, Fingerprint: pki.Fingerprint(cert)}},
	})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := x.Principal(cert, now); !ok {
				b.Fatal("not found")
			}
		}
	})
}
