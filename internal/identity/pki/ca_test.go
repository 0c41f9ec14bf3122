package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	for _, kt := range allKeyTypes {
		t.Run(string(kt), func(t *testing.T) {
			ca := testCA(t, testTenant, kt)
			c := ca.Cert
			if got, want := c.Subject.CommonName, "Fleetgate acme Device CA"; got != want {
				t.Errorf("CN = %q, want %q", got, want)
			}
			if !c.BasicConstraintsValid || !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero {
				t.Errorf("basic constraints: valid=%v ca=%v maxPathLen=%d zero=%v", c.BasicConstraintsValid, c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
			}
			if c.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
				t.Errorf("KeyUsage = %b, want certSign|crlSign", c.KeyUsage)
			}
			if len(c.SubjectKeyId) == 0 {
				t.Error("no SubjectKeyId")
			}
			if n := c.SerialNumber.BitLen(); n == 0 || n > 128 {
				t.Errorf("serial has %d bits", n)
			}
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("self-signature: %v", err)
			}
			if !bytes.Contains(ca.CertPEM, []byte("BEGIN CERTIFICATE")) {
				t.Error("CertPEM is not PEM")
			}
			if ca.Tenant() != testTenant {
				t.Errorf("Tenant() = %q", ca.Tenant())
			}
		})
	}
}

func TestNewCADefaults(t *testing.T) {
	ca, err := NewCA("globex", "", 0, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("default key algorithm = %v, want ECDSA", ca.Cert.PublicKeyAlgorithm)
	}
	if got := ca.Cert.NotAfter.Sub(testNow); got != DefaultCAValidity {
		t.Errorf("validity = %v, want %v", got, DefaultCAValidity)
	}
	if !ca.Cert.NotBefore.Equal(testNow.Add(-backdate)) {
		t.Errorf("NotBefore = %v, want now-%v", ca.Cert.NotBefore, backdate)
	}
}

func TestNewCARejects(t *testing.T) {
	tests := []struct {
		name     string
		tenant   string
		kt       KeyType
		validity time.Duration
		now      time.Time
		code     string
	}{
		{"empty tenant", "", KeyECDSAP256, time.Hour, testNow, CodeInvalidIdentity},
		{"tenant with colon", "a:b", KeyECDSAP256, time.Hour, testNow, CodeInvalidIdentity},
		{"tenant too long", strings.Repeat("a", 65), KeyECDSAP256, time.Hour, testNow, CodeInvalidIdentity},
		{"unknown key type", "acme", "dsa-1024", time.Hour, testNow, CodeUnsupportedKey},
		{"negative validity", "acme", KeyECDSAP256, -time.Hour, testNow, CodeInvalidValidity},
		{"zero now", "acme", KeyECDSAP256, time.Hour, time.Time{}, CodeInvalidValidity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCA(tt.tenant, tt.kt, tt.validity, tt.now)
			wantCode(t, err, tt.code)
		})
	}
}

func testKEK(b byte) []byte { return bytes.Repeat([]byte{b}, KEKSize) }

func TestSealOpenRoundTrip(t *testing.T) {
	for _, kt := range allKeyTypes {
		t.Run(string(kt), func(t *testing.T) {
			ca := testCA(t, testTenant, kt)
			sealed, err := ca.SealKey(testKEK(1))
			if err != nil {
				t.Fatal(err)
			}
			if sealed[0] != sealVersion1 {
				t.Errorf("version byte = %#x", sealed[0])
			}
			opened, err := OpenCA(ca.CertPEM, sealed, testKEK(1), testTenant)
			if err != nil {
				t.Fatalf("OpenCA: %v", err)
			}
			// The reopened CA must sign what the original certificate
			// verifies: issue with it and verify against the original.
			leaf := issueFor(t, opened, "dev-1")
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca.Cert), CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatalf("leaf from reopened CA does not verify: %v", err)
			}
		})
	}
}

func TestSealIsRandomized(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	a, _ := ca.SealKey(testKEK(1))
	b, _ := ca.SealKey(testKEK(1))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same key are identical: nonce reuse")
	}
}

