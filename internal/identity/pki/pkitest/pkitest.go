// Package pkitest makes external CAs for tests outside package pki: a CA
// certificate with its key, the verification certificate that proves
// possession of the key when the CA is registered (pki.VerifyCAPossession),
// and client certificates the CA issues. Keys are fresh P-256 keys and
// validity is relative to the real clock, as the admin API checks it.
package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/pki"
)

// ExternalCA is a CA made by a test, as a tenant would run one.
type ExternalCA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  string // Cert in PEM, as sent to POST /admin/v1/ca/external
}

var serial atomic.Int64

func nextSerial() *big.Int { return big.NewInt(time.Now().UnixNano() + serial.Add(1)) }

// NewExternalCA makes a self-signed P-256 CA named "Factory CA", valid from
// an hour ago for a year, with cA=TRUE and keyCertSign. mod, when not nil,
// edits the template before signing (to make invalid CAs).
func NewExternalCA(tb testing.TB, mod func(*x509.Certificate)) *ExternalCA {
	tb.Helper()
	key := NewKey(tb)
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: "Factory CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(365 * 24 * time.Hour), BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	if mod != nil {
		mod(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatalf("pkitest: create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("pkitest: parse CA: %v", err)
	}
	return &ExternalCA{Cert: cert, Key: key, PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// NewKey returns a fresh P-256 key.
func NewKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("pkitest: generate key: %v", err)
	}
	return key
}

// Verification returns the PEM verification certificate that registers ca
// in tenant: common name pki.RegistrationCode(tenant), signed by ca's key,
// valid from a minute ago for a day.
func (ca *ExternalCA) Verification(tb testing.TB, tenant string) string {
	tb.Helper()
	return ca.VerificationWith(tb, func(c *x509.Certificate) { c.Subject.CommonName = pki.RegistrationCode(tenant) })
}

// VerificationWith is Verification with a template mod edits before
// signing (common name, validity), to make refused proofs. The template's
// common name is empty until mod sets it.
func (ca *ExternalCA) VerificationWith(tb testing.TB, mod func(*x509.Certificate)) string {
	tb.Helper()
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour)}
	if mod != nil {
		mod(tmpl)
	}
	return string(ca.Issue(tb, tmpl, NewKey(tb).Public()))
}

// Issue signs tmpl for pub with the CA key and returns the PEM
// certificate. A zero SerialNumber gets a fresh one.
func (ca *ExternalCA) Issue(tb testing.TB, tmpl *x509.Certificate, pub crypto.PublicKey) []byte {
	tb.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = nextSerial()
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		tb.Fatalf("pkitest: issue: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
