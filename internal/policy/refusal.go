package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/model"
)

// Refusal kinds: why a credential the control plane knows was refused.
// Unknown credentials are not refusals in this sense (anyone can make up a
// key or a certificate); a known but revoked one means a device or an
// application still holds it and keeps trying, which is what the posture
// findings report.
const (
	RefusedRevokedCertificate = "revoked-certificate"
	RefusedInactiveDevice     = "inactive-device" // suspended, quarantined, decommissioned, pending
	RefusedRevokedAPIKey      = "revoked-api-key"
	RefusedRevokedToken       = "revoked-device-token"
)

// Refusal names a known credential that authentication refused.
type Refusal struct {
	Kind    string
	Tenant  string
	Subject string // "device:meter-17", "app:billing"
	// Credential identifies the credential: "certificate <serial>" or
	// "api_key:<id>" (never the secret).
	Credential string
	// Status is the device's status for RefusedInactiveDevice.
	Status string
}

// Refusal explains why c does not authenticate in this snapshot when c
// is a credential the control plane issued: a revoked (or expired-and-
// revoked) device certificate, a valid certificate of a device that is not
// active, or a revoked API key. It reports false for credentials that do
// authenticate and for unknown ones. It is meant for the refusal path
// only: it hashes the certificate again.
func (s *Snapshot) Refusal(c Credentials, now time.Time) (Refusal, bool) {
	if c.PeerCert != nil {
		if r, ok := s.devices.refusal(c.PeerCert); ok {
			return r, true
		}
	}
	if c.Bearer != "" {
		if r, ok := s.devices.tokenRefusal(c.Bearer); ok {
			return r, true
		}
	}
	if c.APIKey != "" && credential.LooksLikeAPIKey(c.APIKey) {
		if k := s.keys[credential.HashAPIKey(c.APIKey)]; k != nil && k.revoked {
			return Refusal{Kind: RefusedRevokedAPIKey, Tenant: k.principal.Tenant, Subject: k.principal.Subject, Credential: k.principal.Credential}, true
		}
	}
	return Refusal{}, false
}

// refusal classifies a device certificate found in the index. A
// certificate whose embedded identity does not name the recorded device is
// not reported: it is not the credential that was issued.
func (x *DeviceIndex) refusal(cert *x509.Certificate) (Refusal, bool) {
	if x == nil {
		return Refusal{}, false
	}
	e := x.byFP[string(fingerprintHex(cert, new([64]byte)))]
	if e == nil || e.cred == nil {
		return Refusal{}, false
	}
	r := Refusal{Tenant: e.identity.Tenant, Subject: "device:" + e.identity.DeviceID, Credential: "certificate " + e.cred.Serial}
	switch {
	case e.cred.RevokedAt != nil:
		r.Kind = RefusedRevokedCertificate
	case e.status != model.DeviceActive:
		r.Kind, r.Status = RefusedInactiveDevice, string(e.status)
	default:
		return Refusal{}, false
	}
	return r, true
}

// fingerprintHex writes the lowercase hex SHA-256 of cert's DER (the form
// credentials and pins are indexed by) into buf and returns it. Callers
// index maps with string(...) of the result, which Go does without
// allocating: the per-handshake lookups stay allocation-free.
func fingerprintHex(cert *x509.Certificate, buf *[64]byte) []byte {
	sum := sha256.Sum256(cert.Raw)
	hex.Encode(buf[:], sum[:])
	return buf[:]
}
