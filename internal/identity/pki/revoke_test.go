package pki

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

func TestCRL(t *testing.T) {
	revokedAt := testNow.Add(-time.Hour)
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519, KeyRSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			ca := testCA(t, testTenant, kt)
			a, b := issueFor(t, ca, "a"), issueFor(t, ca, "b")
			in := []Revoked{
				{Serial: b.SerialNumber, At: revokedAt, Reason: ocsp.KeyCompromise},
				{Serial: a.SerialNumber, At: revokedAt, Reason: ocsp.Unspecified},
			}
			der, err := ca.CRL(in, big.NewInt(7), testNow, 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := crl.CheckSignatureFrom(ca.Cert); err != nil {
				t.Fatalf("CRL signature: %v", err)
			}
			if crl.Number.Int64() != 7 || !crl.ThisUpdate.Equal(testNow) || !crl.NextUpdate.Equal(testNow.Add(24*time.Hour)) {
				t.Errorf("number=%v thisUpdate=%v nextUpdate=%v", crl.Number, crl.ThisUpdate, crl.NextUpdate)
			}
			if !bytes.Equal(crl.AuthorityKeyId, ca.Cert.SubjectKeyId) {
				t.Error("CRL AuthorityKeyId is not the CA's SubjectKeyId")
			}
			want := map[string]int{a.SerialNumber.String(): 0, b.SerialNumber.String(): ocsp.KeyCompromise}
			if len(crl.RevokedCertificateEntries) != len(want) {
				t.Fatalf("%d entries, want %d", len(crl.RevokedCertificateEntries), len(want))
			}
			for i, e := range crl.RevokedCertificateEntries {
				reason, ok := want[e.SerialNumber.String()]
				if !ok || e.ReasonCode != reason || !e.RevocationTime.Equal(revokedAt) {
					t.Errorf("entry %v reason %d at %v", e.SerialNumber, e.ReasonCode, e.RevocationTime)
				}
				if i > 0 && crl.RevokedCertificateEntries[i-1].SerialNumber.Cmp(e.SerialNumber) >= 0 {
					t.Error("entries are not sorted by serial")
				}
			}
		})
	}
}

func TestCRLEmptyAndRejects(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	if der, err := ca.CRL(nil, big.NewInt(1), testNow, time.Hour); err != nil {
		t.Fatalf("empty CRL: %v", err)
	} else if _, err := x509.ParseRevocationList(der); err != nil {
		t.Fatalf("empty CRL does not parse: %v", err)
	}
	ok := Revoked{Serial: big.NewInt(5), At: testNow, Reason: 1}
	tests := []struct {
		name    string
		revoked []Revoked
		number  *big.Int
		next    time.Duration
	}{
		{"nil number", nil, nil, time.Hour},
		{"negative number", nil, big.NewInt(-1), time.Hour},
		{"zero nextUpdate", nil, big.NewInt(1), 0},
		{"reason 7 is unassigned", []Revoked{{Serial: big.NewInt(5), At: testNow, Reason: 7}}, big.NewInt(1), time.Hour},
		{"reason out of range", []Revoked{{Serial: big.NewInt(5), At: testNow, Reason: 11}}, big.NewInt(1), time.Hour},
		{"nil serial", []Revoked{ok, {At: testNow}}, big.NewInt(1), time.Hour},
		{"no revocation time", []Revoked{{Serial: big.NewInt(5)}}, big.NewInt(1), time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ca.CRL(tt.revoked, tt.number, testNow, tt.next)
			wantCode(t, err, CodeInvalidValidity)
		})
	}
}

// statusTable is a lookup over a fixed map; serials not in it are unknown.
type statusEntry struct {
	status OCSPStatus
	at     time.Time
	reason int
}

func lookupIn(m map[string]statusEntry) func(*big.Int) (OCSPStatus, time.Time, int) {
	return func(s *big.Int) (OCSPStatus, time.Time, int) {
		e := m[s.String()]
		return e.status, e.at, e.reason
	}
}

