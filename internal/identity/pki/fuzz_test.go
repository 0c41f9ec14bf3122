package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Every fuzz target checks the same contract: no panic, and every rejection
// is a *Error with a code, never a bare parser error.

func FuzzParseCSR(f *testing.F) {
	for _, kind := range []string{"p256", "p384", "ed25519", "rsa2048", "rsa1024", "p224"} {
		der := csrDER(f, testKey(f, kind), "dev-1", "urn:fleetgate:acme:device:dev-1")
		f.Add(der)
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	f.Add(withSPKI(f, csrDER(f, testKey(f, "p256"), ""), dsaSPKI(f)))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSR(data)
		if err != nil {
			var e *Error
			if csr != nil || !errors.As(err, &e) {
				t.Fatalf("ParseCSR = %v, %v (%T)", csr, err, err)
			}
			return
		}
		if err := checkKey(csr.PublicKey); err != nil {
			t.Fatalf("accepted a key checkKey refuses: %v", err)
		}
	})
}

func FuzzDecodeESTRequest(f *testing.F) {
	der := csrDER(f, testKey(f, "p256"), "dev-1")
	f.Add([]byte(base64.StdEncoding.EncodeToString(der)))
	f.Add([]byte(wrap(base64.StdEncoding.EncodeToString(der), 64, "\r\n")))
	f.Add([]byte(base64.RawStdEncoding.EncodeToString(der)))
	f.Add([]byte("===="))
	f.Fuzz(func(t *testing.T, body []byte) {
		csr, err := DecodeESTRequest(body)
		var e *Error
		if err != nil && (csr != nil || !errors.As(err, &e)) {
			t.Fatalf("DecodeESTRequest = %v, %v (%T)", csr, err, err)
		}
	})
}

func FuzzOCSPResponse(f *testing.F) {
	ca := testCA(f, testTenant, KeyECDSAP256)
	other := testCA(f, "globex", KeyECDSAP256)
	for _, c := range []struct {
		leaf   *x509.Certificate
		issuer *x509.Certificate
	}{{issueFor(f, ca, "a"), ca.Cert}, {issueFor(f, other, "a"), other.Cert}} {
		req, err := ocsp.CreateRequest(c.leaf, c.issuer, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(req)
	}
	f.Add([]byte{0x30, 0x00})
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// Status from the serial's low bits, so the fuzzer reaches all three.
	lookup := func(s *big.Int) (OCSPStatus, time.Time, int) {
		switch s.Bit(0) + 2*s.Bit(1) {
		case 1:
			return OCSPGood, time.Time{}, 0
		case 2:
			return OCSPRevoked, now.Add(-time.Hour), 1
		}
		return OCSPUnknown, time.Time{}, 0
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		der, err := ca.OCSPResponse(req, lookup, now)
		if err != nil {
			t.Fatalf("OCSPResponse error for a lookup that never fails: %v", err)
		}
		resp, perr := ocsp.ParseResponse(der, ca.Cert)
		var re ocsp.ResponseError
		switch {
		case perr == nil:
			st, _, _ := lookup(resp.SerialNumber)
			want := map[OCSPStatus]int{OCSPGood: ocsp.Good, OCSPRevoked: ocsp.Revoked, OCSPUnknown: ocsp.Unknown}[st]
			if resp.Status != want {
				t.Fatalf("status %d, want %d", resp.Status, want)
			}
		case errors.As(perr, &re):
			if re.Status != ocsp.Malformed && re.Status != ocsp.Unauthorized {
				t.Fatalf("unexpected error status %v", re.Status)
			}
		default:
			t.Fatalf("response does not parse: %v", perr)
		}
	})
}

// FuzzVerifyCAPossession: any verification certificate is either accepted
// (signed by the CA, the registration code as its one common name, valid
// now) or refused with a *Error.
func FuzzVerifyCAPossession(f *testing.F) {
	caKey, other := testKey(f, "p256"), testKey(f, "ed25519")
	ca, caPEM := extCert(f, caTmpl(nil), nil, caKey.Public(), caKey)
	code := RegistrationCode(testTenant)
	for _, c := range []struct {
		cn     string
		signer crypto.Signer
		parent *x509.Certificate
	}{{code, caKey, ca}, {RegistrationCode("globex"), caKey, ca}, {code, other, nil}, {"", caKey, ca}} {
		_, p := extCert(f, verifTmpl(c.cn, nil), c.parent, other.Public(), c.signer)
		f.Add(p)
	}
	f.Add(caPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		vc, err := VerifyCAPossession(ca, data, code, testNow)
		if err != nil {
			var e *Error
			if vc != nil || !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("VerifyCAPossession = %v, %v (%T)", vc, err, err)
			}
			return
		}
		if vc.CheckSignatureFrom(ca) != nil || vc.Subject.CommonName != code || testNow.Before(vc.NotBefore) || testNow.After(vc.NotAfter) {
			t.Fatalf("accepted an unproven verification certificate: %v", vc.Subject)
		}
	})
}
