// Package pki is the per-tenant certificate authority that issues device
// client certificates: CA creation and key sealing, issuance from PKCS#10
// requests, CRLs, OCSP responses and the EST (RFC 7030) wire encodings.
//
// The package is pure logic. It holds no storage, starts no server and reads
// no clock: every function that depends on time takes now, so tests and the
// caller decide what "now" is. Randomness (keys, serials, nonces,
// signatures) comes from crypto/rand, which since Go 1.26 is the only source
// the crypto packages honour; tests that need reproducible bytes use
// testing/cryptotest.SetGlobalRandom rather than an io.Reader parameter.
//
// A *CA is immutable after NewCA or OpenCA returns and is safe for concurrent
// use by any number of goroutines.
package pki

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// KeyType names a CA key algorithm and size.
type KeyType string

// Supported CA key types. ECDSA P-256 is the default: it is what constrained
// devices verify fastest and what every TLS stack on them supports.
const (
	KeyECDSAP256 KeyType = "ecdsa-p256"
	KeyEd25519   KeyType = "ed25519"
	KeyRSA2048   KeyType = "rsa-2048"
	KeyRSA3072   KeyType = "rsa-3072"
	KeyRSA4096   KeyType = "rsa-4096"
)

const (
	// DefaultCAValidity applies when NewCA is given a zero validity.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour

	// backdate is subtracted from now for NotBefore, so that a peer whose
	// clock runs a little behind ours (another gateway node, a device)
	// does not reject a certificate as not yet valid.
	backdate = 5 * time.Minute

	// KEKSize is the length of a key-encryption key: AES-256.
	KEKSize = 32

	sealVersion1 = 0x01
	gcmNonceSize = 12
)

// CA is one tenant's certificate authority. Cert and CertPEM are public and
// may be published (EST /cacerts, trust bundles); the private key never
// leaves the value except sealed by SealKey.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte

	key    crypto.Signer
	tenant string

	// Signing parameters for structures the package signs itself (OCSP),
	// derived once from the key.
	sigAlg  pkix.AlgorithmIdentifier
	sigHash crypto.Hash

	// keyBits is the subjectPublicKey BIT STRING content of the CA
	// certificate: what OCSP CertID issuerKeyHash and the byKey responder
	// id hash (RFC 6960 §4.1.1, §4.2.1).
	keyBits          []byte
	responderKeyHash []byte
}

// NewCA creates a self-signed root for tenant. The root may sign only end
// entities (BasicConstraints cA with pathLenConstraint 0, RFC 5280 §4.2.1.9):
// a device certificate can never act as a CA, and the tenant CA cannot mint
// intermediates. KeyUsage is keyCertSign|cRLSign (RFC 5280 §4.2.1.3) plus
// digitalSignature, which the CA/Browser Forum Baseline Requirements
// (§7.1.2.1) require of a root that signs OCSP responses itself, as this one
// does. A zero validity means DefaultCAValidity; kt "" means ecdsa-p256.
func NewCA(tenant string, kt KeyType, validity time.Duration, now time.Time) (*CA, error) {
	if !validTenant(tenant) {
		return nil, perr(CodeInvalidIdentity, "tenant id must be 1-64 characters of [A-Za-z0-9._-]")
	}
	if validity == 0 {
		validity = DefaultCAValidity
	}
	if validity < 0 {
		return nil, perr(CodeInvalidValidity, "CA validity must be positive")
	}
	if now.IsZero() {
		return nil, perr(CodeInvalidValidity, "now is required")
	}
	key, err := generateKey(kt)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Fleetgate " + tenant + " Device CA"},
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              now.Add(validity).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		// SubjectKeyId is left empty: for CA templates crypto/x509 derives
		// it from the public key (RFC 5280 §4.2.1.2, RFC 7093 §2), and
		// issued certificates copy it as their AuthorityKeyId.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA: %w", err)
	}
	return newCA(cert, key, tenant)
}

// generateKey makes a fresh CA key of type kt.
func generateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case "", KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case KeyRSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, perr(CodeUnsupportedKey, fmt.Sprintf("unknown CA key type %q", string(kt)))
}

// newCA assembles a CA from a parsed certificate and its key, deriving what
// OCSP signing needs. cert and key must already be known to match.
func newCA(cert *x509.Certificate, key crypto.Signer, tenant string) (*CA, error) {
	alg, h, err := signatureParams(key.Public())
	if err != nil {
		return nil, err
	}
	bits, err := subjectPublicKeyBits(cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, fmt.Errorf("pki: CA public key: %w", err)
	}
	kh := sha1.Sum(bits) // RFC 6960 §4.2.1: KeyHash is SHA-1, not a choice.
	return &CA{
		Cert:             cert,
		CertPEM:          pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		key:              key,
		tenant:           tenant,
		sigAlg:           alg,
		sigHash:          h,
		keyBits:          bits,
		responderKeyHash: kh[:],
	}, nil
}

// Tenant is the tenant this CA issues for. Issue refuses other tenants, and
// callers that accept a client certificate chained to this CA must check
// that IdentityOf(leaf).Tenant equals it.
func (ca *CA) Tenant() string { return ca.tenant }

