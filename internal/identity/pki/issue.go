package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"
)

const (
	// DefaultLeafValidity applies when IssueOptions.Validity is zero.
	// Ninety days keeps a stolen device key useful for a bounded time
	// while leaving EST re-enrolment (RFC 7030 §4.2.2) ample slack.
	DefaultLeafValidity = 90 * 24 * time.Hour
	// MaxLeafValidity is the CA/Browser Forum's former 825-day ceiling,
	// kept because many TLS stacks still enforce it on any certificate.
	MaxLeafValidity = 825 * 24 * time.Hour

	// MaxCSRSize bounds ParseCSR input. An RSA-8192 request in PEM is
	// under 4 KiB; anything near the limit is not a device talking.
	MaxCSRSize = 16 << 10

	maxRSABits = 8192 // RSA verification cost grows with the modulus: cap it.
	maxIDLen   = 64   // RFC 5280 Appendix A: ub-common-name is 64.
)

// DeviceIdentity is who a device certificate speaks for. Tenant is 1-64
// characters of [A-Za-z0-9._-]; DeviceID is 1-64 characters of
// [A-Za-z0-9._@:-] (colons allow MAC-address ids; the tenant has none, so
// the URN still splits unambiguously). Sixty-four is the X.520 upper bound
// for a common name, which carries the device id.
type DeviceIdentity struct {
	Tenant, DeviceID string
}

// URN is the identity's subjectAltName URI, "urn:fleetgate:<tenant>:device:<id>"
// (RFC 8141 syntax; the characters allowed in ids need no escaping).
func (id DeviceIdentity) URN() string {
	return "urn:fleetgate:" + id.Tenant + ":device:" + id.DeviceID
}

func (id DeviceIdentity) validate() error {
	if !validTenant(id.Tenant) {
		return perr(CodeInvalidIdentity, "tenant id must be 1-64 characters of [A-Za-z0-9._-]")
	}
	if !validDeviceID(id.DeviceID) {
		return perr(CodeInvalidIdentity, "device id must be 1-64 characters of [A-Za-z0-9._@:-]")
	}
	return nil
}

func validTenant(s string) bool   { return validID(s, "._-") }
func validDeviceID(s string) bool { return validID(s, "._@:-") }

func validID(s, punct string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(punct, c) >= 0) {
			return false
		}
	}
	return true
}

// IssueOptions tunes one issuance. Now is required: the package reads no
// clock.
type IssueOptions struct {
	Validity time.Duration // 0 means DefaultLeafValidity; at most MaxLeafValidity
	Now      time.Time
}

// ParseCSR parses a PKCS#10 request (RFC 2986) given as PEM ("CERTIFICATE
// REQUEST" or the legacy "NEW CERTIFICATE REQUEST") or DER, and checks it
// is one Issue can sign: the key is ECDSA P-256/P-384, Ed25519 or RSA of
// 2048-8192 bits (CodeUnsupportedKey otherwise), and the self-signature
// verifies (CodeBadSignature), which proves the requester holds the private
// key (RFC 2986 §3). The key is checked first so that a weak key is named
// as such rather than as a signature failure.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > MaxCSRSize {
		return nil, perr(CodeTooLarge, fmt.Sprintf("CSR exceeds %d bytes", MaxCSRSize))
	}
	der := data
	if t := bytes.TrimLeft(data, " \t\r\n"); bytes.HasPrefix(t, []byte("-----BEGIN")) {
		block, rest := pem.Decode(t)
		if block == nil {
			return nil, perr(CodeMalformedCSR, "invalid PEM")
		}
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, perr(CodeMalformedCSR, fmt.Sprintf("PEM block is %q, want CERTIFICATE REQUEST", block.Type))
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return nil, perr(CodeMalformedCSR, "data after the PEM block")
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, perr(CodeMalformedCSR, err.Error())
	}
	if err := checkCSR(csr); err != nil {
		return nil, err
	}
	return csr, nil
}

func checkCSR(csr *x509.CertificateRequest) error {
	if err := checkKey(csr.PublicKey); err != nil {
		return err
	}
	if err := csr.CheckSignature(); err != nil {
		return perr(CodeBadSignature, err.Error())
	}
	return nil
}