func TestOpenCAFailsAlike(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	other := testCA(t, "globex", KeyECDSAP256)
	sealed, err := ca.SealKey(testKEK(1))
	if err != nil {
		t.Fatal(err)
	}
	otherSealed, err := other.SealKey(testKEK(1))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name   string
		sealed []byte
		kek    []byte
		tenant string
		cert   []byte
	}{
		{"wrong KEK", sealed, testKEK(2), testTenant, ca.CertPEM},
		{"tampered version", flip(0), testKEK(1), testTenant, ca.CertPEM},
		{"tampered nonce", flip(1), testKEK(1), testTenant, ca.CertPEM},
		{"tampered ciphertext", flip(1 + gcmNonceSize + 3), testKEK(1), testTenant, ca.CertPEM},
		{"tampered tag", flip(len(sealed) - 1), testKEK(1), testTenant, ca.CertPEM},
		{"truncated", sealed[:len(sealed)-1], testKEK(1), testTenant, ca.CertPEM},
		{"header only", sealed[:1+gcmNonceSize], testKEK(1), testTenant, ca.CertPEM},
		{"empty", nil, testKEK(1), testTenant, ca.CertPEM},
		{"extended", append(bytes.Clone(sealed), 0), testKEK(1), testTenant, ca.CertPEM},
		{"other tenant", sealed, testKEK(1), "globex", other.CertPEM},
		{"other tenant's key opened as ours", otherSealed, testKEK(1), testTenant, ca.CertPEM},
	}
	var msgs []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OpenCA(tt.cert, tt.sealed, tt.kek, tt.tenant)
			if got != nil || !errors.Is(err, ErrKeyUnseal) {
				t.Fatalf("OpenCA = %v, %v; want ErrKeyUnseal", got, err)
			}
			msgs = append(msgs, err.Error())
		})
	}
	for _, m := range msgs {
		if m != msgs[0] {
			t.Fatalf("failures are distinguishable: %q vs %q", m, msgs[0])
		}
	}
}

func TestOpenCAOtherErrors(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	sealed, err := ca.SealKey(testKEK(1))
	if err != nil {
		t.Fatal(err)
	}
	// Another CA of the same tenant: the key opens but is not the cert's.
	rotated, err := NewCA(testTenant, KeyECDSAP256, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := func() []byte {
		csr := mustParseCSR(t, csrDER(t, testKey(t, "p256"), "d"))
		_, p, err := ca.Issue(csr, DeviceIdentity{testTenant, "d"}, IssueOptions{Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}()
	tests := []struct {
		name   string
		cert   []byte
		kek    []byte
		tenant string
	}{
		{"key of another certificate", rotated.CertPEM, testKEK(1), testTenant},
		{"not a CA", leafPEM, testKEK(1), testTenant},
		{"not PEM", []byte("nope"), testKEK(1), testTenant},
		{"two PEM blocks", append(bytes.Clone(ca.CertPEM), ca.CertPEM...), testKEK(1), testTenant},
		{"short KEK", ca.CertPEM, testKEK(1)[:16], testTenant},
		{"invalid tenant", ca.CertPEM, testKEK(1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OpenCA(tt.cert, sealed, tt.kek, tt.tenant)
			if got != nil || err == nil || errors.Is(err, ErrKeyUnseal) {
				t.Fatalf("OpenCA = %v, %v; want a specific error", got, err)
			}
		})
	}
	if _, err := ca.SealKey(testKEK(1)[:31]); err == nil {
		t.Error("SealKey accepted a 31-byte KEK")
	}
}

func TestParseKEK(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb}, 32) // 0xfb makes std and URL alphabets differ
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"std padded", base64.StdEncoding.EncodeToString(key), false},
		{"std raw", base64.RawStdEncoding.EncodeToString(key), false},
		{"url padded", base64.URLEncoding.EncodeToString(key), false},
		{"url raw", base64.RawURLEncoding.EncodeToString(key), false},
		{"trailing newline", base64.StdEncoding.EncodeToString(key) + "\n", false},
		{"31 bytes", base64.StdEncoding.EncodeToString(key[:31]), true},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(key), 1)), true},
		{"not base64", "s3cr3t-passphrase-that-is-not-base64!", true},
		{"hex", strings.Repeat("ab", 32), true},
		{"empty", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKEK(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseKEK accepted %q", tt.in)
				}
				if tt.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
					t.Fatalf("error leaks the input: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, key) {
				t.Fatalf("ParseKEK = %x", got)
			}
		})
	}
}