func TestOCSPRoundTrip(t *testing.T) {
	revokedAt := testNow.Add(-90 * time.Minute)
	for _, kt := range []KeyType{KeyECDSAP256, KeyRSA2048, KeyEd25519} {
		ca := testCA(t, testTenant, kt)
		good, revoked, unknown := issueFor(t, ca, "good"), issueFor(t, ca, "revoked"), issueFor(t, ca, "unknown")
		lookup := lookupIn(map[string]statusEntry{
			good.SerialNumber.String():    {status: OCSPGood},
			revoked.SerialNumber.String(): {OCSPRevoked, revokedAt, ocsp.KeyCompromise},
		})
		tests := []struct {
			name       string
			cert       *x509.Certificate
			hash       crypto.Hash
			wantStatus int
		}{
			{"good", good, crypto.SHA1, ocsp.Good},
			{"good sha256", good, crypto.SHA256, ocsp.Good},
			{"revoked", revoked, crypto.SHA1, ocsp.Revoked},
			{"revoked sha512", revoked, crypto.SHA512, ocsp.Revoked},
			{"unknown", unknown, crypto.SHA1, ocsp.Unknown},
		}
		for _, tt := range tests {
			t.Run(string(kt)+"/"+tt.name, func(t *testing.T) {
				req, err := ocsp.CreateRequest(tt.cert, ca.Cert, &ocsp.RequestOptions{Hash: tt.hash})
				if err != nil {
					t.Fatal(err)
				}
				serial, err := ca.ParseOCSPRequest(req)
				if err != nil || serial.Cmp(tt.cert.SerialNumber) != 0 {
					t.Fatalf("ParseOCSPRequest = %v, %v", serial, err)
				}
				der, err := ca.OCSPResponse(req, lookup, testNow)
				if err != nil {
					t.Fatal(err)
				}
				resp := parseOCSPResponse(t, der, ca)
				if resp.Status != tt.wantStatus || resp.SerialNumber.Cmp(tt.cert.SerialNumber) != 0 {
					t.Fatalf("status %d serial %v", resp.Status, resp.SerialNumber)
				}
				if resp.IssuerHash != tt.hash {
					t.Errorf("IssuerHash = %v, want %v (CertID echoed)", resp.IssuerHash, tt.hash)
				}
				if !resp.ProducedAt.Equal(testNow) || !resp.ThisUpdate.Equal(testNow) || !resp.NextUpdate.Equal(testNow.Add(OCSPValidity)) {
					t.Errorf("producedAt=%v thisUpdate=%v nextUpdate=%v", resp.ProducedAt, resp.ThisUpdate, resp.NextUpdate)
				}
				if tt.wantStatus == ocsp.Revoked && (!resp.RevokedAt.Equal(revokedAt) || resp.RevocationReason != ocsp.KeyCompromise) {
					t.Errorf("revokedAt=%v reason=%d", resp.RevokedAt, resp.RevocationReason)
				}
				keyHash := sha1.Sum(ca.keyBits)
				if !bytes.Equal(resp.ResponderKeyHash, keyHash[:]) || resp.Certificate != nil {
					t.Errorf("responder key hash %x, embedded cert %v", resp.ResponderKeyHash, resp.Certificate != nil)
				}
			})
		}
	}
}

// parseOCSPResponse parses with x/crypto/ocsp and checks the signature
// against the CA. x/crypto/ocsp cannot verify Ed25519 signatures itself
// (it does not know the OID), so those are checked with crypto/x509.
func parseOCSPResponse(t *testing.T, der []byte, ca *CA) *ocsp.Response {
	t.Helper()
	if ca.Cert.PublicKeyAlgorithm != x509.Ed25519 {
		resp, err := ocsp.ParseResponse(der, ca.Cert)
		if err != nil {
			t.Fatalf("ocsp.ParseResponse: %v", err)
		}
		return resp
	}
	resp, err := ocsp.ParseResponse(der, nil)
	if err != nil {
		t.Fatalf("ocsp.ParseResponse: %v", err)
	}
	if err := ca.Cert.CheckSignature(x509.PureEd25519, resp.TBSResponseData, resp.Signature); err != nil {
		t.Fatalf("Ed25519 OCSP signature: %v", err)
	}
	return resp
}