// checkKey accepts the device key types the gateway's TLS stack and the
// posture rules agree on. P-224 and RSA below 2048 bits are below 112-bit
// security (NIST SP 800-57 Part 1 §5.6.1); P-521 and X25519 are refused
// because constrained device TLS stacks rarely support them for client
// authentication (X25519 cannot sign at all).
func checkKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return perr(CodeUnsupportedKey, fmt.Sprintf("ECDSA curve %s; want P-256 or P-384", k.Curve.Params().Name))
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > maxRSABits {
			return perr(CodeUnsupportedKey, fmt.Sprintf("RSA-%d; want 2048 to %d bits", n, maxRSABits))
		}
		return nil
	case nil:
		return perr(CodeUnsupportedKey, "unrecognised public key algorithm")
	}
	return perr(CodeUnsupportedKey, fmt.Sprintf("%T keys", pub))
}

// Issue signs a client certificate for id from csr.
//
// The CA decides the identity: subject CN=<device id>, O=<tenant> and the
// URN SAN (the authoritative name, see IdentityOf) come from id, never from
// the CSR, and nothing else the CSR asks for (SANs, extensions, key usages)
// is copied. The CSR may still not claim another identity: a CN or a
// Fleetgate URN SAN that names someone else is CodeIdentityMismatch, as is an
// id whose tenant is not this CA's. The key and signature checks of ParseCSR
// are repeated because csr may not have come through ParseCSR.
//
// The certificate is an end entity (cA false) usable only for TLS client
// authentication (RFC 5280 §4.2.1.12 id-kp-clientAuth), with KeyUsage
// digitalSignature, plus keyEncipherment for RSA keys (RFC 5280 §4.2.1.3).
// NotBefore is backdated a few minutes for clock skew; the lifetime is
// o.Validity, cut short at the CA's own NotAfter since a leaf cannot
// outlive the chain it verifies against.
func (ca *CA) Issue(csr *x509.CertificateRequest, id DeviceIdentity, o IssueOptions) (*x509.Certificate, []byte, error) {
	if csr == nil {
		return nil, nil, perr(CodeMalformedCSR, "no CSR")
	}
	if err := id.validate(); err != nil {
		return nil, nil, err
	}
	if id.Tenant != ca.tenant {
		return nil, nil, perr(CodeIdentityMismatch, fmt.Sprintf("the CA of tenant %q cannot issue for tenant %q", ca.tenant, id.Tenant))
	}
	validity := o.Validity
	if validity == 0 {
		validity = DefaultLeafValidity
	}
	if validity < 0 || validity > MaxLeafValidity {
		return nil, nil, perr(CodeInvalidValidity, fmt.Sprintf("validity must be between 0 and %s", MaxLeafValidity))
	}
	if o.Now.IsZero() {
		return nil, nil, perr(CodeInvalidValidity, "IssueOptions.Now is required")
	}
	if o.Now.Before(ca.Cert.NotBefore) || !o.Now.Before(ca.Cert.NotAfter) {
		return nil, nil, perr(CodeInvalidValidity, "the CA certificate is not valid at the issuance time")
	}
	if err := checkCSR(csr); err != nil {
		return nil, nil, err
	}
	if err := checkRequestedNames(csr, id); err != nil {
		return nil, nil, err
	}
	return signClientCert(ca, csr, o.Now, validity, id.DeviceID, id.Tenant, id.URN())
}

