package policy

import (
	"crypto/x509"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
)

// DeviceInput is the device-identity part of the control-plane state a
// snapshot is compiled from: every device and every device credential,
// revoked ones included (a revoked certificate must be recognised as
// revoked, not as unknown, for the posture findings that count attempts).
type DeviceInput struct {
	Devices     []model.Device
	Credentials []model.DeviceCredential
	// PSKs and TokenKeys: see device_creds.go.
	PSKs      []PSKInput
	TokenKeys []TokenKeyInput
	// ExternalCAs are the tenants' registered external CAs, whose client
	// certificates map to registered devices (device_external.go).
	ExternalCAs []model.ExternalCA
}

// DeviceIndex turns verified device client certificates into principals.
// It is built once per snapshot and immutable afterwards, so lookups take
// no lock; a revocation or status change reaches it through the next
// snapshot, which every control-plane commit triggers.
type DeviceIndex struct {
	byFP map[string]*deviceEntry // certificate fingerprint -> entry
	// live holds devices that are active and have a certificate that is
	// not revoked (expiry is checked per certificate, in Principal).
	live map[pki.DeviceIdentity]bool
	// creds indexes tokens and PSKs (device_creds.go).
	creds *deviceCreds
	// ext resolves certificates of registered external CAs (nil: none).
	ext *externalIndex
}

type deviceEntry struct {
	principal *Principal
	live      bool // device active and credential not revoked
	notAfter  *time.Time
	identity  pki.DeviceIdentity
	// cred and status explain a refusal (see Snapshot.Refusal).
	cred   *model.DeviceCredential
	status model.DeviceStatus
}

// BuildDeviceIndex indexes the certificates of in. Credentials whose device
// is missing are left out: they cannot authenticate anyone.
func BuildDeviceIndex(in DeviceInput) *DeviceIndex {
	x := &DeviceIndex{byFP: make(map[string]*deviceEntry, len(in.Credentials)), live: map[pki.DeviceIdentity]bool{}}
	devices := make(map[pki.DeviceIdentity]*model.Device, len(in.Devices))
	for i := range in.Devices {
		d := &in.Devices[i]
		devices[pki.DeviceIdentity{Tenant: d.TenantID, DeviceID: d.ID}] = d
	}
	principals := map[pki.DeviceIdentity]*Principal{}
	for i := range in.Credentials {
		c := &in.Credentials[i]
		if c.Kind != model.CredCertificate || c.Fingerprint == "" {
			continue
		}
		id := pki.DeviceIdentity{Tenant: c.TenantID, DeviceID: c.DeviceID}
		d := devices[id]
		if d == nil {
			continue
		}
		p := principals[id]
		if p == nil {
			p = devicePrincipal(d)
			principals[id] = p
		}
		// One principal per device, shared by all its certificates.
		e := &deviceEntry{principal: p, live: d.Status == model.DeviceActive && c.RevokedAt == nil, notAfter: c.NotAfter, identity: id,
			cred: c, status: d.Status}
		x.byFP[c.Fingerprint] = e
		if e.live {
			x.live[id] = true
		}
	}
	x.creds = buildDeviceCreds(in, devices)
	x.ext = buildExternalIndex(in.ExternalCAs, devices)
	return x
}

func devicePrincipal(d *model.Device) *Principal {
	p := &Principal{Kind: "device", Tenant: d.TenantID, ID: d.ID, Device: d.ID, Model: d.Model, Firmware: d.Firmware,
		Subject: "device:" + d.ID, Attributes: d.Attributes, Credential: "device_cert", shared: true}
	p.view = p.buildView()
	return p
}

// Principal returns the device principal of a client certificate whose
// chain the TLS layer has verified against a tenant CA. The lookup is by
// fingerprint (SHA-256 of the exact DER), so only certificates Fleetgate
// issued and recorded match; the certificate's URN identity must also
// name the recorded device. It reports false for an unknown certificate,
// a revoked or expired credential, and a device that is not active
// (pending, suspended, quarantined, decommissioned or deleted).
func (x *DeviceIndex) Principal(cert *x509.Certificate, now time.Time) (*Principal, bool) {
	if x == nil || cert == nil {
		return nil, false
	}
	fp := fingerprintHex(cert, new([64]byte))
	e := x.byFP[string(fp)]
	if e == nil {
		// Not issued by Fleetgate: maybe by a tenant's external CA.
		return x.ext.principal(cert, string(fp), now)
	}
	if !e.live || (e.notAfter != nil && !now.Before(*e.notAfter)) || !now.Before(cert.NotAfter) {
		return nil, false
	}
	if id, err := pki.IdentityOf(cert); err != nil || id != e.identity {
		return nil, false
	}
	return e.principal, true
}

// Valid reports whether a device principal obtained from certificate cert
// is still backed by a live credential in this index: sessions (MQTT,
// HTTP keep-alive) recheck it on every snapshot swap and are closed when
// it turns false.
func (x *DeviceIndex) Valid(p *Principal, cert *x509.Certificate, now time.Time) bool {
	q, ok := x.Principal(cert, now)
	return ok && p != nil && q.Tenant == p.Tenant && q.ID == p.ID
}

// Active reports whether the device still has a live certificate, for
// callers that kept the principal but not the certificate (such as
// Snapshot.PrincipalValid); Valid is exact per certificate.
func (x *DeviceIndex) Active(tenant, device string) bool {
	return x != nil && x.live[pki.DeviceIdentity{Tenant: tenant, DeviceID: device}]
}
