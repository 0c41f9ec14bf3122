package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
)

// parseCertsOnly is an independent reader for the certs-only messages the
// package writes: it walks the DER element by element with asn1.RawValue
// instead of reusing the package's marshalling structs, so a mistake there
// cannot hide itself. It enforces the RFC 5652 degenerate-SignedData shape
// and returns the certificates.
func parseCertsOnly(der []byte) ([]*x509.Certificate, error) {
	next := func(b []byte, class, tag int, what string) (asn1.RawValue, []byte, error) {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(b, &v)
		if err != nil {
			return v, nil, fmt.Errorf("%s: %w", what, err)
		}
		if v.Class != class || v.Tag != tag {
			return v, nil, fmt.Errorf("%s: class %d tag %d, want %d/%d", what, v.Class, v.Tag, class, tag)
		}
		return v, rest, nil
	}
	ci, rest, err := next(der, asn1.ClassUniversal, asn1.TagSequence, "ContentInfo")
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("ContentInfo: %v, %d trailing bytes", err, len(rest))
	}
	var ct asn1.ObjectIdentifier
	body, err := asn1.Unmarshal(ci.Bytes, &ct)
	if err != nil || !ct.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}) {
		return nil, fmt.Errorf("contentType %v: %v", ct, err)
	}
	explicit, rest, err := next(body, asn1.ClassContextSpecific, 0, "content [0]")
	if err != nil || len(rest) != 0 || !explicit.IsCompound {
		return nil, fmt.Errorf("content [0]: %v", err)
	}
	sd, rest, err := next(explicit.Bytes, asn1.ClassUniversal, asn1.TagSequence, "SignedData")
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("SignedData: %v", err)
	}
	var version int
	b, err := asn1.Unmarshal(sd.Bytes, &version)
	if err != nil || version != 1 {
		return nil, fmt.Errorf("version %d: %v", version, err)
	}
	digestAlgs, b, err := next(b, asn1.ClassUniversal, asn1.TagSet, "digestAlgorithms")
	if err != nil || len(digestAlgs.Bytes) != 0 {
		return nil, fmt.Errorf("digestAlgorithms must be an empty SET: %v", err)
	}
	eci, b, err := next(b, asn1.ClassUniversal, asn1.TagSequence, "encapContentInfo")
	if err != nil {
		return nil, err
	}
	var eType asn1.ObjectIdentifier
	if r, err := asn1.Unmarshal(eci.Bytes, &eType); err != nil || len(r) != 0 || !eType.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}) {
		return nil, fmt.Errorf("encapContentInfo must be id-data without content: %v %v", eType, err)
	}
	certSet, b, err := next(b, asn1.ClassContextSpecific, 0, "certificates [0]")
	if err != nil {
		return nil, err
	}
	signers, b, err := next(b, asn1.ClassUniversal, asn1.TagSet, "signerInfos")
	if err != nil || len(signers.Bytes) != 0 || len(b) != 0 {
		return nil, fmt.Errorf("signerInfos must be an empty SET and last: %v", err)
	}
	return x509.ParseCertificates(certSet.Bytes)
}

func decodeESTBody(t *testing.T, body []byte) []byte {
	t.Helper()
	for _, line := range strings.Split(strings.TrimRight(string(body), "\r\n"), "\r\n") {
		if len(line) > 76 {
			t.Fatalf("line of %d characters, MIME allows 76", len(line))
		}
	}
	der, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(body)))
	if err != nil {
		t.Fatalf("EST body is not base64: %v", err)
	}
	return der
}

// wrap breaks s into lines of n characters ending in eol.
func wrap(s string, n int, eol string) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + eol)
		s = s[n:]
	}
	b.WriteString(s + eol)
	return b.String()
}

func TestESTRoundTrip(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	csr := csrDER(t, testKey(t, "p256"), "dev-1")
	b64 := base64.StdEncoding.EncodeToString(csr)
	bodies := []struct {
		name string
		body string
	}{
		{"one line", b64},
		{"64-column LF", wrap(b64, 64, "\n")},
		{"76-column CRLF", wrap(b64, 76, "\r\n")},
		{"unpadded", base64.RawStdEncoding.EncodeToString(csr)},
		{"surrounding blanks", "\n  " + b64 + "  \n"},
	}
	for _, tt := range bodies {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeESTRequest([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeESTRequest: %v", err)
			}
			if !bytes.Equal(req.Raw, csr) {
				t.Fatal("decoded CSR differs")
			}
			cert, _, err := ca.Issue(req, DeviceIdentity{testTenant, "dev-1"}, IssueOptions{Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			body, err := EncodeESTResponse(cert)
			if err != nil {
				t.Fatal(err)
			}
			certs, err := parseCertsOnly(decodeESTBody(t, body))
			if err != nil {
				t.Fatalf("certs-only: %v", err)
			}
			if len(certs) != 1 || !certs[0].Equal(cert) {
				t.Fatalf("got %d certificates back", len(certs))
			}
		})
	}
}

func TestCACertsPKCS7(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519, KeyRSA4096} {
		t.Run(string(kt), func(t *testing.T) {
			ca := testCA(t, testTenant, kt)
			body, err := ca.CACertsPKCS7()
			if err != nil {
				t.Fatal(err)
			}
			certs, err := parseCertsOnly(decodeESTBody(t, body))
			if err != nil {
				t.Fatal(err)
			}
			if len(certs) != 1 || !certs[0].Equal(ca.Cert) {
				t.Fatal("cacerts does not hold the CA certificate")
			}
		})
	}
}

func TestCertsOnlySortsSet(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	a, b := issueFor(t, ca, "a"), issueFor(t, ca, "b")
	x, err := certsOnly(a.Raw, b.Raw)
	if err != nil {
		t.Fatal(err)
	}
	y, err := certsOnly(b.Raw, a.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatal("SET OF Certificate depends on input order: not DER")
	}
	certs, err := parseCertsOnly(x)
	if err != nil || len(certs) != 2 {
		t.Fatalf("%d certs, %v", len(certs), err)
	}
}

func TestDecodeESTRequestRejects(t *testing.T) {
	csr := csrDER(t, testKey(t, "p256"), "")
	pemBody := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})
	tests := []struct {
		name string
		body []byte
		code string
	}{
		{"too large", bytes.Repeat([]byte("A"), MaxESTRequestSize+1), CodeTooLarge},
		{"not base64", []byte("%%%%"), CodeMalformedCSR},
		{"PEM is not the EST encoding", pemBody, CodeMalformedCSR},
		{"base64 of garbage", []byte(base64.StdEncoding.EncodeToString([]byte("garbage"))), CodeMalformedCSR},
		{"empty", nil, CodeMalformedCSR},
		{"weak key", []byte(base64.StdEncoding.EncodeToString(csrDER(t, testKey(t, "rsa1024"), ""))), CodeUnsupportedKey},
		{"decodes past the CSR limit", []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x30}, MaxCSRSize+1))), CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeESTRequest(tt.body)
			if req != nil {
				t.Fatal("returned a request")
			}
			wantCode(t, err, tt.code)
		})
	}
	if _, err := EncodeESTResponse(nil); err == nil {
		t.Error("EncodeESTResponse(nil) succeeded")
	}
}
