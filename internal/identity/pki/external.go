package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MaxExternalCASize bounds ParseExternalCA input: one CA certificate in PEM
// is a few KiB even with a large RSA key and many extensions.
const MaxExternalCASize = 32 << 10

// Codes of external-CA registration errors (see Code* in errors.go).
const (
	// CodeNotCA: the certificate may not sign certificates (no
	// basicConstraints cA=TRUE, or no keyCertSign key usage).
	CodeNotCA = "not-a-ca"
	// CodeMalformedCertificate: the bytes are not exactly one PEM
	// CERTIFICATE block holding a parsable X.509 certificate.
	CodeMalformedCertificate = "malformed-certificate"
	// CodeWeakKey: the CA key or signature is below 112-bit security.
	CodeWeakKey = "weak-key"
	// CodeExpired: the certificate is not valid now.
	CodeExpired = "expired"
	// CodeInvalidMapping: the device-id mapping rule is not well formed.
	CodeInvalidMapping = "invalid-mapping"
)

// ParseExternalCA parses and checks a CA certificate a tenant registers so
// that the data plane accepts the client certificates it signs. It must be
// exactly one PEM CERTIFICATE block, a CA (basicConstraints cA=TRUE, RFC
// 5280 §4.2.1.9) allowed to sign certificates (keyCertSign, §4.2.1.3),
// valid at now, with a key of at least 112-bit security (ECDSA P-256 and
// up, Ed25519, RSA 2048-8192) and no MD5/SHA-1 signature (see Weakness).
func ParseExternalCA(data []byte, now time.Time) (*x509.Certificate, error) {
	if len(data) > MaxExternalCASize {
		return nil, perr(CodeTooLarge, fmt.Sprintf("CA certificate exceeds %d bytes", MaxExternalCASize))
	}
	block, rest := pem.Decode(bytes.TrimSpace(data))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, perr(CodeMalformedCertificate, "want one PEM CERTIFICATE block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, perr(CodeMalformedCertificate, "data after the PEM block (register one CA per request)")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, perr(CodeMalformedCertificate, err.Error())
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, perr(CodeNotCA, "basicConstraints cA is not TRUE")
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, perr(CodeNotCA, "key usage lacks keyCertSign")
	}
	if w := Weakness(cert); w != "" {
		return nil, perr(CodeWeakKey, w)
	}
	switch k := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() && k.Curve != elliptic.P521() {
			return nil, perr(CodeWeakKey, "ECDSA curve "+k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n > maxRSABits {
			return nil, perr(CodeUnsupportedKey, fmt.Sprintf("RSA-%d; at most %d bits", n, maxRSABits))
		}
	default:
		return nil, perr(CodeUnsupportedKey, fmt.Sprintf("%T keys", cert.PublicKey))
	}
	if now.Before(cert.NotBefore) || !now.Before(cert.NotAfter) {
		return nil, perr(CodeExpired, "the CA certificate is not valid now")
	}
	return cert, nil
}

// Mapping sources: where a device id is read from a client certificate.
const (
	SourceCN     = "cn"
	SourceSANURI = "san-uri"
	SourceSANDNS = "san-dns"
)

// Mapping turns a client certificate of an external CA into a device id.
// Pattern is a template with exactly one "{device}" placeholder (for "cn"
// it defaults to "{device}", the whole common name): the certificate name
// must be the template with the placeholder replaced by a valid device id,
// compared exactly (DNS names case-insensitively, RFC 4343).
type Mapping struct {
	Source  string
	Pattern string
	prefix  string
	suffix  string
}

const placeholder = "{device}"

// ParseMapping checks a mapping rule; errors are CodeInvalidMapping.
func ParseMapping(source, pattern string) (Mapping, error) {
	m := Mapping{Source: source, Pattern: pattern}
	switch source {
	case SourceCN:
		if m.Pattern == "" {
			m.Pattern = placeholder
		}
	case SourceSANURI, SourceSANDNS:
		if pattern == "" {
			return Mapping{}, perr(CodeInvalidMapping, "a SAN mapping needs a pattern such as spiffe://example.com/device/{device}")
		}
	default:
		return Mapping{}, perr(CodeInvalidMapping, "source must be cn, san-uri or san-dns")
	}
	if len(m.Pattern) > 256 {
		return Mapping{}, perr(CodeInvalidMapping, "pattern longer than 256 characters")
	}
	if strings.Count(m.Pattern, placeholder) != 1 {
		return Mapping{}, perr(CodeInvalidMapping, "the pattern must contain {device} exactly once")
	}
	for _, r := range m.Pattern {
		if r < 0x21 || r > 0x7e {
			return Mapping{}, perr(CodeInvalidMapping, "the pattern must be printable ASCII without spaces")
		}
	}
	m.prefix, m.suffix, _ = strings.Cut(m.Pattern, placeholder)
	if source == SourceSANDNS {
		m.prefix, m.suffix = strings.ToLower(m.prefix), strings.ToLower(m.suffix)
	}
	return m, nil
}

// match extracts the device id from one name, or reports false.
func (m Mapping) match(name string) (string, bool) {
	if m.Source == SourceSANDNS {
		name = strings.ToLower(name)
	}
	if len(name) < len(m.prefix)+len(m.suffix) || !strings.HasPrefix(name, m.prefix) || !strings.HasSuffix(name, m.suffix) {
		return "", false
	}
	id := name[len(m.prefix) : len(name)-len(m.suffix)]
	return id, validDeviceID(id)
}

// DeviceID reads the device id from cert by the rule. Exactly one name of
// the source may match: a certificate whose names match the pattern twice
// with different ids is ambiguous and refused (CodeInvalidIdentity), as is
// one with no match. It verifies nothing; the caller checks the chain.
func (m Mapping) DeviceID(cert *x509.Certificate) (string, error) {
	var names []string
	switch m.Source {
	case SourceCN:
		for _, atv := range cert.Subject.Names {
			if atv.Type.Equal(oidCommonName) {
				s, _ := atv.Value.(string)
				names = append(names, s)
			}
		}
		if len(names) > 1 {
			return "", perr(CodeInvalidIdentity, "more than one common name")
		}
	case SourceSANURI:
		for _, u := range cert.URIs {
			names = append(names, u.String())
		}
	case SourceSANDNS:
		names = cert.DNSNames
	}
	var ids []string
	for _, n := range names {
		if id, ok := m.match(n); ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	switch len(ids) {
	case 0:
		return "", perr(CodeInvalidIdentity, "no "+m.Source+" name matches "+m.Pattern)
	case 1:
		return ids[0], nil
	}
	return "", perr(CodeInvalidIdentity, "several "+m.Source+" names match "+m.Pattern)
}

// HasFleetgateName reports whether cert carries any urn:fleetgate SAN.
// Such names are Fleetgate's to assign: certificates of an external CA that
// carry one are refused, whatever the mapping rule says.
func HasFleetgateName(cert *x509.Certificate) bool {
	for _, u := range cert.URIs {
		if isFleetgateURN(u) {
			return true
		}
	}
	return false
}

// RegistrationCodePrefix starts every registration code (RegistrationCode).
const RegistrationCodePrefix = "fleetgate-ca-verification:"

// RegistrationCode is the common name a tenant's verification certificate
// must carry to register an external CA (VerifyCAPossession). It is
// deterministic and public: it binds the proof to the tenant, and only the
// holder of the CA key can sign a certificate bearing it. Its format must
// never change: verification certificates already made would stop working.
func RegistrationCode(tenant string) string { return RegistrationCodePrefix + tenant }

// VerifyCAPossession checks a verification certificate: the proof that the
// tenant registering ca holds ca's private key, as AWS IoT asks for its CA
// registration. A CA certificate is public, so without this proof a tenant
// could register another party's CA (a chip vendor's, another tenant's) and
// have its devices' certificates authenticate into its own tenant.
//
// data must be exactly one PEM CERTIFICATE block of at most
// MaxExternalCASize bytes whose certificate is signed by ca's key
// (x509.Certificate.CheckSignatureFrom, which also wants ca allowed to sign
// certificates), has exactly one subject common name equal to code (see
// RegistrationCode) and is valid at now (NotBefore <= now <= NotAfter). ca
// must be a certificate ParseExternalCA accepted. It returns the
// verification certificate, or a *Error: CodeMalformedCertificate (missing
// or not one parsable PEM certificate), CodeTooLarge, CodeBadSignature (not
// signed by ca), CodeWeakKey (signed with MD5 or SHA-1), CodeNotCA,
// CodeIdentityMismatch (another common name) or CodeExpired.
func VerifyCAPossession(ca *x509.Certificate, data []byte, code string, now time.Time) (*x509.Certificate, error) {
	if len(data) > MaxExternalCASize {
		return nil, perr(CodeTooLarge, fmt.Sprintf("verification certificate exceeds %d bytes", MaxExternalCASize))
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, perr(CodeMalformedCertificate, "verification certificate missing: sign a certificate whose common name is "+code+" with the CA key")
	}
	block, rest := pem.Decode(data)
	if block != nil && strings.HasSuffix(block.Type, "PRIVATE KEY") {
		return nil, perr(CodeMalformedCertificate, "verification certificate is a private key, not a certificate (never send a key)")
	}
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, perr(CodeMalformedCertificate, "verification certificate is not a PEM certificate")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, perr(CodeMalformedCertificate, "data after the verification certificate's PEM block (want exactly one)")
	}
	vc, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, perr(CodeMalformedCertificate, "verification certificate: "+err.Error())
	}
	if ca == nil {
		return nil, perr(CodeBadSignature, "verification certificate is not signed by this CA")
	}
	if err := vc.CheckSignatureFrom(ca); err != nil {
		var insecure x509.InsecureAlgorithmError
		var constraint x509.ConstraintViolationError
		switch {
		case errors.As(err, &insecure):
			return nil, perr(CodeWeakKey, "verification certificate signed with the insecure "+x509.SignatureAlgorithm(insecure).String())
		case errors.As(err, &constraint):
			return nil, perr(CodeNotCA, "the CA may not sign certificates")
		}
		return nil, perr(CodeBadSignature, "verification certificate is not signed by this CA")
	}
	var cns []string
	for _, atv := range vc.Subject.Names {
		if atv.Type.Equal(oidCommonName) {
			s, _ := atv.Value.(string)
			cns = append(cns, s)
		}
	}
	if len(cns) != 1 || cns[0] != code {
		return nil, perr(CodeIdentityMismatch, "verification certificate's common name must be the registration code "+code)
	}
	if now.Before(vc.NotBefore) || now.After(vc.NotAfter) {
		return nil, perr(CodeExpired, "verification certificate is expired or not yet valid")
	}
	return vc, nil
}
