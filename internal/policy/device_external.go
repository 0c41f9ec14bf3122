package policy

import (
	"crypto/x509"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
)

// maxExternalCache bounds the per-snapshot cache of verified external
// certificates; past it, certificates are verified on every lookup.
const maxExternalCache = 8192

// externalIndex maps client certificates of registered external CAs to
// registered devices. Unlike built-in certificates, these were never
// recorded by fingerprint, so the chain is verified here (x509 Verify
// against the one registered CA, for client authentication, at now) and
// the device id is read with the CA's mapping rule. Only the leaf is
// available to the engine, so a registered CA must be the leaf's issuer.
type externalIndex struct {
	byIssuer map[string][]*externalCA // CA subject DER -> CAs with that subject
	devices  map[pki.DeviceIdentity]*Principal
	// verified caches, per certificate fingerprint, the (tenant, device)
	// pairs its chain verified to. Validity windows and device status are
	// re-checked on every lookup; the cache only saves the signature check.
	verified sync.Map
	size     atomic.Int64
}

type externalCA struct {
	tenant  string
	cert    *x509.Certificate
	roots   *x509.CertPool
	mapping pki.Mapping
}

// buildExternalIndex compiles the registered CAs. A row that no longer
// parses (tampered, or registered by an older, laxer version) is left out:
// it authenticates nobody. nil when no tenant registered an external CA.
func buildExternalIndex(cas []model.ExternalCA, devices map[pki.DeviceIdentity]*model.Device) *externalIndex {
	if len(cas) == 0 {
		return nil
	}
	x := &externalIndex{byIssuer: map[string][]*externalCA{}, devices: map[pki.DeviceIdentity]*Principal{}}
	tenants := map[string]bool{}
	for i := range cas {
		r := &cas[i]
		cert, err := pki.ParseExternalCA([]byte(r.CertPEM), r.CreatedAt)
		if err != nil {
			continue
		}
		m, err := pki.ParseMapping(r.Source, r.Pattern)
		if err != nil {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(cert)
		x.byIssuer[string(cert.RawSubject)] = append(x.byIssuer[string(cert.RawSubject)], &externalCA{tenant: r.TenantID, cert: cert, roots: roots, mapping: m})
		tenants[r.TenantID] = true
	}
	for id, d := range devices {
		if tenants[id.Tenant] && d.Status == model.DeviceActive {
			x.devices[id] = devicePrincipal(d)
		}
	}
	return x
}

// principal returns the device principal of cert, when exactly one active
// registered device matches across the external CAs that verify it. Two
// matches (the same CA registered by two tenants that both registered the
// id) are ambiguous and refused rather than guessed.
//
// fp is the certificate's fingerprint, already computed by the caller.
func (x *externalIndex) principal(cert *x509.Certificate, fp string, now time.Time) (*Principal, bool) {
	if x == nil || len(x.byIssuer[string(cert.RawIssuer)]) == 0 {
		return nil, false
	}
	if now.Before(cert.NotBefore) || !now.Before(cert.NotAfter) {
		return nil, false
	}
	var ids []externalMatch
	if v, ok := x.verified.Load(fp); ok {
		ids = v.([]externalMatch)
	} else {
		ids = x.verify(cert, now)
		if x.size.Add(1) <= maxExternalCache {
			x.verified.Store(fp, ids)
		}
	}
	var found *Principal
	for _, m := range ids {
		if now.Before(m.ca.cert.NotBefore) || !now.Before(m.ca.cert.NotAfter) {
			continue
		}
		p := x.devices[m.id]
		if p == nil {
			continue
		}
		if found != nil && found != p {
			return nil, false
		}
		found = p
	}
	return found, found != nil
}

type externalMatch struct {
	ca *externalCA
	id pki.DeviceIdentity
}

// verify checks cert against every CA registered under its issuer name and
// maps it to a device id with each one that verifies it.
func (x *externalIndex) verify(cert *x509.Certificate, now time.Time) []externalMatch {
	if (cert.BasicConstraintsValid && cert.IsCA) || pki.HasFleetgateName(cert) {
		return nil
	}
	var out []externalMatch
	for _, ca := range x.byIssuer[string(cert.RawIssuer)] {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			continue
		}
		id, err := ca.mapping.DeviceID(cert)
		if err != nil {
			continue
		}
		out = append(out, externalMatch{ca: ca, id: pki.DeviceIdentity{Tenant: ca.tenant, DeviceID: id}})
	}
	return out
}