func TestOCSPErrors(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	other := testCA(t, "globex", KeyECDSAP256)
	leaf := issueFor(t, ca, "d")
	foreign := issueFor(t, other, "d")
	req := func(cert, issuer *x509.Certificate) []byte {
		r, err := ocsp.CreateRequest(cert, issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Two CertIDs in one request, which RFC 5019 rules out.
	twoIDs := func() []byte {
		var r ocspRequest
		if _, err := asn1.Unmarshal(req(leaf, ca.Cert), &r); err != nil {
			t.Fatal(err)
		}
		r.TBSRequest.RequestList = append(r.TBSRequest.RequestList, r.TBSRequest.RequestList[0])
		return mustMarshal(t, r)
	}()
	md5ID := func() []byte {
		var r ocspRequest
		if _, err := asn1.Unmarshal(req(leaf, ca.Cert), &r); err != nil {
			t.Fatal(err)
		}
		r.TBSRequest.RequestList[0].CertID.Raw = nil
		r.TBSRequest.RequestList[0].CertID.HashAlgorithm = pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}}
		return mustMarshal(t, r)
	}()
	v2 := func() []byte {
		var r ocspRequest
		if _, err := asn1.Unmarshal(req(leaf, ca.Cert), &r); err != nil {
			t.Fatal(err)
		}
		r.TBSRequest.Version = 1
		return mustMarshal(t, r)
	}()
	tests := []struct {
		name       string
		req        []byte
		wantStatus ocsp.ResponseStatus
		code       string
	}{
		{"other issuer", req(foreign, other.Cert), ocsp.Unauthorized, CodeUnknownIssuer},
		{"our serial, other issuer's hashes", req(leaf, other.Cert), ocsp.Unauthorized, CodeUnknownIssuer},
		{"garbage", []byte("GET / HTTP/1.1"), ocsp.Malformed, CodeMalformedOCSP},
		{"empty", nil, ocsp.Malformed, CodeMalformedOCSP},
		{"truncated", req(leaf, ca.Cert)[:20], ocsp.Malformed, CodeMalformedOCSP},
		{"trailing data", append(req(leaf, ca.Cert), 0), ocsp.Malformed, CodeMalformedOCSP},
		{"two CertIDs", twoIDs, ocsp.Malformed, CodeMalformedOCSP},
		{"MD5 CertID", md5ID, ocsp.Malformed, CodeMalformedOCSP},
		{"version 2", v2, ocsp.Malformed, CodeMalformedOCSP},
		{"too large", bytes.Repeat([]byte{0x30}, MaxOCSPRequestSize+1), ocsp.Malformed, CodeTooLarge},
	}
	lookup := func(*big.Int) (OCSPStatus, time.Time, int) {
		t.Fatal("lookup called for a request that must be refused")
		return OCSPUnknown, time.Time{}, 0
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ca.ParseOCSPRequest(tt.req)
			wantCode(t, err, tt.code)
			der, err := ca.OCSPResponse(tt.req, lookup, testNow)
			if err != nil {
				t.Fatalf("OCSPResponse err = %v; protocol errors are responses, not errors", err)
			}
			_, perr := ocsp.ParseResponse(der, ca.Cert)
			var re ocsp.ResponseError
			if !errors.As(perr, &re) || re.Status != tt.wantStatus {
				t.Fatalf("response parses as %v, want %v", perr, tt.wantStatus)
			}
		})
	}
}

