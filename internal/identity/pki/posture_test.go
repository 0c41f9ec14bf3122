package pki

import (
	"crypto"
	"crypto/x509"
	"testing"
	"time"
)

func TestWeakness(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	pub := func(kind string) crypto.PublicKey { return testKey(t, kind).Public() }
	tests := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"issued", issueFor(t, ca, "d"), ""},
		{"CA", ca.Cert, ""},
		{"nil", nil, ""},
		{"RSA-2048 SHA-256", &x509.Certificate{PublicKey: pub("rsa2048"), PublicKeyAlgorithm: x509.RSA, SignatureAlgorithm: x509.SHA256WithRSA}, ""},
		{"RSA-1024", &x509.Certificate{PublicKey: pub("rsa1024"), PublicKeyAlgorithm: x509.RSA, SignatureAlgorithm: x509.SHA256WithRSA}, "rsa-1024"},
		{"RSA-1024 and SHA-1", &x509.Certificate{PublicKey: pub("rsa1024"), PublicKeyAlgorithm: x509.RSA, SignatureAlgorithm: x509.SHA1WithRSA}, "rsa-1024"},
		{"P-224", &x509.Certificate{PublicKey: pub("p224"), PublicKeyAlgorithm: x509.ECDSA, SignatureAlgorithm: x509.ECDSAWithSHA256}, "ecdsa-p224"},
		{"P-521 is fine", &x509.Certificate{PublicKey: pub("p521"), PublicKeyAlgorithm: x509.ECDSA, SignatureAlgorithm: x509.ECDSAWithSHA512}, ""},
		{"SHA-1 RSA signature", &x509.Certificate{PublicKey: pub("rsa2048"), PublicKeyAlgorithm: x509.RSA, SignatureAlgorithm: x509.SHA1WithRSA}, "sha1-signature"},
		{"SHA-1 ECDSA signature", &x509.Certificate{PublicKey: pub("p256"), PublicKeyAlgorithm: x509.ECDSA, SignatureAlgorithm: x509.ECDSAWithSHA1}, "sha1-signature"},
		{"MD5 beats small key", &x509.Certificate{PublicKey: pub("rsa1024"), PublicKeyAlgorithm: x509.RSA, SignatureAlgorithm: x509.MD5WithRSA}, "md5-signature"},
		{"MD2", &x509.Certificate{PublicKey: pub("rsa2048"), PublicKeyAlgorithm: x509.RSA, SignatureAlgorithm: x509.MD2WithRSA}, "md2-signature"},
		{"DSA", &x509.Certificate{PublicKeyAlgorithm: x509.DSA, SignatureAlgorithm: x509.DSAWithSHA256}, "dsa-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Weakness(tt.cert); got != tt.want {
				t.Fatalf("Weakness = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExpiresWithin(t *testing.T) {
	cert := &x509.Certificate{NotAfter: testNow.Add(30 * 24 * time.Hour)}
	tests := []struct {
		name string
		cert *x509.Certificate
		d    time.Duration
		now  time.Time
		want bool
	}{
		{"well before", cert, 7 * 24 * time.Hour, testNow, false},
		{"inside the window", cert, 31 * 24 * time.Hour, testNow, true},
		{"exactly at the edge", cert, 30 * 24 * time.Hour, testNow, true},
		{"one second short", cert, 30*24*time.Hour - time.Second, testNow, false},
		{"already expired", cert, 0, testNow.Add(31 * 24 * time.Hour), true},
		{"nil", nil, time.Hour, testNow, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExpiresWithin(tt.cert, tt.d, tt.now); got != tt.want {
				t.Fatalf("ExpiresWithin = %v, want %v", got, tt.want)
			}
		})
	}
}
