package pki

import (
	"bytes"
	"testing"
	"testing/cryptotest"
)

// The package takes no io.Reader: since Go 1.26 the crypto packages ignore
// caller-supplied randomness, and cryptotest.SetGlobalRandom is the one
// switch that makes keys, serials, nonces and signatures reproducible. This
// test pins that the package draws every random byte from that source, so
// a test can replay an issuance bit for bit.
func TestDeterministicUnderGlobalRandom(t *testing.T) {
	key := testKey(t, "p256") // outside the seeded stream: it is cached
	run := func() (ca, leaf, sealed []byte) {
		cryptotest.SetGlobalRandom(t, 42)
		c, err := NewCA(testTenant, KeyECDSAP256, 0, testNow)
		if err != nil {
			t.Fatal(err)
		}
		csr := mustParseCSR(t, csrDER(t, key, "dev-1"))
		cert, _, err := c.Issue(csr, DeviceIdentity{testTenant, "dev-1"}, IssueOptions{Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.SealKey(testKEK(1))
		if err != nil {
			t.Fatal(err)
		}
		return c.Cert.Raw, cert.Raw, s
	}
	ca1, leaf1, sealed1 := run()
	ca2, leaf2, sealed2 := run()
	if !bytes.Equal(ca1, ca2) || !bytes.Equal(leaf1, leaf2) || !bytes.Equal(sealed1, sealed2) {
		t.Fatalf("same seed, different output: ca %v leaf %v sealed %v", bytes.Equal(ca1, ca2), bytes.Equal(leaf1, leaf2), bytes.Equal(sealed1, sealed2))
	}
}
