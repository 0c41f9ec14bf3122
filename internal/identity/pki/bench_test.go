package pki

import (
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// BenchmarkIssue measures one enrolment as the EST handler performs it:
// parse and check a P-256 CSR, then sign, self-check and parse the
// certificate. The budget is 2 ms per issuance (500/s on two cores).
func BenchmarkIssue(b *testing.B) {
	ca := testCA(b, testTenant, KeyECDSAP256)
	der := csrDER(b, testKey(b, "p256"), "dev-1")
	id := DeviceIdentity{testTenant, "dev-1"}
	b.ReportAllocs()
	for b.Loop() {
		csr, err := ParseCSR(der)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := ca.Issue(csr, id, IssueOptions{Now: testNow}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueParallel is BenchmarkIssue across all cores: the CA is
// shared, immutable state.
func BenchmarkIssueParallel(b *testing.B) {
	ca := testCA(b, testTenant, KeyECDSAP256)
	der := csrDER(b, testKey(b, "p256"), "dev-1")
	id := DeviceIdentity{testTenant, "dev-1"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			csr, err := ParseCSR(der)
			if err != nil {
				b.Error(err)
				return
			}
			if _, _, err := ca.Issue(csr, id, IssueOptions{Now: testNow}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyChain is the gateway's per-handshake cost of checking a
// device certificate against its tenant CA.
func BenchmarkVerifyChain(b *testing.B) {
	ca := testCA(b, testTenant, KeyECDSAP256)
	leaf := issueFor(b, ca, "dev-1")
	opts := x509.VerifyOptions{Roots: pool(ca.Cert), CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := leaf.Verify(opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOCSPResponse is one request answered and signed per call, the
// cost of a cache miss at the OCSP endpoint.
func BenchmarkOCSPResponse(b *testing.B) {
	ca := testCA(b, testTenant, KeyECDSAP256)
	req, err := ocsp.CreateRequest(issueFor(b, ca, "dev-1"), ca.Cert, nil)
	if err != nil {
		b.Fatal(err)
	}
	good := func(*big.Int) (OCSPStatus, time.Time, int) { return OCSPGood, time.Time{}, 0 }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ca.OCSPResponse(req, good, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
