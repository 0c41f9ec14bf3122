package pki

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"
)

// testNow is the clock of every test: nothing here reads the real one.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testTenant = "acme"

var allKeyTypes = []KeyType{KeyECDSAP256, KeyEd25519, KeyRSA2048, KeyRSA3072, KeyRSA4096}

// caCache shares CAs between tests: RSA-4096 generation costs seconds,
// more under -race. Tests must not rely on a CA being fresh.
var caCache = struct {
	sync.Mutex
	m map[string]*CA
}{m: map[string]*CA{}}

func testCA(tb testing.TB, tenant string, kt KeyType) *CA {
	tb.Helper()
	caCache.Lock()
	defer caCache.Unlock()
	k := tenant + "/" + string(kt)
	if ca, ok := caCache.m[k]; ok {
		return ca
	}
	ca, err := NewCA(tenant, kt, 5*365*24*time.Hour, testNow.Add(-24*time.Hour))
	if err != nil {
		tb.Fatalf("NewCA(%q, %q): %v", tenant, kt, err)
	}
	caCache.m[k] = ca
	return ca
}

var keyCache = struct {
	sync.Mutex
	m map[string]crypto.Signer
}{m: map[string]crypto.Signer{}}

// testKey returns a (cached) device key: "p256", "p384", "p224", "p521",
// "ed25519", "rsa1024", "rsa2048".
func testKey(tb testing.TB, kind string) crypto.Signer {
	tb.Helper()
	keyCache.Lock()
	defer keyCache.Unlock()
	if k, ok := keyCache.m[kind]; ok {
		return k
	}
	var k crypto.Signer
	var err error
	switch kind {
	case "p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "p224":
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "p521":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case "rsa1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		tb.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		tb.Fatalf("generate %s: %v", kind, err)
	}
	keyCache.m[kind] = k
	return k
}

// csrDER makes a DER CSR signed by key. cn may be empty; uris are SAN URIs.
func csrDER(tb testing.TB, key crypto.Signer, cn string, uris ...string) []byte {
	tb.Helper()
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			tb.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		tb.Fatalf("CreateCertificateRequest: %v", err)
	}
	return der
}

func mustParseCSR(tb testing.TB, der []byte) *x509.CertificateRequest {
	tb.Helper()
	csr, err := ParseCSR(der)
	if err != nil {
		tb.Fatalf("ParseCSR: %v", err)
	}
	return csr
}

// issueFor issues a certificate for device id under ca with a fresh P-256 key.
func issueFor(tb testing.TB, ca *CA, id string) *x509.Certificate {
	tb.Helper()
	csr := mustParseCSR(tb, csrDER(tb, testKey(tb, "p256"), id))
	cert, _, err := ca.Issue(csr, DeviceIdentity{Tenant: ca.Tenant(), DeviceID: id}, IssueOptions{Now: testNow})
	if err != nil {
		tb.Fatalf("Issue: %v", err)
	}
	return cert
}

// withSPKI rewrites a DER CSR to carry spki instead of its own key. The
// signature is left as is, so it no longer verifies: the point is to reach
// the key checks with keys crypto/x509 cannot sign CSRs with.
func withSPKI(tb testing.TB, der, spki []byte) []byte {
	tb.Helper()
	var outer struct {
		TBS    asn1.RawValue
		SigAlg asn1.RawValue
		Sig    asn1.RawValue
	}
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		tb.Fatal(err)
	}
	var tbs struct {
		Version    int
		Subject    asn1.RawValue
		SPKI       asn1.RawValue
		Attributes asn1.RawValue
	}
	if _, err := asn1.Unmarshal(outer.TBS.FullBytes, &tbs); err != nil {
		tb.Fatal(err)
	}
	tbs.SPKI = asn1.RawValue{FullBytes: spki}
	newTBS, err := asn1.Marshal(tbs)
	if err != nil {
		tb.Fatal(err)
	}
	outer.TBS = asn1.RawValue{FullBytes: newTBS}
	out, err := asn1.Marshal(outer)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// x25519SPKI is a key-agreement-only key: it cannot sign a CSR at all.
func x25519SPKI(tb testing.TB) []byte {
	tb.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(k.PublicKey())
	if err != nil {
		tb.Fatal(err)
	}
	return spki
}

// dsaSPKI is a syntactically valid DSA key (RFC 3279 §2.3.2) with toy
// parameters: crypto/x509 parses DSA keys, so ParseCSR must refuse them.
func dsaSPKI(tb testing.TB) []byte {
	tb.Helper()
	params, err := asn1.Marshal(struct{ P, Q, G *big.Int }{big.NewInt(23), big.NewInt(11), big.NewInt(4)})
	if err != nil {
		tb.Fatal(err)
	}
	y, err := asn1.Marshal(big.NewInt(8))
	if err != nil {
		tb.Fatal(err)
	}
	return marshalSPKI(tb, asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}, asn1.RawValue{FullBytes: params}, y)
}

// unknownSPKI uses an algorithm OID nobody defines.
func unknownSPKI(tb testing.TB) []byte {
	return marshalSPKI(tb, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, asn1.NullRawValue, []byte{1, 2, 3})
}

func marshalSPKI(tb testing.TB, oid asn1.ObjectIdentifier, params asn1.RawValue, key []byte) []byte {
	tb.Helper()
	spki, err := asn1.Marshal(struct {
		Alg struct {
			OID    asn1.ObjectIdentifier
			Params asn1.RawValue
		}
		Key asn1.BitString
	}{
		Alg: struct {
			OID    asn1.ObjectIdentifier
			Params asn1.RawValue
		}{oid, params},
		Key: asn1.BitString{Bytes: key, BitLength: 8 * len(key)},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return spki
}

// wantCode fails unless err is a *Error with code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	var e *Error
	if !errors.As(err, &e) {
		tb.Fatalf("err = %v (%T), want *Error with code %q", err, err, code)
	}
	if e.Code != code {
		tb.Fatalf("code = %q (%v), want %q", e.Code, err, code)
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
