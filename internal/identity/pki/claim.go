package pki

import (
	"crypto/x509"
	"fmt"
	"strings"
)

// ClaimIdentity is who a claim certificate speaks for: a fleet-provisioning
// claim of a tenant, never a device. Its URN,
// "urn:fleetgate:<tenant>:claim:<id>", is in the Fleetgate namespace but not
// a device URN, so IdentityOf refuses it: a claim certificate cannot be
// mistaken for a device certificate even if its fingerprint were recorded
// as one.
type ClaimIdentity struct {
	Tenant, ClaimID string
}

// URN is the claim certificate's subjectAltName URI.
func (id ClaimIdentity) URN() string {
	return "urn:fleetgate:" + id.Tenant + ":claim:" + id.ClaimID
}

// commonName is informative only; the space makes it an invalid device id,
// so no common-name mapping (external CAs) can read a device out of it.
func (id ClaimIdentity) commonName() string { return "Fleetgate claim " + id.ClaimID }

// IssueClaim signs a claim certificate from csr. Like Issue, the CA decides
// every name: CN "Fleetgate claim <id>", O=<tenant> and the claim URN SAN;
// a CSR that asks for another common name or any other Fleetgate URN is
// CodeIdentityMismatch. The certificate is a TLS client certificate (the
// enrolling device presents it on the data plane) with the same profile and
// validity rules as device certificates.
func (ca *CA) IssueClaim(csr *x509.CertificateRequest, id ClaimIdentity, o IssueOptions) (*x509.Certificate, []byte, error) {
	if csr == nil {
		return nil, nil, perr(CodeMalformedCSR, "no CSR")
	}
	if !validTenant(id.Tenant) || !validID(id.ClaimID, "._-") {
		return nil, nil, perr(CodeInvalidIdentity, "claim id and tenant must be 1-64 characters of [A-Za-z0-9._-]")
	}
	if id.Tenant != ca.tenant {
		return nil, nil, perr(CodeIdentityMismatch, fmt.Sprintf("the CA of tenant %q cannot issue for tenant %q", ca.tenant, id.Tenant))
	}
	validity := o.Validity
	if validity == 0 {
		validity = DefaultLeafValidity
	}
	if validity < 0 || validity > MaxLeafValidity || o.Now.IsZero() || o.Now.Before(ca.Cert.NotBefore) || !o.Now.Before(ca.Cert.NotAfter) {
		return nil, nil, perr(CodeInvalidValidity, "validity or issuance time out of range")
	}
	if err := checkCSR(csr); err != nil {
		return nil, nil, err
	}
	for _, atv := range csr.Subject.Names {
		if atv.Type.Equal(oidCommonName) {
			if cn, ok := atv.Value.(string); !ok || cn != id.commonName() {
				return nil, nil, perr(CodeIdentityMismatch, "a claim CSR may not choose its common name")
			}
		}
	}
	for _, u := range csr.URIs {
		if isFleetgateURN(u) && !strings.EqualFold("urn:"+u.Opaque, id.URN()) {
			return nil, nil, perr(CodeIdentityMismatch, "a claim CSR may not name another Fleetgate identity")
		}
	}
	return signClientCert(ca, csr, o.Now, validity, id.commonName(), id.Tenant, id.URN())
}

// ClaimOf returns the claim a certificate speaks for, from its only
// Fleetgate URN SAN. Like IdentityOf it verifies nothing: the caller looks
// the certificate up by fingerprint among issued claim certificates first.
func ClaimOf(cert *x509.Certificate) (ClaimIdentity, error) {
	if cert == nil {
		return ClaimIdentity{}, perr(CodeInvalidIdentity, "no certificate")
	}
	var found []ClaimIdentity
	for _, u := range cert.URIs {
		if !isFleetgateURN(u) {
			continue
		}
		rest := u.Opaque[len("fleetgate:"):]
		tenant, c, ok := strings.Cut(rest, ":")
		c, isClaim := strings.CutPrefix(c, "claim:")
		if !ok || !isClaim || u.RawQuery != "" || u.Fragment != "" || !validTenant(tenant) || !validID(c, "._-") {
			return ClaimIdentity{}, perr(CodeInvalidIdentity, "certificate carries a Fleetgate URN that is not a claim URN")
		}
		found = append(found, ClaimIdentity{Tenant: tenant, ClaimID: c})
	}
	if len(found) != 1 {
		return ClaimIdentity{}, perr(CodeInvalidIdentity, "a claim certificate carries exactly one claim URN")
	}
	return found[0], nil
}
