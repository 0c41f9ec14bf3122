package policy

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
)

// TestRefusal: only credentials the control plane issued and barred are
// refusals; live and unknown ones are not.
func TestRefusal(t *testing.T) {
	now := time.Now()
	ca, err := pki.NewCA("acme", pki.KeyECDSAP256, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]*x509.Certificate{}
	var creds []model.DeviceCredential
	for _, c := range []struct {
		name, device string
		revoked      bool
	}{{"live", "d1", false}, {"revoked", "d1", true}, {"suspended", "d2", false}, {"revoked-suspended", "d2", true}, {"quarantined", "d3", false}} {
		cert := issueDeviceCert(t, ca, c.device, now)
		certs[c.name] = cert
		cred := model.DeviceCredential{ID: c.name, TenantID: "acme", DeviceID: c.device, Kind: model.CredCertificate,
			Fingerprint: pki.Fingerprint(cert), Serial: cert.SerialNumber.Text(16), NotAfter: &cert.NotAfter}
		if c.revoked {
			cred.RevokedAt = &now
		}
		creds = append(creds, cred)
	}
	certs["unknown"] = issueDeviceCert(t, ca, "d1", now)
	liveKey, _, liveHash := credential.NewAPIKey()
	revokedKey, _, revokedHash := credential.NewAPIKey()
	unknownKey, _, _ := credential.NewAPIKey()
	s := Compile(&Input{
		Apps: []model.Application{{ID: "app1", TenantID: "acme", Name: "billing"}},
		Keys: []model.APIKey{{ID: "k-live", TenantID: "acme", AppID: "app1", Hash: liveHash[:]},
			{ID: "k-revoked", TenantID: "acme", AppID: "app1", Hash: revokedHash[:], RevokedAt: &now}},
		Devices: DeviceInput{Devices: []model.Device{{ID: "d1", TenantID: "acme", Status: model.DeviceActive},
			{ID: "d2", TenantID: "acme", Status: model.DeviceSuspended}, {ID: "d3", TenantID: "acme", Status: model.DeviceQuarantined}},
			Credentials: creds},
	}, nil)
	serial := func(n string) string { return "certificate " + certs[n].SerialNumber.Text(16) }
	tests := []struct {
		name string
		c    Credentials
		want Refusal
		ok   bool
	}{
		{"live certificate", Credentials{PeerCert: certs["live"]}, Refusal{}, false},
		{"revoked certificate", Credentials{PeerCert: certs["revoked"]}, Refusal{Kind: RefusedRevokedCertificate, Tenant: "acme", Subject: "device:d1", Credential: serial("revoked")}, true},
		{"suspended device", Credentials{PeerCert: certs["suspended"]}, Refusal{Kind: RefusedInactiveDevice, Tenant: "acme", Subject: "device:d2", Credential: serial("suspended"), Status: "suspended"}, true},
		{"revoked wins over suspended", Credentials{PeerCert: certs["revoked-suspended"]}, Refusal{Kind: RefusedRevokedCertificate, Tenant: "acme", Subject: "device:d2", Credential: serial("revoked-suspended")}, true},
		{"quarantined device", Credentials{PeerCert: certs["quarantined"]}, Refusal{Kind: RefusedInactiveDevice, Tenant: "acme", Subject: "device:d3", Credential: serial("quarantined"), Status: "quarantined"}, true},
		{"unknown certificate", Credentials{PeerCert: certs["unknown"]}, Refusal{}, false},
		{"live key", Credentials{APIKey: liveKey}, Refusal{}, false},
		{"revoked key", Credentials{APIKey: revokedKey}, Refusal{Kind: RefusedRevokedAPIKey, Tenant: "acme", Subject: "app:billing", Credential: "api_key:k-revoked"}, true},
		{"unknown key", Credentials{APIKey: unknownKey}, Refusal{}, false},
		{"not a key", Credentials{APIKey: "fgk_short"}, Refusal{}, false},
		{"live certificate and revoked key", Credentials{PeerCert: certs["live"], APIKey: revokedKey}, Refusal{Kind: RefusedRevokedAPIKey, Tenant: "acme", Subject: "app:billing", Credential: "api_key:k-revoked"}, true},
		{"nothing", Credentials{}, Refusal{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := s.Refusal(tc.c, now)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("Refusal = %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
