package pki

import (
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOpenSSLInterop feeds what the package produces to OpenSSL, an
// implementation that shares no code with crypto/x509 or x/crypto/ocsp.
// It is skipped where openssl is not installed.
func TestOpenSSLInterop(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	at := strconv.FormatInt(testNow.Unix(), 10)
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519, KeyRSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			ca := testCA(t, testTenant, kt)
			leaf := issueFor(t, ca, "dev-1")
			caPath := write(string(kt)+"-ca.pem", ca.CertPEM)
			leafPath := write(string(kt)+"-leaf.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))

			if out, err := run("verify", "-attime", at, "-purpose", "sslclient", "-CAfile", caPath, leafPath); err != nil {
				t.Errorf("openssl verify sslclient: %v\n%s", err, out)
			}
			if out, err := run("verify", "-attime", at, "-purpose", "sslserver", "-CAfile", caPath, leafPath); err == nil {
				t.Errorf("openssl accepts the device certificate for TLS servers:\n%s", out)
			}

			body, err := EncodeESTResponse(leaf)
			if err != nil {
				t.Fatal(err)
			}
			p7 := write(string(kt)+".p7", []byte("-----BEGIN PKCS7-----\n"+strings.ReplaceAll(string(body), "\r\n", "\n")+"-----END PKCS7-----\n"))
			if out, err := run("pkcs7", "-in", p7, "-print_certs", "-noout"); err != nil || !strings.Contains(out, "dev-1") {
				t.Errorf("openssl pkcs7: %v\n%s", err, out)
			}

			crl, err := ca.CRL([]Revoked{{Serial: leaf.SerialNumber, At: testNow, Reason: 1}}, big.NewInt(1), testNow, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			crlPath := write(string(kt)+".crl", crl)
			if out, err := run("crl", "-inform", "DER", "-in", crlPath, "-CAfile", caPath, "-noout", "-text"); err != nil ||
				!strings.Contains(out, "verify OK") || !strings.Contains(strings.ToUpper(out), strings.ToUpper(leaf.SerialNumber.Text(16))) {
				t.Errorf("openssl crl: %v\n%s", err, out)
			}

			// openssl writes a request with a nonce; the response must
			// verify against the CA and echo the nonce.
			reqPath := filepath.Join(dir, string(kt)+"-req.der")
			if out, err := run("ocsp", "-issuer", caPath, "-cert", leafPath, "-reqout", reqPath); err != nil {
				t.Fatalf("openssl ocsp -reqout: %v\n%s", err, out)
			}
			req, err := os.ReadFile(reqPath)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ca.OCSPResponse(req, func(*big.Int) (OCSPStatus, time.Time, int) {
				return OCSPRevoked, testNow.Add(-time.Minute), 1
			}, time.Now()) // openssl checks thisUpdate/nextUpdate against its own clock
			if err != nil {
				t.Fatal(err)
			}
			respPath := write(string(kt)+"-resp.der", resp)
			// Given -reqin alone, openssl checks signature and nonce;
			// given -cert it builds a fresh request (and nonce) to
			// match statuses against, so the status check runs
			// separately with -no_nonce.
			if out, err := run("ocsp", "-respin", respPath, "-reqin", reqPath, "-VAfile", caPath); err != nil ||
				!strings.Contains(out, "Response verify OK") || strings.Contains(strings.ToLower(out), "nonce") {
				t.Errorf("openssl ocsp signature/nonce: %v\n%s", err, out)
			}
			if out, err := run("ocsp", "-respin", respPath, "-issuer", caPath, "-VAfile", caPath, "-cert", leafPath, "-no_nonce"); err != nil ||
				!strings.Contains(out, leafPath+": revoked") || !strings.Contains(out, "keyCompromise") {
				t.Errorf("openssl ocsp status: %v\n%s", err, out)
			}
		})
	}
}
