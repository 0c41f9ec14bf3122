package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/config"
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

// TestClientCAOnTheWire: with --tls-client-ca, handshakes over a real
// socket accept a client certificate issued by that CA (twice: the second
// from the cache), refuse one from another CA and, with client-auth
// require, refuse a client without a certificate; with request, such a
// client still connects.
func TestClientCAOnTheWire(t *testing.T) {
	now := time.Now()
	ca, caKey := testCert(t, "client-ca", nil, nil, true, nil, now.Add(-time.Hour), now.Add(24*time.Hour))
	other, otherKey := testCert(t, "other-ca", nil, nil, true, nil, now.Add(-time.Hour), now.Add(24*time.Hour))
	pairOf := func(parent *x509.Certificate, key *ecdsa.PrivateKey) tls.Certificate {
		c, k := testCert(t, "device", parent, key, false, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, now.Add(-time.Hour), now.Add(time.Hour))
		return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: k, Leaf: c}
	}
	good, foreign := pairOf(ca, caKey), pairOf(other, otherKey)
	for _, mode := range []string{"require", "request"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			_, srvCert, srvKey := selfSigned(t, "localhost", true)
			files := map[string][]byte{"tls.crt": srvCert, "tls.key": srvKey, "ca.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})}
			for n, b := range files {
				_ = os.WriteFile(filepath.Join(dir, n), b, 0o600)
			}
			cfg := config.Default()
			cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.HTTPSAddr = dir, "127.0.0.1:0", "", "127.0.0.1:0"
			cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA, cfg.ClientAuth = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.pem"), mode
			cfg.AdminToken = "fgt_clientca-test-token-0123456789ab"
			a := startNode(t, cfg)
			addr := strings.TrimPrefix(a.DataURLs()[0], "https://")
			dial := func(certs []tls.Certificate) error {
				// GetClientCertificate sends the certificate even when its
				// issuer is not among the CAs the server names.
				c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true,
					GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
						if len(certs) == 0 {
							return &tls.Certificate{}, nil
						}
						return &certs[0], nil
					}})
				if err != nil {
					return err
				}
				defer c.Close()
				// TLS 1.3: the server's verdict on the client certificate
				// arrives after the client's handshake returns; a read
				// surfaces it.
				_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Read(make([]byte, 1))
				return err
			}
			for _, tc := range []struct {
				name  string
				certs []tls.Certificate
				ok    bool
			}{
				{"issued by the client CA", []tls.Certificate{good}, true},
				{"again, from the cache", []tls.Certificate{good}, true},
				{"another CA", []tls.Certificate{foreign}, false},
				{"no certificate", nil, mode == "request"},
			} {
				if err := dial(tc.certs); (err == nil) != tc.ok {
					t.Errorf("%s: %v, want success %v", tc.name, err, tc.ok)
				}
			}
		})
	}
}