func TestOCSPLookupInconsistent(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	req, err := ocsp.CreateRequest(issueFor(t, ca, "d"), ca.Cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := func(*big.Int) (OCSPStatus, time.Time, int) { return OCSPGood, time.Time{}, 0 }
	tests := []struct {
		name   string
		lookup func(*big.Int) (OCSPStatus, time.Time, int)
		now    time.Time
	}{
		{"revoked without a time", func(*big.Int) (OCSPStatus, time.Time, int) { return OCSPRevoked, time.Time{}, 0 }, testNow},
		{"revoked with reason 7", func(*big.Int) (OCSPStatus, time.Time, int) { return OCSPRevoked, testNow, 7 }, testNow},
		{"nil lookup", nil, testNow},
		{"no clock", good, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := ca.OCSPResponse(req, tt.lookup, tt.now)
			if err == nil {
				t.Fatal("accepted")
			}
			var re ocsp.ResponseError
			if _, perr := ocsp.ParseResponse(der, ca.Cert); !errors.As(perr, &re) || re.Status != ocsp.InternalError {
				t.Fatalf("response = %v, want internalError", perr)
			}
		})
	}
}

// The zero OCSPStatus must not vouch for anything.
func TestOCSPStatusZeroIsUnknown(t *testing.T) {
	var s OCSPStatus
	if s != OCSPUnknown {
		t.Fatal("zero OCSPStatus is not OCSPUnknown")
	}
}

func TestOCSPNonce(t *testing.T) {
	ca := testCA(t, testTenant, KeyECDSAP256)
	base, err := ocsp.CreateRequest(issueFor(t, ca, "d"), ca.Cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	withNonce := func(nonce []byte) []byte {
		var r ocspRequest
		if _, err := asn1.Unmarshal(base, &r); err != nil {
			t.Fatal(err)
		}
		r.TBSRequest.RequestList[0].CertID.Raw = nil
		r.TBSRequest.Extensions = []pkix.Extension{{Id: oidOCSPNonce, Value: mustMarshal(t, nonce)}}
		return mustMarshal(t, r)
	}
	tests := []struct {
		name  string
		nonce []byte
		echo  bool
	}{
		{"16 octets", bytes.Repeat([]byte{7}, 16), true},
		{"32 octets", bytes.Repeat([]byte{7}, 32), true},
		{"33 octets", bytes.Repeat([]byte{7}, 33), false},
		{"empty", []byte{}, false},
	}
	good := func(*big.Int) (OCSPStatus, time.Time, int) { return OCSPGood, time.Time{}, 0 }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := ca.OCSPResponse(withNonce(tt.nonce), good, testNow)
			if err != nil {
				t.Fatal(err)
			}
			parseOCSPResponse(t, der, ca) // signature still verifies
			got := responseNonce(t, der)
			if tt.echo != (got != nil) || (tt.echo && !bytes.Equal(got, tt.nonce)) {
				t.Fatalf("nonce echoed = %x, want echo=%v of %x", got, tt.echo, tt.nonce)
			}
		})
	}
}

// responseNonce digs the nonce out of responseExtensions, which
// x/crypto/ocsp does not expose.
func responseNonce(t *testing.T, der []byte) []byte {
	t.Helper()
	var outer ocspResponse
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatal(err)
	}
	var basic basicOCSPResponse
	if _, err := asn1.Unmarshal(outer.Response.Response, &basic); err != nil {
		t.Fatal(err)
	}
	var rd responseData
	if _, err := asn1.Unmarshal(basic.TBSResponseData.FullBytes, &rd); err != nil {
		t.Fatal(err)
	}
	for _, e := range rd.Extensions {
		if e.Id.Equal(oidOCSPNonce) {
			var n []byte
			if _, err := asn1.Unmarshal(e.Value, &n); err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return nil
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOCSPUnsignedErrorsNeverLeakStatus(t *testing.T) {
	// A malformed request must not reach lookup, even one that embeds a
	// valid CertID after junk.
	ca := testCA(t, testTenant, KeyECDSAP256)
	req, _ := ocsp.CreateRequest(issueFor(t, ca, "d"), ca.Cert, nil)
	called := false
	lookup := func(*big.Int) (OCSPStatus, time.Time, int) { called = true; return OCSPGood, time.Time{}, 0 }
	der, _ := ca.OCSPResponse(append([]byte{0x04, 0x00}, req...), lookup, testNow)
	if called || string(der) != ocspMalformedRequest {
		t.Fatalf("lookup called=%v, response %x", called, der)
	}
}