// signClientCert signs a TLS client certificate for csr's key: common
// name cn, organization tenant and one URN SAN, valid from now (backdated
// for clock skew) for validity, both clipped to the CA's own validity.
// Device and claim certificates differ only in those names.
func signClientCert(ca *CA, csr *x509.CertificateRequest, now time.Time, validity time.Duration, cn, tenant, urn string) (*x509.Certificate, []byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	bits, err := subjectPublicKeyBits(csr.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, nil, perr(CodeMalformedCSR, err.Error())
	}
	// RFC 7093 §2 method 1: leftmost 160 bits of SHA-256 over the key.
	skid := sha256.Sum256(bits)

	notBefore := now.Add(-backdate)
	if notBefore.Before(ca.Cert.NotBefore) {
		notBefore = ca.Cert.NotBefore
	}
	notAfter := notBefore.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	ku := x509.KeyUsageDigitalSignature
	if _, ok := csr.PublicKey.(*rsa.PublicKey); ok {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{tenant}},
		NotBefore:             notBefore.UTC(),
		NotAfter:              notAfter.UTC(),
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		URIs:                  []*url.URL{{Scheme: "urn", Opaque: strings.TrimPrefix(urn, "urn:")}},
		SubjectKeyId:          skid[:20],
		// AuthorityKeyId is copied from ca.Cert.SubjectKeyId by
		// CreateCertificate (RFC 5280 §4.2.1.1).
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parse issued certificate: %w", err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// checkRequestedNames refuses a CSR that claims a different identity. Every
// CN attribute is checked, not only the one pkix.Name surfaces, and every
// Fleetgate URN SAN must be exactly id's.
func checkRequestedNames(csr *x509.CertificateRequest, id DeviceIdentity) error {
	for _, atv := range csr.Subject.Names {
		if !atv.Type.Equal(oidCommonName) {
			continue
		}
		if cn, ok := atv.Value.(string); !ok || cn != id.DeviceID {
			return perr(CodeIdentityMismatch, fmt.Sprintf("CSR common name is not device id %q", id.DeviceID))
		}
	}
	for _, u := range csr.URIs {
		if !isFleetgateURN(u) {
			continue
		}
		if got, err := parseURN(u); err != nil || got != id {
			return perr(CodeIdentityMismatch, fmt.Sprintf("CSR names another identity than %s", id.URN()))
		}
	}
	return nil
}

// isFleetgateURN reports whether u is in the urn:fleetgate namespace. URN
// scheme and namespace identifier compare case-insensitively (RFC 8141
// §3.1), so "URN:FleetGate:..." is the same namespace and must be checked.
func isFleetgateURN(u *url.URL) bool {
	const nid = "fleetgate:"
	return u != nil && strings.EqualFold(u.Scheme, "urn") &&
		len(u.Opaque) >= len(nid) && strings.EqualFold(u.Opaque[:len(nid)], nid)
}

// parseURN splits "urn:fleetgate:<tenant>:device:<id>". The tenant cannot
// contain ':', so the first colon after the namespace ends it.
func parseURN(u *url.URL) (DeviceIdentity, error) {
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil || u.Host != "" {
		return DeviceIdentity{}, perr(CodeInvalidIdentity, "Fleetgate URN has extra components")
	}
	rest := u.Opaque[len("fleetgate:"):]
	tenant, dev, ok := strings.Cut(rest, ":")
	if !ok {
		return DeviceIdentity{}, perr(CodeInvalidIdentity, "Fleetgate URN has no device part")
	}
	dev, ok = strings.CutPrefix(dev, "device:")
	if !ok {
		return DeviceIdentity{}, perr(CodeInvalidIdentity, "Fleetgate URN is not a device URN")
	}
	id := DeviceIdentity{Tenant: tenant, DeviceID: dev}
	if err := id.validate(); err != nil {
		return DeviceIdentity{}, err
	}
	return id, nil
}

// IdentityOf returns the identity a device certificate speaks for, read from
// its Fleetgate URN SAN only: the CN is informative and never trusted.
// It does not verify anything; call it on a leaf whose chain has been
// verified against a tenant CA, and check that the tenant it returns is that
// CA's (CA.Tenant), since one gateway trusts many tenant CAs. A certificate
// with no Fleetgate URN, a malformed one or more than one is
// CodeInvalidIdentity.
func IdentityOf(cert *x509.Certificate) (DeviceIdentity, error) {
	if cert == nil {
		return DeviceIdentity{}, perr(CodeInvalidIdentity, "no certificate")
	}
	var found []DeviceIdentity
	for _, u := range cert.URIs {
		if !isFleetgateURN(u) {
			continue
		}
		id, err := parseURN(u)
		if err != nil {
			return DeviceIdentity{}, err
		}
		found = append(found, id)
	}
	switch len(found) {
	case 0:
		return DeviceIdentity{}, perr(CodeInvalidIdentity, "certificate has no urn:fleetgate SAN")
	case 1:
		return found[0], nil
	}
	return DeviceIdentity{}, perr(CodeInvalidIdentity, "certificate has more than one urn:fleetgate SAN")
}

// Fingerprint is the lowercase hex SHA-256 of the certificate DER, the form
// consumers pin in cert_fingerprints.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}