// SealKey encrypts the CA private key for storage. The layout is
//
//	version (1 byte, 0x01) | nonce (12 bytes) | AES-256-GCM(PKCS#8 key)
//
// with additional data version||tenant, so the blob is bound to its tenant
// (moving it to another tenant's row makes it unopenable) and to its format
// version. Nonces are random: a KEK seals one blob per CA creation or KEK
// rotation, far below the 2^32 invocations NIST SP 800-38D §8.3 allows.
func (ca *CA) SealKey(kek []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	plain, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: marshal CA key: %w", err)
	}
	defer clear(plain)
	out := make([]byte, 1+gcmNonceSize, 1+gcmNonceSize+len(plain)+aead.Overhead())
	out[0] = sealVersion1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("pki: nonce: %w", err)
	}
	return aead.Seal(out, out[1:1+gcmNonceSize], plain, sealAD(sealVersion1, ca.tenant)), nil
}

// OpenCA rebuilds a CA from its stored certificate and sealed key. Any
// failure to open the key is ErrKeyUnseal (see there for why it is not more
// precise). A certificate that is not a CA, or whose public key is not the
// unsealed key's, is reported separately: both are public data, so saying so
// reveals nothing.
func OpenCA(certPEM, sealedKey, kek []byte, tenant string) (*CA, error) {
	if !validTenant(tenant) {
		return nil, perr(CodeInvalidIdentity, "tenant id must be 1-64 characters of [A-Za-z0-9._-]")
	}
	block, rest := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("pki: CA certificate must be exactly one PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, errors.New("pki: certificate is not a CA")
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(sealedKey) < 1+gcmNonceSize+aead.Overhead() || sealedKey[0] != sealVersion1 {
		return nil, ErrKeyUnseal
	}
	plain, err := aead.Open(nil, sealedKey[1:1+gcmNonceSize], sealedKey[1+gcmNonceSize:], sealAD(sealedKey[0], tenant))
	if err != nil {
		return nil, ErrKeyUnseal
	}
	defer clear(plain)
	parsed, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		return nil, ErrKeyUnseal
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, ErrKeyUnseal
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("pki: sealed key does not match the CA certificate")
	}
	return newCA(cert, key, tenant)
}

func sealAD(version byte, tenant string) []byte {
	return append([]byte{version}, tenant...)
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("pki: key-encryption key must be %d bytes, got %d", KEKSize, len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return cipher.NewGCM(block)
}

// ParseKEK decodes a key-encryption key from configuration: base64 in the
// standard or URL alphabet, padded or not, surrounding whitespace ignored
// (files and env vars often end in a newline), decoding to exactly 32 bytes.
// Errors describe the problem but never echo the input, which is a secret.
func ParseKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("pki: key-encryption key is empty")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		k, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(k) != KEKSize {
			clear(k)
			return nil, fmt.Errorf("pki: key-encryption key must decode to %d bytes, got %d", KEKSize, len(k))
		}
		return k, nil
	}
	return nil, errors.New("pki: key-encryption key is not valid base64 (standard or URL alphabet)")
}

// signatureParams is the AlgorithmIdentifier and digest for signing with a
// key of pub's type, matching what crypto/x509 picks for certificates:
// RFC 5758 §3.2 (ECDSA, parameters absent), RFC 4055 §5 (RSA PKCS#1 v1.5,
// NULL parameters), RFC 8410 §3 (Ed25519, parameters absent, no pre-hash).
func signatureParams(pub crypto.PublicKey) (pkix.AlgorithmIdentifier, crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}, crypto.SHA256, nil
		case elliptic.P384():
			return pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA384}, crypto.SHA384, nil
		case elliptic.P521():
			return pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA512}, crypto.SHA512, nil
		}
	case *rsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: oidSHA256WithRSA, Parameters: asn1.NullRawValue}, crypto.SHA256, nil
	case ed25519.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: oidEd25519}, 0, nil
	}
	return pkix.AlgorithmIdentifier{}, 0, perr(CodeUnsupportedKey, fmt.Sprintf("cannot sign with %T", pub))
}

// sign signs msg with the CA key using the parameters from signatureParams.
func (ca *CA) sign(msg []byte) ([]byte, error) {
	if ca.sigHash == 0 {
		return ca.key.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	h := ca.sigHash.New()
	h.Write(msg)
	return ca.key.Sign(rand.Reader, h.Sum(nil), ca.sigHash)
}

var (
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// subjectPublicKeyBits returns the subjectPublicKey BIT STRING contents of a
// SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
func subjectPublicKeyBits(spki []byte) ([]byte, error) {
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(spki, &info)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing data after SubjectPublicKeyInfo")
	}
	return info.PublicKey.RightAlign(), nil
}

// randomSerial returns a positive 128-bit random serial. RFC 5280 §4.1.2.2
// caps serials at 20 octets; the CA/Browser Forum Baseline Requirements
// (§7.1) ask for at least 64 bits of CSPRNG output so that serials cannot be
// predicted, the defence against chosen-prefix collision attacks such as the
// 2008 MD5 rogue-CA certificate, which relied on a predictable serial.
func randomSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("pki: serial: %w", err)
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}
