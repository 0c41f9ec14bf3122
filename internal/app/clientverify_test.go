package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

func testCert(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool, eku []x509.ExtKeyUsage, nb, na time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, NotBefore: nb, NotAfter: na,
		ExtKeyUsage: eku, BasicConstraintsValid: true, IsCA: ca}
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// TestChainVerifier: the cached verifier accepts what crypto/tls would
// (a chain to the client CA, for client authentication, within its
// validity), refuses the rest, and never lets the cache outlive a
// certificate's validity.
func TestChainVerifier(t *testing.T) {
	now := time.Now()
	ca, caKey := testCert(t, "ca", nil, nil, true, nil, now.Add(-time.Hour), now.Add(24*time.Hour))
	other, otherKey := testCert(t, "other-ca", nil, nil, true, nil, now.Add(-time.Hour), now.Add(24*time.Hour))
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	good, _ := testCert(t, "good", ca, caKey, false, client, now.Add(-time.Hour), now.Add(2*time.Hour))
	foreign, _ := testCert(t, "foreign", other, otherKey, false, client, now.Add(-time.Hour), now.Add(2*time.Hour))
	serverOnly, _ := testCert(t, "server", ca, caKey, false, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, now.Add(-time.Hour), now.Add(2*time.Hour))
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	tests := []struct {
		name     string
		required bool
		certs    []*x509.Certificate
		at       time.Time
		wantErr  bool
	}{
		{"valid chain", false, []*x509.Certificate{good}, now, false},
		{"valid chain again (cached)", false, []*x509.Certificate{good}, now, false},
		{"cached chain after the certificate expired", false, []*x509.Certificate{good}, now.Add(3 * time.Hour), true},
		{"cached chain before it is valid", false, []*x509.Certificate{good}, now.Add(-2 * time.Hour), true},
		{"another CA", false, []*x509.Certificate{foreign}, now, true},
		{"another CA presenting the real CA as intermediate", false, []*x509.Certificate{foreign, ca}, now, true},
		{"not for client authentication", false, []*x509.Certificate{serverOnly}, now, true},
		{"no certificate, optional", false, nil, now, false},
		{"no certificate, required", true, nil, now, true},
	}
	v := newChainVerifier(roots, false)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v.required = tc.required
			if err := v.verify(tc.certs, tc.at); (err != nil) != tc.wantErr {
				t.Fatalf("verify: %v, want error %v", err, tc.wantErr)
			}
		})
	}
	if len(v.ok) != 1 {
		t.Fatalf("cache holds %d chains, want only the good one", len(v.ok))
	}
}

// BenchmarkChainVerifier compares a cached verification with the full one
// crypto/tls would do on every handshake (same run: compare the ratio).
func BenchmarkChainVerifier(b *testing.B) {
	now := time.Now()
	ca, caKey := testCert(b, "ca", nil, nil, true, nil, now.Add(-time.Hour), now.Add(24*time.Hour))
	leaf, _ := testCert(b, "leaf", ca, caKey, false, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, now.Add(-time.Hour), now.Add(2*time.Hour))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	certs := []*x509.Certificate{leaf}
	b.Run("cached", func(b *testing.B) {
		v := newChainVerifier(roots, false)
		b.ReportAllocs()
		for b.Loop() {
			if err := v.verify(certs, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v := newChainVerifier(roots, false)
			if err := v.verify(certs, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
